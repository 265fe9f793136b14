"""What a stage does to /etc/passwd and /etc/group, as a list of steps to replay (account_tools.py).

Parsing only records the steps, in order: the account commands of its RUN
instructions (heredoc bodies and `sh -c` scripts included), passwd/group lines
it writes itself, and `COPY --from=… /etc/passwd`. What ids they give is
decided later, when the base image is known or known to be unknown: the same
`useradd -u 1000 app` gives gid 1000 on one base and a picked gid on another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .shell import commands

ACCOUNT_TOOLS = ("useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel",
                 "adduser", "addgroup", "deluser", "delgroup")
_MENTIONS = re.compile("|".join(ACCOUNT_TOOLS))
_PACKAGE_TOOLS = {"apk": "busybox", "apt-get": "debian", "apt": "debian", "dpkg": "debian",
                  "dnf": "shadow", "microdnf": "shadow", "yum": "shadow", "rpm": "shadow"}
_PASSWD_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*):[^:\s]*:(\d+):(\d+):")
_GROUP_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*):[^:\s]*:(\d+):(?:[\w,]*)")


@dataclass(frozen=True)
class Command:
    """An account tool's words as the shell passes them (`busybox adduser` already cut to `adduser`)."""

    words: tuple[str, ...]
    busybox: bool = False  # run as `busybox adduser …`: the family is certain


@dataclass(frozen=True)
class PasswdLine:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class GroupLine:
    name: str
    gid: int


@dataclass(frozen=True)
class CopyFrom:
    """`COPY --from=SOURCE` of /etc/passwd and/or /etc/group: the files are now SOURCE's."""

    source: str  # a stage name or index, or an image reference
    passwd: bool
    group: bool


Step = Command | PasswdLine | GroupLine | CopyFrom


@dataclass
class Accounts:
    """A stage's account steps in order, and the package tools its RUNs use (a hint at the distro)."""

    steps: list[Step] = field(default_factory=list)
    package_tools: set[str] = field(default_factory=set)

    def extend(self, other: Accounts) -> None:
        self.steps.extend(other.steps)
        self.package_tools |= other.package_tools

    @property
    def families(self) -> set[str]:
        return {_PACKAGE_TOOLS[tool] for tool in self.package_tools}


def collect_run(script: str, into: Accounts) -> None:
    """Record the account steps of a RUN script (its heredoc bodies included)."""
    for tool in _PACKAGE_TOOLS:
        if tool in script and re.search(rf"(^|[\s;&|(/]){re.escape(tool)}\s", script):
            into.package_tools.add(tool)
    if _MENTIONS.search(script):
        for words in commands(script):
            step = _account_command(words)
            if step is not None:
                into.steps.append(step)
    if "/etc/passwd" in script:
        into.steps.extend(PasswdLine(n, int(u), int(g)) for n, u, g in _PASSWD_LINE.findall(script))
    if "/etc/group" in script:
        users = {n for n, _, _ in _PASSWD_LINE.findall(script)} if "/etc/passwd" in script else set()
        into.steps.extend(GroupLine(n, int(g)) for n, g in _GROUP_LINE.findall(script) if n not in users)


def collect_file(target: str, body: str, into: Accounts) -> None:
    """`COPY <<EOF /etc/passwd` (or /etc/group): the lines it writes."""
    collect_run(f"{target}\n{body}", into)


def collect_copy(value: str, into: Accounts) -> None:
    """`COPY --from=X /etc/passwd /etc/group /etc/`: the account files now come from X."""
    words = value.split()
    source = next((w.split("=", 1)[1] for w in words if w.lower().startswith("--from=")), None)
    paths = [w for w in words if not w.startswith("--")]
    if source is None or len(paths) < 2:
        return
    sources = {p.rstrip("/") or "/" for p in paths[:-1]}
    whole = bool(sources & {"/etc", "/"})
    passwd, group = whole or "/etc/passwd" in sources, whole or "/etc/group" in sources
    if passwd or group:
        into.steps.append(CopyFrom(source, passwd, group))


def _account_command(words: list[str]) -> Command | None:
    busybox = words[0].rsplit("/", 1)[-1] == "busybox" and len(words) > 1
    if busybox:
        words = words[1:]
    tool = words[0].rsplit("/", 1)[-1]
    if tool not in ACCOUNT_TOOLS:
        return None
    return Command((tool, *words[1:]), busybox)
