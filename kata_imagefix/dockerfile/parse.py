"""Dockerfiles: instructions (via dockerfile-parse), heredocs, stages, ARG/ENV expansion, effective USER.

dockerfile-parse gives instructions with 0-based start/end lines; it does not
know heredocs (a body line `USER nobody` would come back as an instruction),
so bodies are folded back into the instruction that opens them here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ImagefixError
from ..fileio import decode_text

_HEREDOC_WORD = re.compile(r"^\d*<<(-?)([\"']?)([^\"'\s]+)\2$")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")
_PRAGMA = re.compile(r"^\s*#\s*imagefix\s+(global\s+)?ignore\s*=\s*([A-Za-z0-9_,\s]+)$", re.I)
_DIRECTIVE = re.compile(r"^\s*#\s*([a-zA-Z]+)\s*=\s*(.*?)\s*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_EXPANDED = 4 * 2**20  # a value past this is made by a file that doubles it, not by a real build


@dataclass
class Instruction:
    keyword: str  # upper case
    value: str  # arguments, continuation lines joined
    start: int  # 0-based first line
    end: int  # 0-based last line, heredoc bodies included
    heredocs: list[str] = field(default_factory=list)

    @property
    def line(self) -> int:
        """1-based, for findings."""
        return self.start + 1


@dataclass
class UserSetting:
    raw: str  # as written
    value: str  # with ARG/ENV expanded
    instruction: Instruction
    stage: int
    unresolved: list[str] = field(default_factory=list)  # variables without a value
    variables: dict[str, str | None] = field(default_factory=dict)  # what the expansion saw
    declared_args: frozenset[str] = frozenset()  # ARG names in scope (a --build-arg can set only these)

    def expand_over(self, base_env: dict[str, str]) -> tuple[str, list[str]]:
        """The value again, with the base image's ENV under the Dockerfile's own values."""
        value, missing = expand(self.raw, {**base_env, **self.variables}, quotes=True)
        return value.strip(), missing


@dataclass
class Accounts:
    """Users and groups a Dockerfile creates, with the ids it gives them (None: chosen at build)."""

    users: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)  # name -> uid, group
    groups: dict[str, int | None] = field(default_factory=dict)

    def merge(self, other: Accounts) -> None:
        self.users.update(other.users)
        self.groups.update(other.groups)


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
        merged = Accounts()
        for link in reversed(self.chain(stage)):
            merged.merge(link.accounts)
        return merged


def expand(text: str, variables: dict[str, str | None], escape: str = "\\", *,
           quotes: bool = False) -> tuple[str, list[str]]:
    """Docker's ${VAR}, $VAR, ${VAR:-word}, ${VAR:+word} (and - / + forms, nested); returns missing names.

    With `quotes`, quotes are removed the way BuildKit's word lexer does for
    FROM and USER ('...' literal, "..." expanded); without, they stay (RUN).
    """
    try:
        out, _, missing = _Lexer(text, variables, escape, quotes).word(0, "")
    except RecursionError:
        raise ImagefixError(f"variable references nested too deep to expand ({text[:40]}...)") from None
    if len(out) > MAX_EXPANDED and len(out) > 2 * len(text):
        raise ImagefixError(f"a value expands to more than {MAX_EXPANDED // 2**20} MiB ({text[:40]}...): "
                            "ARG or ENV values doubling themselves")
    return out, missing


class _Lexer:
    """A small part of BuildKit's shell lexer: variable expansion with nesting, optional quote removal."""

    def __init__(self, text: str, variables: dict[str, str | None], escape: str, quotes: bool) -> None:
        self.text, self.variables, self.escape, self.quotes = text, variables, escape, quotes

    def word(self, pos: int, stop: str, in_double: bool = False) -> tuple[str, int, list[str]]:
        """Expand from `pos` until an unquoted `stop` character (or the end)."""
        text, out, missing = self.text, [], []
        while pos < len(text):
            ch = text[pos]
            if stop and ch == stop and not in_double:
                break
            if ch == self.escape and pos + 1 < len(text):
                following = text[pos + 1]
                if following == "$" or (self.quotes and (not in_double or following in f'"{self.escape}')):
                    out.append(following)
                else:
                    out.append(ch + following)
                pos += 2
                continue
            if self.quotes and ch == "'" and not in_double:
                close = text.find("'", pos + 1)
                close = len(text) if close < 0 else close
                out.append(text[pos + 1:close])
                pos = close + 1
                continue
            if self.quotes and ch == '"':
                if in_double:
                    return "".join(out), pos + 1, missing
                inner, pos, inner_missing = self.word(pos + 1, "", in_double=True)
                out.append(inner)
                missing += inner_missing
                continue
            if ch == "$":
                value, pos, var_missing = self.dollar(pos)
                out.append(value)
                missing += var_missing
                continue
            out.append(ch)
            pos += 1
        return "".join(out), pos, missing

    def dollar(self, pos: int) -> tuple[str, int, list[str]]:
        text = self.text
        plain = _NAME.match(text, pos + 1)
        if plain:
            value, missing, _ = self.value_of(plain.group(0), "", "")
            return value, plain.end(), missing
        braced = _NAME.match(text, pos + 2) if text.startswith("${", pos) else None
        if not braced:
            return "$", pos + 1, []
        name, cursor = braced.group(0), braced.end()
        operator = next((op for op in (":-", ":+", "-", "+") if text.startswith(op, cursor)), "")
        word, word_missing = "", []
        if operator:
            word, cursor, word_missing = self.word(cursor + len(operator), "}")
        elif not text.startswith("}", cursor):
            return "$", pos + 1, []
        end = cursor + 1 if text.startswith("}", cursor) else cursor
        value, missing, used_word = self.value_of(name, operator, word)
        return value, end, missing + (word_missing if used_word else [])

    def value_of(self, name: str, operator: str, word: str) -> tuple[str, list[str], bool]:
        """(value, missing names, whether the word was used)."""
        value = self.variables.get(name)
        is_set = name in self.variables and value is not None
        if operator in (":-", "-"):
            use_word = (not is_set) if operator == "-" else (not value)
            return (word, [], True) if use_word else (value or "", [], False)
        if operator in (":+", "+"):
            present = is_set if operator == "+" else bool(value)
            return (word, [], True) if present else ("", [], False)
        return (value or "", [], False) if is_set else ("", [name], False)


