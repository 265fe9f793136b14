"""Kata's TOML files read line by line: tables, the keys imagefix reads with their lines, and the
file parsed with tomllib as the runtime types it (a timeout that is no whole number stops the load).

The line scan is what the edits (config_edits.py) insert at and delete, so it
keeps each key's first and last line; tomllib gives the values.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import MEMORY_KEY, TIMEOUT_KEY  # kata/__init__ holds them: the rules name them without tomllib

MAX_CONFIG = 8 * 2**20  # the shipped files are about 30 kB; 8 MiB is far past any real one
KERNEL_PARAMS_KEY = "kernel_params"


HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
KEY_LINE = re.compile(rf"^(\s*)({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=\s*(.*)$")
INT_VALUE = re.compile(r"^(\s*[+]?\d[\d_]*)(.*)$", re.S)


def split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return tuple(p.strip("\"'") for p in parts)


@dataclass(slots=True)
class Entry:
    """One `key = value` line of a TOML file."""

    table: tuple[str, ...]  # the table it belongs to, dotted key prefix included
    key: str
    line: int  # 0-based
    last_line: int  # 0-based, for values spanning lines
    value_text: str

    @property
    def path(self) -> tuple[str, ...]:
        return (*self.table, self.key)


@dataclass(eq=False)
class TomlFile:
    """A TOML file's lines and keys (scanned at once) and its parsed data (parsed when first asked:
    an edit re-scans its text for line numbers without parsing it again)."""

    path: str
    lines: list[str]  # keepends
    newline: str
    entries: list[Entry] = field(default_factory=list)
    headers: dict[tuple[str, ...], int] = field(default_factory=dict)  # table -> 0-based header line
    table_last: dict[tuple[str, ...], int] = field(default_factory=dict)  # table -> its last key's last line
    _outcome: tuple[dict[str, Any] | None, str | None, int | None] | None = field(default=None, repr=False)

    @property
    def data(self) -> dict[str, Any] | None:
        """None when the file is not valid TOML (or a key imagefix reads has the wrong type)."""
        return self._parsed()[0]

    @property
    def error(self) -> str | None:
        return self._parsed()[1]

    @property
    def error_line(self) -> int | None:  # 1-based
        return self._parsed()[2]

    def release(self) -> None:
        """Drop the parsed data and the key index (a multi-MB file holds hundreds of MB of them); the
        lines stay. Asking for the data again parses again."""
        if self._outcome is not None and self._outcome[0] is not None:
            self._outcome = None
        self.table_last = {}

    def _parsed(self) -> tuple[dict[str, Any] | None, str | None, int | None]:
        if self._outcome is None:
            self._outcome = _load(self)
        return self._outcome

    def value(self, path: tuple[str, ...]) -> Any:
        return _get(self.data or {}, path)

    def entries_named(self, key: str) -> list[Entry]:
        return [e for e in self.entries if e.key == key]


def _kept(key: str) -> bool:
    """The keys imagefix reads or edits keep an Entry; for the rest only their table's last line counts."""
    return key in _KEPT_KEYS or key.endswith("_ms")


