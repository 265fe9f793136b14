"""A Dockerfile's stages: FROM and what each stage builds on, ARG/ENV in scope (the base image's
Config.Env when read), the effective USER setting, account steps, Windows detection.

The instructions come from instructions.py, values are expanded by lexer.py,
and what RUN/COPY/ADD do to accounts is run_script.py's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ImagefixError
from ..fileio import decode_text
from .accounts import Accounts
from .instructions import Instruction, ignore_pragmas, parse_directives, read_instructions
from .lexer import expand, expand_tracked, split_words
from .run_script import collect_accounts


@dataclass
class UserSetting:
    raw: str  # as written
    value: str  # with ARG/ENV expanded
    instruction: Instruction
    stage: int
    unresolved: list[str] = field(default_factory=list)  # variables without a value, at the root of a chain
    declared_args: frozenset[str] = frozenset()  # ARG names in scope (a --build-arg can set only these)
    through: dict[str, list[str]] = field(default_factory=dict)  # variable used -> unset ones behind it
    global_only: frozenset[str] = frozenset()  # global ARGs the stage does not redeclare


@dataclass
class Stage:
    index: int
    name: str | None
    base: str  # expanded FROM image (or an earlier stage's name)
    platform: str | None
    from_instruction: Instruction
    parent: int | None = None  # index of the earlier stage it builds on
    instructions: list[Instruction] = field(default_factory=list)
    user: UserSetting | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_known: bool = False  # env starts from a base image's that was read (or scratch)
    env_taint: dict[str, list[str]] = field(default_factory=dict)  # ENV names set from unknown variables
    accounts: Accounts = field(default_factory=Accounts)

    @property
    def last_line(self) -> int:
        return max([self.from_instruction.end] + [i.end for i in self.instructions])


@dataclass
class Dockerfile:
    path: str
    lines: list[str]  # keepends; the BOM removed from the first line
    bom: bool
    newline: str
    escape: str
    instructions: list[Instruction]
    stages: list[Stage]
    global_args: dict[str, str | None]
    ignores: dict[int, set[str]]  # 1-based instruction line -> rule ids
    global_ignores: set[str]
    windows: str | None = None  # why this looks like a Windows image (not a Kata workload)
    build_args: dict[str, str] = field(default_factory=dict)
    base_envs: dict[str, dict[str, str]] = field(default_factory=dict)  # FROM image -> its Config.Env

    def with_base_env(self, image: str, env: dict[str, str]) -> Dockerfile:
        """Parsed again with a base image's ENV as the starting environment of the stages FROM it,
        as BuildKit expands ARG defaults, ENV and USER over the image config's Env."""
        text = "".join(self.lines)
        return parse_dockerfile(text, self.path, self.build_args, {**self.base_envs, image: env})

    def stage(self, target: str | None) -> Stage:
        if target is None:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == target.lower() or str(stage.index) == target:
                return stage
        names = ", ".join(s.name or str(s.index) for s in self.stages)
        raise ImagefixError(f"{self.path}: no stage {target!r} (stages: {names})")

    def chain(self, stage: Stage) -> list[Stage]:
        """The stage and the earlier stages it builds on, nearest first."""
        out = [stage]
        while out[-1].parent is not None:
            out.append(self.stages[out[-1].parent])
        return out

    def user_setting(self, stage: Stage) -> UserSetting | None:
        """The USER instruction in force for the stage (its own, else the nearest earlier stage's)."""
        for link in self.chain(stage):
            if link.user is not None:
                return link.user
        return None

    def accounts_for(self, stage: Stage) -> Accounts:
        """The account steps of the stage and the stages it builds on, in build order."""
        merged = Accounts()
        for link in reversed(self.chain(stage)):
            merged.extend(link.accounts)
        return merged

    def find_stage(self, name: str, before: int) -> Stage | None:
        """An earlier stage by name or index (COPY --from, FROM), or None for an image."""
        for stage in self.stages[:before]:
            if (stage.name and stage.name == name.lower()) or str(stage.index) == name:
                return stage
        return None


