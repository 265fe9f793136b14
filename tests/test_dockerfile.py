"""`imagefix lint` and `imagefix patch` over the corpus, properties, and the CLI contract."""

from __future__ import annotations

import contextlib
import difflib
import json
import os
from pathlib import Path

import pytest
from dockerfile_corpus import PATCH_ERROR, SPARK, WHY, cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kata_imagefix.dockerfile.lexer import expand
from kata_imagefix.dockerfile.lint import lint
from kata_imagefix.dockerfile.parse import parse_dockerfile
from kata_imagefix.dockerfile.patch import patch
from kata_imagefix.errors import ImagefixError
from kata_imagefix.rules.finding import Severity
from kata_imagefix.scan import RuleSelection

CASES = cases()


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_findings(case):
    dockerfile = parse_dockerfile(case.dockerfile.encode(), f"{case.name}.Dockerfile", case.build_args)
    result = lint(dockerfile, RuleSelection(), target=case.target)
    assert sorted((f.rule, f.line) for f in result.findings) == sorted(case.findings)
    for finding in result.findings:
        assert finding.file == f"{case.name}.Dockerfile"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_patch(case):
    dockerfile = parse_dockerfile(case.dockerfile.encode(), "Dockerfile", case.build_args)
    if case.patched == PATCH_ERROR:
        with pytest.raises(ImagefixError, match="cannot write a numeric USER"):
            patch(dockerfile, "numeric", target=case.target)
        return
    outcome = patch(dockerfile, "numeric", target=case.target)
    expected = case.dockerfile if case.patched is None else case.patched
    assert outcome.text == expected
    assert outcome.changed == (case.patched is not None)
    again = patch(parse_dockerfile(outcome.text.encode(), "Dockerfile", case.build_args), "numeric",
                  target=case.target)
    assert not again.changed, "patching a patched file changes nothing"
    relinted = lint(parse_dockerfile(outcome.text.encode(), "Dockerfile", case.build_args),
                    RuleSelection(), target=case.target)
    assert not [f for f in relinted.findings
                if f.rule in ("KIF101", "KIF102", "KIF104", "KIF105") and f.severity >= Severity.WARNING]


@pytest.mark.parametrize(("mode", "value", "says"), [
    ("reset", 'USER ""', "runs as ROOT"), ("root", "USER 0:0", "runs as root")])
def test_reset_and_root_modes(mode, value, says):
    outcome = patch(parse_dockerfile(SPARK.encode()), mode)
    assert value + "\n" in outcome.text and says in outcome.text
    assert outcome.text.replace(value, "USER spark").count("\n") == SPARK.count("\n") + 1
    assert not patch(parse_dockerfile(outcome.text.encode()), mode).changed
    result = lint(parse_dockerfile(outcome.text.encode()), RuleSelection())
    assert [f.rule for f in result.findings] == ["KIF103"]


def test_expansion_forms():
    values = {"A": "a", "EMPTY": "", "UNSET": None}
    assert expand("${A}-$A-${A:-x}-${A:+y}", values) == ("a-a-a-y", [])
    assert expand("${EMPTY:-d}|${EMPTY-d}|${EMPTY:+p}|${EMPTY+p}", values) == ("d|||p", [])
    assert expand("${UNSET:-d}|${NONE:+p}|$NONE", values) == ("d||", ["NONE"])
    assert expand("\\$A", values) == ("$A", [])
    assert expand("`$A", values, escape="`") == ("$A", [])


@pytest.mark.parametrize(("text", "message"), [
    (b"\x00\x01binary", "binary file"),
    (b"\xff\xfe\xfa not utf-8", "not UTF-8"),
    (b"RUN echo no from\n", "no FROM instruction"),
    (b"FROM x\nRUN <<EOF\necho never closed\n", "never closed"),
])
def test_bad_dockerfiles(text, message):
    with pytest.raises(ImagefixError, match=message):
        parse_dockerfile(text, "bad")


# --- properties ---------------------------------------------------------------------------------

users = st.sampled_from(["app", "spark", "nobody", "1000", "1000:1000", "root", "0:0", "svc:staff",
                         "${U}", "${U:-app}"])
plain_lines = st.sampled_from([
    "RUN echo hi", "# a comment", "", "ENV A=1", "WORKDIR /app", "RUN useradd -u 1000 -g 1000 app",
    "RUN groupadd -g 50 staff && useradd -u 77 -g staff svc", "ARG U=spark",
    "RUN groupadd -g 185 spark && useradd -u 185 -g spark spark", "COPY a /b",
    "RUN apt-get update && \\\n  true",
])


