"""What a Dockerfile's RUN instructions really create (issue #27), checked against real builds.

Each case gives the verdict of `imagefix lint` without the base (`plain`) and with
`--resolve-base` (`resolved`): "uid:gid" is the numeric fix imagefix offers, None no fix
(KIF104, or KIF102 as an info: the id is picked at build time or lies in an unread base),
"unknown" KIF106, "root" KIF103. The expected ids come from the tools' documented behaviour,
cited per case. Where the legacy builder can build the file offline (`engine`), the image is
built for real with this machine's shadow tools and Debian adduser (tests/account_bases.py)
and every fix imagefix offers must be the uid:gid the container really runs as. busybox's
adduser is not on this machine (Debian builds busybox without it): those cases rest on
busybox's source, loginutils/adduser.c, and are read against an Alpine-like base's files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from account_bases import DEBIAN, RHEL, ensure_account_bases, missing_tools
from bases import BASE
from test_dockerfile_engine import run_id

from kata_imagefix.dockerfile.lint import lint
from kata_imagefix.dockerfile.parse import parse_dockerfile
from kata_imagefix.scan import RuleSelection

ALPINE_NAME, PARENT_NAME = "imagefix-test/accounts-alpine:lint", "imagefix-test/accounts-parent:lint"

SHADOW = "https://github.com/shadow-maint/shadow"
BUSYBOX = "https://git.busybox.net/busybox/tree/loginutils/adduser.c"
DEBIAN_ADDUSER = "Debian adduser 3.134, /usr/sbin/adduser and adduser(8)"


@dataclass(frozen=True)
class Case:
    name: str
    dockerfile: str  # {debian} {rhel} {alpine} {parent}: the base images below
    plain: str | None
    resolved: str | None
    source: str  # where the expected ids come from
    engine: bool = True  # the legacy builder can build it here


CASES = [
    # 2. usermod / groupmod after useradd
    Case("usermod-u", "FROM {debian}\nRUN useradd -u 1000 -g 0 web && usermod -u 2000 web\nUSER web\n",
         "2000:0", "2000:0", f"usermod(8) -u: the new uid ({SHADOW} src/usermod.c)"),
    Case("usermod-g-base-group", "FROM {debian}\nRUN useradd -u 2001 -g 0 w2 && usermod -g nogroup w2\n"
         "USER w2\n", None, "2001:65534", "usermod(8) -g: the group's gid, from the base's /etc/group"),
    Case("groupmod-moves-primary-group", "FROM {debian}\nRUN groupadd -g 3000 g1 && useradd -u 3001 -g g1 m1 "
         "&& groupmod -g 3100 g1\nUSER m1\n", "3001:3100", "3001:3100",
         f"groupmod(8) -g; src/groupmod.c update_primary_groups moves users of the old gid ({SHADOW})"),
    # 3. accounts in compound commands, heredocs, long options
    Case("if-then-fi", "FROM {debian}\nRUN if ! id web3 >/dev/null 2>&1; then useradd -u 1200 -g 0 web3; fi\n"
         "USER web3\n", "1200:0", "1200:0", "useradd(8) -u/-g inside if … fi"),
    Case("or-list", "FROM {debian}\nRUN id web4 2>/dev/null || useradd -u 1201 -g 0 web4\nUSER web4\n",
         "1201:0", "1201:0", "useradd(8) after ||"),
    Case("subshell", "FROM {debian}\nRUN (groupadd -g 1300 grp && useradd -u 1300 -g grp sub)\nUSER sub\n",
         "1300:1300", "1300:1300", "groupadd(8) -g, useradd(8) -g NAME in a subshell"),
    Case("sh-c", "FROM {debian}\nRUN sh -c \"useradd -u 1301 -g 0 shc\"\nUSER shc\n", "1301:0", "1301:0",
         "useradd(8) in sh -c"),
    Case("exec-form", 'FROM {debian}\nRUN ["useradd", "-u", "1302", "-g", "0", "ex"]\nUSER ex\n',
         "1302:0", "1302:0", "RUN in exec form runs the program itself"),
    Case("sh-o-pipefail", "FROM {debian}\nRUN sh -euo pipefail -c \"useradd -u 1303 -g 0 bo\"\nUSER bo\n",
         "1303:0", "1303:0", "-o takes the option name, -c the script"),
    Case("heredoc", "FROM {debian}\nRUN <<EOF\nset -e\ngroupadd -g 1400 hd\nuseradd -u 1400 -g hd hd\nEOF\n"
         "USER hd\n", "1400:1400", "1400:1400", "BuildKit runs the heredoc body as the script",
         engine=False),
    Case("heredoc-bash", "FROM {debian}\nRUN bash <<EOF\nuseradd -u 1401 -g 0 hb\nEOF\nUSER hb\n",
         "1401:0", "1401:0", "the body is bash's script (stdin)", engine=False),
    Case("long-options", "FROM {debian}\nRUN groupadd --gid=1310 lg && useradd --uid 1310 --gid=lg "
         "--no-create-home lo\nUSER lo\n", "1310:1310", "1310:1310", "useradd(8) long options (getopt_long)"),
    # 7. useradd -g root is gid 0
    Case("useradd-g-root", "FROM {debian}\nRUN useradd -u 2300 -g root r1\nUSER r1\n", "2300:0", "2300:0",
         "group root is gid 0"),
    # 6. shadow's user group: gid = uid only when free and in range (lib/find_new_gid.c)
    Case("usergroup-in-range", "FROM {debian}\nRUN useradd -u 1600 hi\nUSER hi\n", None, "1600:1600",
         f"USERGROUPS_ENAB yes; find_new_gid prefers the uid within GID_MIN..GID_MAX ({SHADOW} "
         "lib/find_new_gid.c)"),
    Case("usergroup-below-range", "FROM {debian}\nRUN useradd -u 187 low\nUSER low\n", None, None,
         "find_new_gid: uid 187 < GID_MIN 1000 is not reused, the gid is picked"),
    Case("usergroup-system", "FROM {debian}\nRUN useradd -r -u 186 sys1\nUSER sys1\n", None, "186:186",
         "find_new_gid for -r: a requested id may be 1..SYS_GID_MAX"),
    Case("useradd-N-rhel", "FROM {rhel}\nRUN useradd -N -u 1501 n1\nUSER n1\n", None, "1501:100",
         "useradd(8) -N: GROUP of /etc/default/useradd (RHEL ships GROUP=100)"),
    Case("useradd-N-builtin", "FROM {debian}\nRUN useradd -N -u 1503 n2\nUSER n2\n", None, None,
         "no GROUP in /etc/default/useradd: the build's built-in default (Debian's 100, upstream 1000 "
         "since 4.9) is not guessed"),
    # 4. base groups named by useradd -g / adduser -G
    Case("useradd-g-base-group", "FROM {debian}\nRUN useradd -u 1900 -g nogroup nb\nUSER nb\n", None,
         "1900:65534", "useradd(8) -g NAME: the base's /etc/group"),
    # 3. RHEL/UBI adduser is useradd
    Case("rhel-adduser-g", "FROM {rhel}\nRUN groupadd -g 1000 vault && adduser -r -u 100 -g vault vault\n"
         "USER 100\n", "100:1000", "100:1000",
         "RHEL's /usr/sbin/adduser is a link to useradd: -g is the group"),
    Case("rhel-adduser-usergroup", "FROM {rhel}\nRUN adduser -u 1502 vault2\nUSER vault2\n", None,
         "1502:1502", "adduser = useradd with USERGROUPS_ENAB yes"),
    # 6. Debian's adduser
    Case("debian-adduser-system", "FROM {debian}\nRUN adduser --system --uid 190 sysd\nUSER sysd\n",
         "190:65534", "190:65534", f"{DEBIAN_ADDUSER}: --system without --group goes into nogroup (65534)"),
    Case("debian-adduser-system-group", "FROM {debian}\nRUN adduser --system --group --uid 191 sysg\n"
         "USER sysg\n", "191:191", "191:191", f"{DEBIAN_ADDUSER}: --group makes a group with the uid as gid"),
    Case("debian-adduser-usergroups", "FROM {debian}\nRUN adduser --disabled-password --uid 1801 "
         "dd\nUSER dd\n", "1801:1801", "1801:1801",
         f"{DEBIAN_ADDUSER}: USERGROUPS=yes, the group gets the uid"),
    Case("debian-adduser-picked", "FROM {debian}\nRUN adduser --system sysx\nUSER sysx\n", None, None,
         f"{DEBIAN_ADDUSER}: the uid is the first free one from FIRST_SYSTEM_UID"),
    Case("debian-adduser-ingroup", "FROM {debian}\nRUN adduser --disabled-password --ingroup users "
         "--uid 1802 ee\nUSER ee\n", None, "1802:100",
         f"{DEBIAN_ADDUSER}: --ingroup, from the base's /etc/group"),
    # 3./6. busybox adduser: clusters, -g is the GECOS, -S goes to nogroup, -u N gives gid N
    Case("busybox-DHu", "FROM {alpine}\nRUN adduser -DHu 1000 app2\nUSER app2\n", "1000:1000", "1000:1000",
         f"{BUSYBOX}: passwd_study gives gid = uid (a taken gid fails the build)", engine=False),
    Case("busybox-SHG", "FROM {alpine}\nRUN addgroup -S -g 1001 grp && adduser -SHG grp -u 1001 svc\n"
         "USER svc\n", "1001:1001", "1001:1001", f"{BUSYBOX}: -G GRP", engine=False),
    Case("busybox-Sg-is-gecos", "FROM {alpine}\nRUN adduser -Sg 1000 -u 1002 web5\nUSER web5\n", None,
         "1002:65533", f"{BUSYBOX}: -g is GECOS; -S without -G uses nogroup (Alpine: 65533)", engine=False),
    Case("busybox-G-base-group", "FROM {alpine}\nRUN adduser -D -G spark -u 1003 sp\nUSER sp\n", None,
         "1003:185", f"{BUSYBOX}: -G names a group of the base", engine=False),
    Case("busybox-long-options", "FROM {alpine}\nRUN adduser --disabled-password --uid 1004 lb\nUSER lb\n",
         "1004:1004", "1004:1004", f"{BUSYBOX}: adduser_longopts", engine=False),
    Case("busybox-picked", "FROM {alpine}\nRUN adduser -D pick\nUSER pick\n", None, None,
         f"{BUSYBOX}: without -u the first free uid from 1000", engine=False),
    Case("busybox-applet", "FROM {debian}\nRUN busybox adduser -D -u 1005 bb\nUSER bb\n", "1005:1005",
         "1005:1005", f"{BUSYBOX}: `busybox adduser` is busybox's whatever the base", engine=False),
    # 5. FROM scratch with /etc/passwd copied from a stage
    Case("scratch-copy-from", "FROM {debian} AS build\nRUN useradd -u 2100 -g 0 svc\nFROM scratch\n"
         "COPY --from=build /etc/passwd /etc/group /etc/\nCOPY --from=build /bin/ /bin/\nUSER svc\n",
         "2100:0", "2100:0", "COPY --from copies the stage's /etc/passwd"),
    Case("scratch-copy-base-group", "FROM {debian} AS build\nRUN useradd -u 2101 -g nogroup svc2\n"
         "FROM scratch\nCOPY --from=build /etc/passwd /etc/passwd\nCOPY --from=build /etc/group /etc/group\n"
         "COPY --from=build /bin/ /bin/\nUSER svc2\n", None, "2101:65534",
         "the stage's /etc/group comes from its own base"),
    # 1. variable chains over the base's Config.Env
    Case("env-chain", "FROM {parent}\nENV RUNAS=${{APPUSER}}\nUSER $RUNAS\n", "unknown", "2200:0",
         "BuildKit/legacy builder expand ENV over the image config's Env: User=chain"),
    Case("arg-chain", "FROM {parent}\nARG cu=$APPUSER\nUSER $cu\n", "unknown", "2200:0",
         "an ARG default is expanded over the image config's Env"),
    Case("global-arg-not-redeclared", "ARG U=web\nFROM {debian}\nUSER $U\n", "unknown", "root",
         "a global ARG is not visible in a stage that does not redeclare it: User is empty (root)"),
]

_FIX = re.compile(r"^USER (\d+:\d+)")


def verdict(findings) -> str | None:
    rules = {f["rule"] if isinstance(f, dict) else f.rule: f for f in findings}
    if "KIF106" in rules:
        return "unknown"
    if "KIF103" in rules:
        return "root"
    for rule in ("KIF101", "KIF102"):
        if rule in rules:
            fix = rules[rule]["fix"] if isinstance(rules[rule], dict) else rules[rule].fix
            match = _FIX.match(fix or "")
            return match.group(1) if match else None
    return None


def _text(case: Case, **bases: str) -> str:
    return case.dockerfile.format(**{"debian": DEBIAN, "rhel": RHEL, "alpine": ALPINE_NAME,
                                     "parent": PARENT_NAME, **bases})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_without_the_base(case):
    result = lint(parse_dockerfile(_text(case), "Dockerfile"), RuleSelection())
    assert verdict(result.findings) == case.plain, [(f.rule, f.message) for f in result.findings]
    if case.plain is None:
        assert any(f.rule in ("KIF104", "KIF102") for f in result.findings)


@pytest.fixture(scope="module")
def bases(engine, module_images):
    why = missing_tools()
    if why:
        pytest.skip(why)
    ensure_account_bases(engine)
    alpine = module_images.build(f"FROM {BASE}\nRUN echo 'ID=alpine' > /etc/os-release && "
                                 "printf 'root:x:0:\\nspark:x:185:\\nnogroup:x:65533:\\n' > /etc/group\n",
                                 name="accounts-alpine")
    parent = module_images.build(f"FROM {DEBIAN}\nENV APPUSER=chain\nRUN useradd -u 2200 -g 0 chain\n",
                                 name="accounts-parent")
    return {"alpine": alpine, "parent": parent}




@pytest.mark.engine
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_with_the_base_and_the_real_build(case, bases, cli, engine, images, tmp_path):
    text = _text(case, **bases)
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    doc = cli("lint", "--resolve-base", "--format", "json", path).json()
    findings = doc["files"][0]["findings"]
    assert verdict(findings) == case.resolved, [(f["rule"], f["message"]) for f in findings]
    if not case.engine:
        return
    real = run_id(engine, images.build(text, name="accounts-case")).split()
    if case.resolved == "root":
        assert real == ["0", "0"]
    elif case.resolved not in (None, "unknown"):
        assert case.resolved.split(":") == real, "imagefix's fix must be what the build really gives"


@pytest.mark.engine
def test_patched_variable_chain_builds_and_runs_with_the_ids(bases, cli, engine, images, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM {bases['parent']}\nENV RUNAS=${{APPUSER}}\nUSER $RUNAS\n")
    original = images.build(path.read_text(), name="chain")
    assert engine.inspect_image(original)["Config"]["User"] == "chain"  # the legacy builder stores the name
    out = tmp_path / "Dockerfile.kata"
    assert cli("patch", path, "--resolve-base", "-o", out).exit_code == 0
    assert out.read_text().endswith("USER 2200:0\n")
    patched = images.build(out.read_text(), name="chainfixed")
    assert engine.inspect_image(patched)["Config"]["User"] == "2200:0"
    assert run_id(engine, patched).split() == ["2200", "0"]


def test_messages_say_what_decides():
    def messages(text: str) -> str:
        result = lint(parse_dockerfile(text, "Dockerfile"), RuleSelection())
        return " ".join(f"{f.rule} {f.message} {f.fix}" for f in result.findings)

    said = messages("ARG U=web\nFROM debian:12\nUSER $U\n")
    assert "global ARG" in said and "ARG U" in said
    said = messages("FROM debian:12\nARG cu=$USER\nUSER $cu\n")
    assert "KIF106" in said and "cu is set from $USER" in said and "KIF103" not in said
    said = messages("FROM scratch\nUSER app\n")
    assert "KIF104" in said and "FROM scratch" in said and "--resolve-base" not in said
    said = messages("FROM debian:12 AS b\nRUN useradd -u 5 -g 0 a\nFROM scratch\n"
                    "COPY --from=b /etc/passwd /etc/passwd\nUSER a\n")
    assert "5:0" in said and "comes from the base image" not in said
    said = messages("FROM alpine:3.20\nRUN adduser -D pick\nUSER pick\n")
    assert "picks the uid" in said and "build time" in said
    said = messages("FROM debian:12\nRUN useradd -u 187 low\nUSER low\n")
    assert "KIF104" in said and "--resolve-base" in said