def _parse_directives(lines: list[str]) -> dict[str, str]:
    directives: dict[str, str] = {}
    for line in lines:
        match = _DIRECTIVE.match(line.rstrip("\r\n"))
        if not match:
            break
        directives[match.group(1).lower()] = match.group(2)
    return directives


def _parser_text(lines: list[str], escape: str) -> bytes:
    """The text dockerfile-parse is given: comment lines between instructions left blank (it keeps a
    dict for each comment: 40 MB of them took 600 MB), and a continuation left open at the end of the
    file closed - BuildKit runs the instruction it has gathered (`USER spark \\` as the last line),
    dockerfile-parse drops it. Line numbers stay."""
    out: list[str] = []
    continuing = False
    last_code = -1
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#") and not continuing and not _DIRECTIVE.match(line.rstrip("\r\n")):
            out.append("\n")
            continue
        out.append(line)
        if stripped and not stripped.startswith("#"):
            continuing = stripped.endswith(escape)
            last_code = len(out) - 1
    if continuing and last_code >= 0:
        out[last_code] = out[last_code].rstrip()[:-1] + "\n"
    return "".join(out).encode("utf-8", "surrogateescape")


def _instructions(lines: list[str], escape: str) -> list[Instruction]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(_parser_text(lines, escape)))
    try:
        structure = sorted(parser.structure, key=lambda s: s["startline"])
    except Exception as exc:  # dockerfile-parse raises plain errors on odd input
        raise ImagefixError(f"cannot parse: {exc}") from None
    out: list[Instruction] = []
    skip_until = -1
    for item in structure:
        keyword = item["instruction"].upper()
        if item["startline"] <= skip_until or keyword == "COMMENT":
            continue
        instruction = Instruction(keyword, item["value"].strip(), item["startline"], item["endline"])
        if keyword in _HEREDOC_KEYWORDS:
            _fold_heredocs(instruction, lines)
            skip_until = instruction.end
        out.append(instruction)
    return out


