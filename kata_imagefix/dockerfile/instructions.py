"""A Dockerfile's instructions (via dockerfile-parse) with their lines, heredocs, parser directives
and `# imagefix ignore=` pragmas.

dockerfile-parse gives instructions with 0-based start/end lines; it does not
know heredocs (a body line `USER nobody` would come back as an instruction),
so bodies are folded back into the instruction that opens them here.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from ..errors import ImagefixError

_HEREDOC_WORD = re.compile(r"^\d*<<(-?)([\"']?)([^\"'\s]+)\2$")
_HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")
_PRAGMA = re.compile(r"^\s*#\s*imagefix\s+(global\s+)?ignore\s*=\s*([A-Za-z0-9_,\s]+)$", re.I)
_DIRECTIVE = re.compile(r"^\s*#\s*([a-zA-Z]+)\s*=\s*(.*?)\s*$")


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


def parse_directives(lines: list[str]) -> dict[str, str]:
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


def read_instructions(lines: list[str], escape: str) -> list[Instruction]:
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


def ignore_pragmas(lines: list[str], instructions: list[Instruction]) -> tuple[dict[int, set[str]], set[str]]:
    """`# imagefix ignore=KIF101`: (1-based instruction line -> rule ids for the instruction below it,
    ids ignored in the whole file by `# imagefix global ignore=...`)."""
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
    return ignores, global_ignores