def _from_parts(value: str) -> tuple[str, str | None, str | None]:
    words = value.split()
    platform = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--platform="):
            platform = flag.split("=", 1)[1]
    image = words[0] if words else ""
    name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
    return image, name, platform


@dataclass
class _Scope:
    """What expansion sees in a stage: its ARGs, its ENV (with the base image's when known), and
    which names got their value from variables nobody set here (`ARG cu=$USER`)."""

    args: dict[str, str | None]
    env: dict[str, str]
    env_known: bool  # the stage starts from a known environment (scratch, a read base, a stage)
    taint: dict[str, list[str]] = field(default_factory=dict)
    escape: str = "\\"

    @property
    def variables(self) -> dict[str, str | None]:
        return {**self.args, **self.env}

    def expand(self, text: str, quotes: bool = False) -> tuple[str, list[str], dict[str, list[str]]]:
        """(value, the unset names it depends on, variable used -> its unset roots)."""
        value, missing, used = expand_tracked(text, self.variables, self.escape, quotes=quotes)
        roots = [n for n in missing if n in self.args or not self.env_known]
        through = {n: self.taint[n] for n in used if self.taint.get(n)}
        for names in through.values():
            roots += [n for n in names if n not in roots]
        return value, list(dict.fromkeys(roots)), through

    def assign(self, name: str, text: str, into: dict) -> None:
        value, roots, _ = self.expand(text)
        into[name] = value
        self.set_taint(name, roots)

    def set_taint(self, name: str, roots: list[str]) -> None:
        if roots:
            self.taint[name] = roots
        else:
            self.taint.pop(name, None)


def _declare_args(value: str, build_args: dict[str, str], scope: _Scope,
                  inherited: Callable[[str], str | None]) -> None:
    """`ARG name[=default] ...`: the --build-arg value, else the default expanded in the scope, else
    what `inherited(name)` gives (a global ARG redeclared in a stage)."""
    for name, default in _arg_pairs(value):
        if name in build_args:
            scope.args[name] = build_args[name]
            scope.set_taint(name, [])
        elif default is not None:
            scope.assign(name, default, scope.args)
        else:
            scope.args[name] = inherited(name)
            scope.set_taint(name, [])


def _arg_pairs(value: str) -> list[tuple[str, str | None]]:
    pairs = []
    for word in split_words(value):
        name, sep, default = word.partition("=")
        pairs.append((name, default if sep else None))
    return pairs


def _env_pairs(value: str) -> list[tuple[str, str]]:
    words = split_words(value)
    if words and "=" not in words[0]:  # legacy `ENV key value with spaces`
        return [(words[0], value.split(None, 1)[1] if len(value.split(None, 1)) > 1 else "")]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]


# Each line is kept as a string and costs up to ~700 bytes more while read (comment lines inside a
# continuation): 40 MB of short comment or blank lines took 0.5-1.8 GB and up to a minute. Real
# Dockerfiles have hundreds of lines; 50,000 two-line stages still fit. A byte costs up to 7 while
# read (60 MB of RUN lines: 425 MB), so the file is bounded too; a 10 MB RUN line still lints.
MAX_LINES = 150_000
MAX_BYTES = 16 * 2**20
_BREAKS = "\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines' breaks besides \r


def line_count(text: str) -> int:
    """The lines str.splitlines would make, counted without making them."""
    return sum(text.count(ch) for ch in _BREAKS) + text.count("\r") - text.count("\r\n") + 1