@st.composite
def dockerfiles(draw):
    lines = ["FROM debian:12" if draw(st.booleans()) else "from debian:12 AS one"]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 3)) == 0:
            lines.append(("USER " if draw(st.booleans()) else "user ") + draw(users))
        else:
            lines.append(draw(plain_lines))
        if draw(st.integers(0, 15)) == 0:
            lines.append("FROM alpine:3.20 AS two" if draw(st.booleans()) else "FROM one")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines)
    if draw(st.booleans()):
        text += newline
    return text.replace("\\\n", "\\" + newline)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles(), st.sampled_from(["numeric", "reset", "root"]))
def test_patch_properties(text, mode):
    original = parse_dockerfile(text.encode())
    try:
        outcome = patch(original, mode)
    except ImagefixError as exc:
        assert "cannot write a numeric USER" in str(exc)
        return
    if not outcome.changed:
        assert outcome.text == text
        return
    patched = parse_dockerfile(outcome.text.encode())  # still parses
    # Only USER lines and imagefix's own comment differ from the input.
    old_lines, new_lines = text.splitlines(), outcome.text.splitlines()
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old_lines, new_lines,
                                                       autojunk=False).get_opcodes():
        if tag != "equal":
            removed += old_lines[i1:i2]
            added += new_lines[j1:j2]
    assert all(line.strip().lower().startswith("user") for line in removed), removed
    assert all(line.strip().lower().startswith("user") or line.strip().startswith("# imagefix:")
               for line in added), added
    assert len(added) == len(removed) + 1 or (not removed and len(added) == 2)
    assert not patch(patched, mode).changed  # idempotent


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_lint_never_crashes_on_arbitrary_input(data):
    with contextlib.suppress(ImagefixError):  # bad input is reported as such (exit 2), never a crash
        lint(parse_dockerfile(data, "fuzz"), RuleSelection())


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture
def spark_file(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(SPARK)
    return path


def test_lint_cli_formats(cli, spark_file, tmp_path):
    text = cli("lint", spark_file)
    assert text.exit_code == 1 and f"{spark_file}:16" in text.stdout and "KIF101" in text.stdout
    doc = cli("lint", "--format", "json", spark_file).json()
    finding = doc["files"][0]["findings"][0]
    assert (finding["rule"], finding["file"], finding["line"]) == ("KIF101", str(spark_file), 16)
    gnu = cli("lint", "--format", "gnu", spark_file)
    assert gnu.stdout.startswith(f"{spark_file}:16: error: KIF101 ")
    sarif = json.loads(cli("lint", "--format", "sarif", spark_file).stdout)
    region = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert region["region"]["startLine"] == 16
    assert region["artifactLocation"]["uri"] == Path(spark_file).as_uri()  # outside the working directory


def test_lint_cli_several_files_stdin_and_a_bad_one(cli, spark_file, tmp_path):
    good = tmp_path / "good.Dockerfile"
    good.write_text("FROM debian:12\nUSER 1:1\n")
    bad = tmp_path / "bad.Dockerfile"
    bad.write_bytes(b"\x00binary")
    result = cli("lint", "--format", "json", spark_file, good, bad, "-",
                 input="FROM x\nUSER nobody\n")
    doc = result.json()
    assert [f["file"] for f in doc["files"]] == [str(spark_file), str(good), "<stdin>"]
    assert doc["errors"][0]["reference"] == str(bad)
    assert result.exit_code == 2 and "binary file" in result.stderr


def test_lint_cli_build_args_and_target(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian:12 AS b\nUSER nobody\nFROM debian:12\nARG U=1:1\nUSER ${U}\n")
    assert cli("lint", path).exit_code == 0
    assert cli("lint", path, "--build-arg", "U=app").exit_code == 1
    assert cli("lint", path, "--target", "b").exit_code == 1
    bad = cli("lint", path, "--target", "nope")
    assert bad.exit_code == 2 and "no stage 'nope'" in bad.stderr
    assert cli("lint", path, "--build-arg", "novalue").exit_code == 2


def test_patch_cli_writes_only_where_asked(cli, spark_file, tmp_path):
    before = spark_file.read_bytes()
    stdout = cli("patch", spark_file)
    assert stdout.exit_code == 0 and "USER 185:185" in stdout.stdout
    assert spark_file.read_bytes() == before  # the original is untouched
    out = tmp_path / "out" / "Dockerfile.kata"
    out.parent.mkdir()
    assert cli("patch", spark_file, "-o", out).exit_code == 0
    assert "USER 185:185" in out.read_text()
    assert spark_file.read_bytes() == before
    unchanged = tmp_path / "Dockerfile.ok"
    unchanged.write_text("FROM debian:12\nUSER 1:1\n")
    out2 = tmp_path / "out" / "ok"
    assert cli("patch", unchanged, "-o", out2).exit_code == 0
    assert out2.read_text() == unchanged.read_text()  # -o always writes OUT


def test_patch_cli_check_diff_and_in_place(cli, spark_file, tmp_path):
    assert cli("patch", spark_file, "--check").exit_code == 1
    original = spark_file.read_text()
    diff = cli("patch", spark_file, "--diff")
    assert "-USER spark" in diff.stdout and "+USER 185:185" in diff.stdout and "+# imagefix: USER spark" \
        in diff.stdout
    # #24: --diff alone printed "patched" and wrote nothing; it now says only a diff was printed
    assert "would patch" in diff.stderr and "nothing written" in diff.stderr
    assert not diff.stderr.startswith("patched")
    assert spark_file.read_text() == original
    mode = 0o640
    os.chmod(spark_file, mode)
    result = cli("patch", spark_file, "--in-place")
    assert result.exit_code == 0 and "patched" in result.stdout and "185:185" in result.stdout
    assert "USER 185:185" in spark_file.read_text()
    assert os.stat(spark_file).st_mode & 0o777 == mode
    # #24: the README's numbered backup, which only `kata patch` kept; no temp file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile", "Dockerfile.bak"]
    assert (tmp_path / "Dockerfile.bak").read_text() == original and "Dockerfile.bak" in result.stdout
    assert cli("patch", spark_file, "--check").exit_code == 0


def test_patch_cli_multi_file_in_place_keeps_going_past_a_bad_file(cli, tmp_path):
    files = {}
    for name, text in {"Dockerfile.a": SPARK, "Dockerfile.b": "FROM x\nUSER nobody\n",
                       "Dockerfile.c": "FROM debian:12\nRUN useradd -u 3 -g 3 c\nUSER c\n"}.items():
        files[name] = tmp_path / name
        files[name].write_text(text)
    broken = tmp_path / "Dockerfile.d"
    broken.write_bytes(b"\xff\xfe junk")
    result = cli("patch", "--in-place", *files.values(), broken)
    assert result.exit_code == 2
    assert "USER 185:185" in files["Dockerfile.a"].read_text()
    assert files["Dockerfile.b"].read_text() == "FROM x\nUSER nobody\n"  # refused, untouched
    assert "USER 3:3" in files["Dockerfile.c"].read_text()
    assert broken.read_bytes() == b"\xff\xfe junk"
    assert "cannot write a numeric USER for 'nobody'" in result.stderr
    assert "Dockerfile.d: not UTF-8" in result.stderr


def test_patch_cli_usage_errors(cli, spark_file, tmp_path):
    assert cli("patch", spark_file, spark_file).exit_code == 2
    assert cli("patch", spark_file, "-o", tmp_path / "x", "--in-place").exit_code == 2
    assert cli("patch", spark_file, "--user-mode", "sideways").exit_code == 2


def test_reset_mode_says_it_runs_as_root(cli, spark_file):
    result = cli("patch", spark_file, "--user-mode", "reset")
    assert 'USER ""' in result.stdout and "ROOT" in result.stdout and WHY in result.stdout


def test_no_message_contradicts_its_severity():
    """An info or warning never says the container fails; an error never says it works."""
    for case in CASES:
        dockerfile = parse_dockerfile(case.dockerfile.encode(), "Dockerfile", case.build_args)
        for finding in lint(dockerfile, RuleSelection(), target=case.target).findings:
            text = f"{finding.message} {finding.fix or ''}".lower()
            if finding.severity < Severity.ERROR:
                assert "fails" not in text and "refuse" not in text, (case.name, finding.message)
            else:
                assert "works" not in finding.message.lower(), (case.name, finding.message)


def test_patch_output_dash_is_stdout(cli, spark_file, tmp_path, monkeypatch):
    """#24: `-o -` wrote a file named '-'; '-' means stdout everywhere."""
    monkeypatch.chdir(tmp_path)
    result = cli("patch", spark_file, "-o", "-")
    assert result.exit_code == 0 and "USER 185:185\n" in result.stdout
    assert "patched" in result.stderr and not (tmp_path / "-").exists()