def _scan(lines: list[str]) -> tuple[list[Entry], dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
    """Tables and the keys imagefix reads with their lines, and every table's last key line, skipping
    the insides of multi-line strings and arrays (a multi-MB file keeps no object per key)."""
    entries: list[Entry] = []
    headers: dict[tuple[str, ...], int] = {}
    table_last: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r\n")
        header = HEADER.match(line)
        if header and not line.lstrip().startswith("#"):
            table = split_key(header.group(2))
            headers.setdefault(table, index)
            index += 1
            continue
        key = KEY_LINE.match(line)
        if key and not line.lstrip().startswith("#"):
            dotted = split_key(key.group(2))
            value = key.group(3)
            last = _value_end(lines, index, value)
            owner = table if len(dotted) == 1 else (*table, *dotted[:-1])  # shared: one tuple per table
            table_last[owner] = last
            if _kept(dotted[-1]):
                entries.append(Entry(owner, dotted[-1], index, last, value))
            index = last + 1
            continue
        index += 1
    return entries, headers, table_last


def _value_end(lines: list[str], start: int, value: str) -> int:
    """The last line of a value: multi-line strings and arrays continue past their first line."""
    for quote in ('"""', "'''"):
        if value.lstrip().startswith(quote) and value.count(quote) < 2:
            for index in range(start + 1, len(lines)):
                if quote in lines[index]:
                    return index
            return len(lines) - 1
    depth = _bracket_depth(value)
    index = start
    while depth > 0 and index + 1 < len(lines):
        index += 1
        depth += _bracket_depth(lines[index])
    return index


def _bracket_depth(text: str) -> int:
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def _explain_toml_error(message: str, lines: list[str]) -> tuple[str, int | None]:
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(match.group(1)) if match else None
    twice = re.search(r"Cannot declare \(([^)]*)\) twice", message)
    if twice:
        name = ".".join(p.strip().strip("'\"") for p in twice.group(1).split(",") if p.strip())
        return f"table [{name}] is declared twice (again at line {line})", line
    if "Cannot overwrite a value" in message and line:
        key = KEY_LINE.match(lines[line - 1]) if line - 1 < len(lines) else None
        name = key.group(2).strip() if key else "a key"
        return f"{name} is set twice (again at line {line})", line
    return message, line


# The shipped files have about 800 lines and 150 keys. Every line is kept as a string and every key
# becomes a dict entry in tomllib (an edit holds two copies): 8 MiB of one-character comment lines
# peaked at 315 MB (check) and 645 MB (patch), a million short keys at 204/306 MB.
MAX_LINES = 250_000
MAX_KEYS = 250_000  # counted as '=' signs: an inline table holds many keys on one line


def read_toml(path: str | Path) -> TomlFile:
    from ..errors import ImagefixError
    from ..fileio import decode_text, read_input

    text = decode_text(read_input(str(path), "Kata configuration", MAX_CONFIG), str(path),
                       "a Kata configuration")
    counts = ((text.count("\n"), "lines", MAX_LINES), (text.count("="), "keys ('=' signs)", MAX_KEYS))
    for count, what, limit in counts:
        if count > limit:
            raise ImagefixError(f"{path}: {count} {what} is too large for a Kata configuration (imagefix "
                                f"reads at most {limit}; the shipped files have about 800 lines)")
    return parse_toml(text, str(path))


# The keys imagefix reads, with the types Kata's config structs give them (uint32 seconds/MiB):
# a value of another type makes the runtime refuse the file.
_TYPED_KEYS = {TIMEOUT_KEY: "a whole number of seconds", MEMORY_KEY: "a whole number of MiB"}
_KEPT_KEYS = (TIMEOUT_KEY, MEMORY_KEY, "enable_annotations", "name", "hypervisor_name", "agent_name",
              "dial_timeout", KERNEL_PARAMS_KEY)


def parse_toml(text: str, path: str = "configuration.toml") -> TomlFile:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    entries, headers, table_last = _scan(lines)
    return TomlFile(path, lines, newline, entries, headers, table_last)


MAX_KEY_PARTS = 64  # Kata's keys have 2 or 3; tomllib is quadratic in them (100,000 parts never ended)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _deep_key(lines: list[str]) -> tuple[str, int] | None:
    """(message, line) for a key or table name of more than MAX_KEY_PARTS dotted parts."""
    for number, line in enumerate(lines):
        if line.count(".") <= MAX_KEY_PARTS:
            continue
        stripped = line.lstrip()
        head = stripped[1:].split("]", 1)[0] if stripped.startswith("[") else _QUOTED.sub("", stripped)
        head = _QUOTED.sub("", head).split("=", 1)[0]
        parts = head.count(".") + 1
        if parts > MAX_KEY_PARTS:
            return (f"a key of {parts} dotted parts (imagefix reads at most {MAX_KEY_PARTS}; Kata's own "
                    "have 3)"), number + 1
    return None


def _load(toml: TomlFile) -> tuple[dict[str, Any] | None, str | None, int | None]:
    deep = _deep_key(toml.lines)
    if deep:
        return None, *deep
    try:
        data = tomllib.loads("".join(toml.lines))
    except tomllib.TOMLDecodeError as exc:
        message, line = _explain_toml_error(str(exc), toml.lines)
        return None, message, line
    except RecursionError:
        return None, "nested too deeply to read", None
    for entry in toml.entries:
        want = _TYPED_KEYS.get(entry.key)
        value = _get(data, entry.path) if want else None
        # Go reads [runtime] create_container_timeout as uint64; runtime-rs ([agent.kata]) and
        # default_memory (both runtimes) are 32-bit.
        limit = 2**64 if entry.key == TIMEOUT_KEY and entry.table == ("runtime",) else 2**32
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value < limit):
            problem = (f"{entry.key} = {entry.value_text.strip()[:40]} is not {want} "
                       "(the runtime refuses the file)")
            return None, problem, entry.line + 1
    return data, None, None


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data