def _heredoc_markers(text: str) -> list[tuple[str, str]]:
    """(dash, word) for each heredoc: as BuildKit, a whole shell word (quotes kept) starting with <<."""
    import shlex

    if "<<" not in text:
        return []
    lexer = shlex.shlex(text, posix=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: BuildKit finds no heredoc in it either
        return []
    return [(m.group(1), m.group(3)) for m in map(_HEREDOC_WORD.match, words) if m]


def _fold_heredocs(instruction: Instruction, lines: list[str]) -> None:
    first_line = lines[instruction.start] if instruction.start < len(lines) else ""
    markers = _heredoc_markers(instruction.value) or _heredoc_markers(first_line.rstrip("\r\n"))
    cursor = instruction.end + 1
    for dash, word in markers:
        body: list[str] = []
        while cursor < len(lines):
            candidate = lines[cursor].rstrip("\r\n")
            if (candidate.lstrip("\t") if dash else candidate) == word:
                break
            body.append(lines[cursor])
            cursor += 1
        else:
            raise ImagefixError(f"line {instruction.line}: heredoc <<{word} is never closed")
        instruction.heredocs.append("".join(body))
        instruction.end = cursor
        cursor += 1


_SPLIT_COMMANDS = re.compile(r"&&|\|\||;|\||\n")


_WORD = re.compile(r"""(?:[^\s'"\\]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.)+""", re.S)
_PART = re.compile(r"""'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)|([^'"\\]+)""", re.S)
_ACCOUNT_TOOLS = re.compile(r"useradd|adduser|groupadd|addgroup")


def _words(command: str) -> list[str]:
    """Shell words with quotes removed, in linear time (shlex grows each token a character at a
    time: a 1 MB word took 13 s)."""
    return ["".join(_unquoted(m) for m in _PART.finditer(word)) for word in _WORD.findall(command)]


def _unquoted(part: re.Match) -> str:
    if part.group(2) is not None:  # "...": the shell keeps backslashes except before \ " $ `
        return re.sub(r'\\([\\"$`])', r"\1", part.group(2))
    return part.group(1) if part.group(1) is not None else (part.group(3) or part.group(4) or "")


def _option(words: list[str], short: str | None, long: str | None) -> str | None:
    for i, word in enumerate(words):
        if long and word.startswith(long + "="):
            return word.split("=", 1)[1]
        if word in (short, long) and i + 1 < len(words):
            return words[i + 1]
        glued = short and len(short) == 2 and word.startswith(short) and not word.startswith("--")
        if glued and len(word) > 2:
            return word[2:]
    return None


def _operands(words: list[str], takes_value: set[str]) -> list[str]:
    operands = []
    skip = False
    for word in words[1:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            if word in takes_value:
                skip = True
            continue
        operands.append(word)
    return operands


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


_USERADD_VALUE_OPTS = {"-u", "--uid", "-g", "--gid", "-G", "--groups", "-d", "--home-dir", "-s", "--shell",
                       "-c", "--comment", "-k", "--skel", "-K", "--key", "-e", "--expiredate", "-f",
                       "--inactive", "-p", "--password", "-b", "--base-dir", "-h", "--home", "--ingroup",
                       "--gecos", "--firstuid", "--lastuid", "--firstgid", "--lastgid", "-R", "--root"}


def _accounts_from_run(script: str, into: Accounts) -> None:
    """useradd/groupadd/adduser/addgroup, and passwd lines echoed into /etc/passwd."""
    for command in _SPLIT_COMMANDS.split(script) if _ACCOUNT_TOOLS.search(script) else ():
        if not _ACCOUNT_TOOLS.search(command):
            continue  # only a command that can create an account is split into words
        words = _words(command.strip())
        while words and (words[0] in ("sudo", "exec", "set", "-e", "-x", "-ex") or "=" in words[0]):
            words = words[1:]
        if not words:
            continue
        tool = words[0].rsplit("/", 1)[-1]
        operands = _operands(words, _USERADD_VALUE_OPTS)
        name = operands[-1] if operands else None
        if tool in ("groupadd", "addgroup") and name:
            if tool == "addgroup" and len(operands) >= 2:
                continue  # busybox `addgroup USER GROUP` adds a member, creates nothing
            into.groups[name] = _int(_option(words, "-g", "--gid"))
        elif tool == "useradd" and name:
            into.users[name] = (_int(_option(words, "-u", "--uid")), _option(words, "-g", "--gid"))
        elif tool == "adduser" and name:
            uid = _int(_option(words, "-u", "--uid"))
            group = _option(words, "-G", "--ingroup") or _option(words, None, "--gid")
            busybox = any(w in ("-D", "-S", "-H") for w in words)
            if group is None and busybox and uid is not None:
                # busybox adduser makes a group of the same name with gid = uid
                into.groups.setdefault(name, uid)
                group = name
            into.users[name] = (uid, group)
    if "/etc/passwd" in script:
        for name, uid, gid in re.findall(r"([A-Za-z_][A-Za-z0-9_.-]*):[^:\s]*:(\d+):(\d+):", script):
            into.users[name] = (int(uid), gid)
    if "/etc/group" in script:
        for name, gid in re.findall(r"([A-Za-z_][A-Za-z0-9_.-]*):[^:\s]*:(\d+):(?:[\w,]*)", script):
            if name not in into.users or "/etc/passwd" not in script:
                into.groups.setdefault(name, int(gid))


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


def _declare_args(value: str, build_args: dict[str, str], into: dict[str, str | None],
                  scope: dict[str, str | None], escape: str,
                  inherited: Callable[[str], str | None]) -> None:
    """`ARG name[=default] ...`: the --build-arg value, else the default expanded in `scope`, else
    what `inherited(name)` gives (a global ARG redeclared in a stage)."""
    for name, default in _arg_pairs(value):
        if name in build_args:
            into[name] = build_args[name]
        elif default is not None:
            into[name] = expand(default, scope, escape)[0]
        else:
            into[name] = inherited(name)


def _arg_pairs(value: str) -> list[tuple[str, str | None]]:
    pairs = []
    for word in _words(value):
        name, sep, default = word.partition("=")
        pairs.append((name, default if sep else None))
    return pairs


def _env_pairs(value: str) -> list[tuple[str, str]]:
    words = _words(value)
    if words and "=" not in words[0]:  # legacy `ENV key value with spaces`
        return [(words[0], value.split(None, 1)[1] if len(value.split(None, 1)) > 1 else "")]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]


def parse_dockerfile(data: bytes | str, path: str = "Dockerfile",
                     build_args: dict[str, str] | None = None) -> Dockerfile:
    text = decode_text(data, path, "a Dockerfile") if isinstance(data, bytes) else data
    bom = text.startswith("\ufeff")
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    del text, data  # 40 MB of comments: the lines are all that is kept
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    directives = _parse_directives(lines)
    escape = directives.get("escape", "\\")[:1] or "\\"
    try:
        instructions = _instructions(lines, escape)
    except ImagefixError as exc:
        raise ImagefixError(f"{path}: {exc}") from None
    build_args = build_args or {}

    ignores: dict[int, set[str]] = {}
    global_ignores: set[str] = set()
    starts = {i.start: i for i in instructions}
    for number, line in enumerate(lines):
        match = _PRAGMA.match(line.rstrip("\r\n"))
        if not match:
            continue
        ids = {part.strip().upper() for part in match.group(2).split(",") if part.strip()}
        if match.group(1):
            global_ignores |= ids
            continue
        following = number + 1  # the next instruction after any further comment lines
        while (following < len(lines) and following not in starts
               and lines[following].lstrip().startswith("#")):
            following += 1
        if following in starts:
            ignores.setdefault(following + 1, set()).update(ids)

    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    named: dict[str, Stage] = {}
    stage_args: dict[str, str | None] = {}
    current: Instruction | None = None
    try:
        for instruction in instructions:
            current = instruction
            keyword = instruction.keyword
            if keyword == "FROM":
                raw_image, name, platform = _from_parts(instruction.value)
                image, _ = expand(raw_image, {**global_args}, escape, quotes=True)
                stage = Stage(len(stages), name.lower() if name else None, image, platform, instruction)
                earlier = named.get(image.lower())
                if earlier is not None:
                    stage.parent = earlier.index
                    stage.env = dict(earlier.env)
                stages.append(stage)
                if stage.name:
                    named[stage.name] = stage  # the latest stage of a name, as the loop over all had found
                stage_args = {}
                continue
            if not stages:
                if keyword == "ARG":  # before the first FROM: each ARG sees the ones before it
                    _declare_args(instruction.value, build_args, global_args, global_args, escape,
                                  lambda _: None)
                continue
            stage = stages[-1]
            stage.instructions.append(instruction)
            variables = {**stage_args, **stage.env}
            if keyword == "ARG":
                _declare_args(instruction.value, build_args, stage_args, variables, escape, global_args.get)
            elif keyword == "ENV":
                for name, value in _env_pairs(instruction.value):
                    stage.env[name] = expand(value, variables, escape)[0]
            elif keyword == "USER":
                if not instruction.value.strip():
                    raise ImagefixError(f"{path}:{instruction.line}: USER needs an argument "
                                        "(BuildKit refuses the file)")
                value, missing = expand(instruction.value.strip(), variables, escape, quotes=True)
                stage.user = UserSetting(instruction.value.strip(), value.strip(), instruction, stage.index,
                                         missing, dict(variables), frozenset(stage_args))
            elif keyword == "RUN":
                script, _ = expand(" ".join([instruction.value, *instruction.heredocs]), variables, escape)
                _accounts_from_run(script, stage.accounts)
            elif keyword in ("COPY", "ADD") and instruction.heredocs:
                target = instruction.value.split()[-1] if instruction.value.split() else ""
                if target in ("/etc/passwd", "/etc/group"):
                    _accounts_from_run(f"{target}\n" + "".join(instruction.heredocs), stage.accounts)
    except ImagefixError as exc:
        if str(exc).startswith(f"{path}:") or current is None:
            raise
        raise ImagefixError(f"{path}:{current.line}: {exc}") from None
    if not stages:
        raise ImagefixError(f"{path}: no FROM instruction: not a Dockerfile")
    return Dockerfile(path, lines, bom, newline, escape, instructions, stages, global_args, ignores,
                      global_ignores, _windows(escape, stages, lines))


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
