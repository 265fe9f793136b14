"""Kata runtime configuration: where `create_container_timeout` really lives, and fixing it.

Facts (KATA-FACTS.md §2-3): the Go runtime (kata-qemu-tdx) reads the key in
`[runtime]`, runtime-rs in `[agent.kata]`; anywhere else (the popular
`[factory]` recipe) it is silently ignored, and a second `[factory]` header
makes the file invalid TOML. Drop-ins in `config.d/*.toml` beside the file are
read in order and win.

Edits are made line by line, not through a TOML round-trip library: tomlkit
puts a new key after the next table's leading comments and writes LF into
CRLF files. Every edited text is parsed again with tomllib and checked.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ImagefixError
from .rules.kata_subject import MEMORY_KEY, TIMEOUT_KEY

TIMEOUT_TABLE = {"go": ("runtime",), "rs": ("agent", "kata")}
DEFAULT_TIMEOUT = {"go": 60, "rs": 30}
DEFAULT_MEMORY_MIB = 2048

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_KEY = re.compile(rf"^(\s*)({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=\s*(.*)$")
_INT_VALUE = re.compile(r"^(\s*[+]?\d[\d_]*)(.*)$", re.S)


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+", text)
    return tuple(p.strip("\"'") for p in parts)


@dataclass
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


@dataclass
class TomlFile:
    path: str
    lines: list[str]  # keepends
    newline: str
    data: dict[str, Any] | None  # None when invalid
    error: str | None = None
    error_line: int | None = None  # 1-based
    entries: list[Entry] = field(default_factory=list)
    headers: dict[tuple[str, ...], int] = field(default_factory=dict)  # table -> 0-based header line

    def value(self, path: tuple[str, ...]) -> Any:
        node: Any = self.data or {}
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def entries_named(self, key: str) -> list[Entry]:
        return [e for e in self.entries if e.key == key]


def _scan(lines: list[str]) -> tuple[list[Entry], dict[tuple[str, ...], int]]:
    """Tables and keys with their lines, skipping the insides of multi-line strings and arrays."""
    entries: list[Entry] = []
    headers: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r\n")
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("#"):
            table = _split_key(header.group(2))
            headers.setdefault(table, index)
            index += 1
            continue
        key = _KEY.match(line)
        if key and not line.lstrip().startswith("#"):
            dotted = _split_key(key.group(2))
            value = key.group(3)
            last = _value_end(lines, index, value)
            entries.append(Entry((*table, *dotted[:-1]), dotted[-1], index, last, value))
            index = last + 1
            continue
        index += 1
    return entries, headers


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
        key = _KEY.match(lines[line - 1]) if line - 1 < len(lines) else None
        name = key.group(2).strip() if key else "a key"
        return f"{name} is set twice (again at line {line})", line
    return message, line


def read_toml(path: str | Path) -> TomlFile:
    from .fileio import decode_text, read_input

    text = decode_text(read_input(str(path)), str(path), "a Kata configuration")
    return parse_toml(text, str(path))


def parse_toml(text: str, path: str = "configuration.toml") -> TomlFile:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    entries, headers = _scan(lines)
    try:
        data = tomllib.loads(text)
        return TomlFile(path, lines, newline, data, entries=entries, headers=headers)
    except tomllib.TOMLDecodeError as exc:
        message, line = _explain_toml_error(str(exc), lines)
        return TomlFile(path, lines, newline, None, message, line, entries, headers)


@dataclass
class KataConfig:
    main: TomlFile
    dropins: list[TomlFile]
    runtime: str  # go | rs
    runtime_reason: str

    @property
    def files(self) -> list[TomlFile]:
        return [self.main, *self.dropins]

    @property
    def timeout_table(self) -> tuple[str, ...]:
        return TIMEOUT_TABLE[self.runtime]

    def effective(self, path: tuple[str, ...], default: Any) -> tuple[Any, TomlFile | None, Entry | None]:
        """The value Kata uses: the last file that sets it wins (drop-ins after the main file)."""
        found: tuple[Any, TomlFile | None, Entry | None] = (default, None, None)
        for toml in self.files:
            value = toml.value(path)
            if value is not None:
                entry = next((e for e in toml.entries if e.path == path), None)
                found = (value, toml, entry)
        return found

    def hypervisor_table(self) -> tuple[str, ...]:
        for toml in self.files:
            hypervisors = (toml.data or {}).get("hypervisor") or {}
            for name in hypervisors:
                return ("hypervisor", name)
        for table in self.main.headers:
            if len(table) == 2 and table[0] == "hypervisor":
                return table
        return ("hypervisor", "qemu")

    @property
    def timeout(self) -> tuple[int, TomlFile | None, Entry | None]:
        return self.effective((*self.timeout_table, TIMEOUT_KEY), DEFAULT_TIMEOUT[self.runtime])

    @property
    def memory(self) -> tuple[int, TomlFile | None, Entry | None]:
        return self.effective((*self.hypervisor_table(), MEMORY_KEY), DEFAULT_MEMORY_MIB)


def detect_runtime(toml: TomlFile) -> tuple[str, str]:
    """runtime-rs only when the file shows it (KATA-FACTS §2); the Go runtime otherwise."""
    data = toml.data or {}
    runtime = data.get("runtime") or {}
    for key in ("name", "hypervisor_name", "agent_name"):
        if key in runtime:
            return "rs", f"[runtime] {key} is a runtime-rs key"
    agent = (data.get("agent") or {}).get("kata") or {}
    for key in agent:
        if key.endswith("_ms"):
            return "rs", f"[agent.kata] {key} is a runtime-rs key"
    for table in toml.headers:
        if len(table) == 3 and table[0] == "hypervisor" and table[2] == "factory":
            return "rs", f"[{'.'.join(table)}] is a runtime-rs table"
    return "go", "no runtime-rs keys: the Go runtime (kata-qemu-tdx uses it)"


def load_config(path: str | Path, runtime: str | None = None) -> KataConfig:
    main = read_toml(path)
    folder = Path(path).resolve().parent / "config.d"
    dropins = [read_toml(p) for p in sorted(folder.glob("*.toml"))] if folder.is_dir() else []
    if runtime is None:
        runtime, reason = detect_runtime(main)
    else:
        reason = "--runtime"
    return KataConfig(main, dropins, runtime, reason)


# --- editing ---------------------------------------------------------------------------------

@dataclass
class Change:
    description: str


def _last_key_line(toml: TomlFile, table: tuple[str, ...]) -> int | None:
    lines = [e.last_line for e in toml.entries if e.table == table]
    if lines:
        return max(lines)
    return toml.headers.get(table)


def _set_int(toml: TomlFile, table: tuple[str, ...], key: str, value: int, comment: str,
             lines: list[str]) -> str | None:
    """Set table.key = value in `lines` (of `toml`); returns a description, or None if already so."""
    nl = toml.newline
    existing = [e for e in toml.entries if e.table == table and e.key == key]
    if existing:
        entry = existing[-1]
        current = toml.value((*table, key))
        if current == value:
            return None
        line = lines[entry.line]
        prefix, _, rest = line.partition("=")
        match = _INT_VALUE.match(rest)
        tail = match.group(2) if match else rest[len(rest.rstrip("\r\n")):]
        lead = rest[: len(rest) - len(rest.lstrip())]
        lines[entry.line] = f"{prefix}={lead or ' '}{value}{tail}"
        return f"[{'.'.join(table)}] {key} = {current} -> {value}"
    after = _last_key_line(toml, table)
    new = [f"# imagefix: {comment}{nl}", f"{key} = {value}{nl}"]
    if after is None:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.extend([nl, f"[{'.'.join(table)}]{nl}", *new])
    else:
        if not lines[after].endswith(("\n", "\r")):
            lines[after] += nl
        lines[after + 1 : after + 1] = new
    return f"[{'.'.join(table)}] {key} = {value} (added)"


def patch_config(config: KataConfig, *, timeout: int | None, memory: int | None,
                 why_timeout: str = "", why_memory: str = "") -> tuple[str, list[str]]:
    """The main file with misplaced timeout keys moved and the values set; (text, changes)."""
    toml = config.main
    if toml.data is None:
        raise ImagefixError(f"{toml.path}:{toml.error_line}: not valid TOML: {toml.error}; "
                            "fix it by hand (imagefix will not guess which copy you meant)")
    right = config.timeout_table
    misplaced = [e for e in toml.entries_named(TIMEOUT_KEY) if e.table != right]
    changes: list[str] = []
    if timeout is None and misplaced and toml.value((*right, TIMEOUT_KEY)) is None:
        moved = toml.value(misplaced[-1].path)
        timeout = moved if isinstance(moved, int) else None
    lines = list(toml.lines)
    for entry in sorted(misplaced, key=lambda e: e.line, reverse=True):
        del lines[entry.line : entry.last_line + 1]
        changes.append(f"removed {TIMEOUT_KEY} from [{'.'.join(entry.table)}] (line {entry.line + 1}), "
                       "where Kata ignores it")
    # Re-scan after deletions so line numbers are right for the insertions.
    edited = parse_toml("".join(lines), toml.path)
    lines = list(edited.lines)
    if timeout is not None:
        reasons = [why_timeout] if why_timeout else []
        if misplaced:
            reasons.insert(0, f"moved here from [{'.'.join(misplaced[-1].table)}], where Kata ignores it")
        done = _set_int(edited, right, TIMEOUT_KEY, timeout, "; ".join(reasons) or "set by imagefix", lines)
        if done:
            changes.append(done)
        edited = parse_toml("".join(lines), toml.path)
        lines = list(edited.lines)
    if memory is not None:
        table = config.hypervisor_table()
        done = _set_int(edited, table, MEMORY_KEY, memory, why_memory or "set by imagefix", lines)
        if done:
            changes.append(done)
    text = "".join(lines)
    check = parse_toml(text, toml.path)
    if check.data is None:  # pragma: no cover - a bug, never the user's fault
        raise ImagefixError(f"internal error: the patched {toml.path} does not parse ({check.error})")
    if timeout is not None and check.value((*right, TIMEOUT_KEY)) != timeout:  # pragma: no cover
        raise ImagefixError(f"internal error: {TIMEOUT_KEY} did not land in [{'.'.join(right)}]")
    return text, changes


def dropin_text(config: KataConfig, *, timeout: int | None, memory: int | None,
                why_timeout: str, why_memory: str) -> str:
    nl = config.main.newline
    out = [f"# Written by imagefix: overrides for {Path(config.main.path).name} (read after it).{nl}"]
    if timeout is not None:
        out += [f"{nl}[{'.'.join(config.timeout_table)}]{nl}", f"# {why_timeout}{nl}",
                f"{TIMEOUT_KEY} = {timeout}{nl}"]
    if memory is not None:
        out += [f"{nl}[{'.'.join(config.hypervisor_table())}]{nl}", f"# {why_memory}{nl}",
                f"{MEMORY_KEY} = {memory}{nl}"]
    return "".join(out)