def parse_dockerfile(data: bytes | str, path: str = "Dockerfile",
                     build_args: dict[str, str] | None = None,
                     base_envs: dict[str, dict[str, str]] | None = None) -> Dockerfile:
    """`base_envs`: the Config.Env of base images that were read (FROM reference -> env)."""
    text = decode_text(data, path, "a Dockerfile") if isinstance(data, bytes) else data
    count = line_count(text)
    if count > MAX_LINES:
        raise ImagefixError(f"{path}: {count} lines is too large for a Dockerfile (imagefix reads at most "
                            f"{MAX_LINES})")
    bom = text.startswith("\ufeff")
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    del text, data  # 40 MB of comments: the lines are all that is kept
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    directives = parse_directives(lines)
    escape = directives.get("escape", "\\")[:1] or "\\"
    try:
        instructions = read_instructions(lines, escape)
    except ImagefixError as exc:
        raise ImagefixError(f"{path}: {exc}") from None
    build_args = build_args or {}
    ignores, global_ignores = ignore_pragmas(lines, instructions)

    base_envs = base_envs or {}
    global_scope = _Scope({}, {}, True, escape=escape)  # before FROM: only ARGs, no image's ENV
    stages: list[Stage] = []
    scope = global_scope
    named: dict[str, Stage] = {}
    current: Instruction | None = None
    try:
        for instruction in instructions:
            current = instruction
            keyword = instruction.keyword
            if keyword == "FROM":
                raw_image, name, platform = _from_parts(instruction.value)
                image, _ = expand(raw_image, {**global_scope.args}, escape, quotes=True)
                stage = Stage(len(stages), name.lower() if name else None, image, platform, instruction)
                scope = _Scope({}, dict(base_envs.get(image, {})),
                               image in base_envs or image.lower() == "scratch", escape=escape)
                earlier = named.get(image.lower())  # the latest stage of that name (50,000 stages: no scan)
                if earlier is not None:
                    stage.parent = earlier.index
                    stage.env = dict(earlier.env)
                    scope = _Scope({}, stage.env, earlier.env_known, dict(earlier.env_taint), escape)
                stage.env, stage.env_known, stage.env_taint = scope.env, scope.env_known, scope.taint
                stages.append(stage)
                if stage.name:
                    named[stage.name] = stage
                continue
            if not stages:
                if keyword == "ARG":  # before the first FROM: each ARG sees the ones before it
                    _declare_args(instruction.value, build_args, global_scope, lambda _: None)
                continue
            stage = stages[-1]
            stage.instructions.append(instruction)
            if keyword == "ARG":
                _declare_args(instruction.value, build_args, scope, global_scope.args.get)
            elif keyword == "ENV":
                for name, value in _env_pairs(instruction.value):
                    scope.assign(name, value, scope.env)
            elif keyword == "USER":
                if not instruction.value.strip():
                    raise ImagefixError(f"{path}:{instruction.line}: USER needs an argument "
                                        "(BuildKit refuses the file)")
                value, roots, through = scope.expand(instruction.value.strip(), quotes=True)
                stage.user = UserSetting(instruction.value.strip(), value.strip(), instruction, stage.index,
                                         roots, frozenset(scope.args), through,
                                         frozenset(n for n in global_scope.args if n not in scope.args))
            elif keyword in ("RUN", "COPY", "ADD"):
                collect_accounts(instruction, scope.variables, escape, stage.accounts)
    except ImagefixError as exc:
        if str(exc).startswith(f"{path}:") or current is None:
            raise
        raise ImagefixError(f"{path}:{current.line}: {exc}") from None
    if not stages:
        raise ImagefixError(f"{path}: no FROM instruction: not a Dockerfile")
    return Dockerfile(path, lines, bom, newline, escape, instructions, stages, global_scope.args, ignores,
                      global_ignores, _windows(escape, stages, lines), dict(build_args), base_envs)


_WINDOWS_BASES = re.compile(r"(^|/)(windows|nanoserver|servercore)([/:@-]|$)|windowsservercore|nanoserver",
                            re.I)


_WINDOWS_COMMANDS = re.compile(r"powershell|pwsh|\bcmd(\.exe)?\s+/[SsCc]\b|\b[A-Za-z]:\\\\", re.I)


def _windows(escape: str, stages: list[Stage], lines: list[str]) -> str | None:
    """Why the Dockerfile builds a Windows image, or None: a Windows base, or the backtick escape
    (the Windows convention) together with Windows commands or paths."""
    final = stages[-1]
    while final.parent is not None:
        final = stages[final.parent]
    if _WINDOWS_BASES.search(final.base):
        return f"Windows base image {final.base}"
    if escape == "`" and any(_WINDOWS_COMMANDS.search(line) for line in lines):
        return "# escape=` with Windows commands"
    return None
