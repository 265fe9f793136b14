"""Kata runtime configuration: where `create_container_timeout` really lives, and fixing it.

Facts (docs/kata-config.md): the Go runtime (kata-qemu-tdx) reads the key in
`[runtime]` and has no default of its own (a missing key is 0 s); runtime-rs
reads it in `[agent.kata]` (30 s when absent). Elsewhere it is ignored, or in
some tables makes the runtime refuse the file. Both runtimes resolve the
config's symlinks and then read *every* entry of `config.d/` beside the
resolved file, in name order, whatever its suffix, each over the last.

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

from ..errors import ImagefixError
from . import MEMORY_KEY, TIMEOUT_KEY

MAX_CONFIG = 8 * 2**20  # the shipped files are about 30 kB; 8 MiB is far past any real one
KERNEL_PARAMS_KEY = "kernel_params"
TIMEOUT_TABLE = {"go": ("runtime",), "rs": ("agent", "kata")}
DEFAULT_TIMEOUT = {"go": 0, "rs": 30}  # Go: no code default (kata_agent.go takes the config's value)
DEFAULT_MEMORY_MIB = 2048

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_KEY = re.compile(rf"^(\s*)({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=\s*(.*)$")
_INT_VALUE = re.compile(r"^(\s*[+]?\d[\d_]*)(.*)$", re.S)


def _split_key(text: str) -> tuple[str, ...]:
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
        key = _KEY.match(lines[line - 1]) if line - 1 < len(lines) else None
        name = key.group(2).strip() if key else "a key"
        return f"{name} is set twice (again at line {line})", line
    return message, line


def read_toml(path: str | Path) -> TomlFile:
    from ..fileio import decode_text, read_input

    text = decode_text(read_input(str(path), "Kata configuration", MAX_CONFIG), str(path),
                       "a Kata configuration")
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


@dataclass
class KataConfig:
    main: TomlFile
    dropins: list[TomlFile]
    runtime: str  # go | rs
    runtime_reason: str
    broken: list[BrokenEntry] = field(default_factory=list)  # config.d entries that stop the load
    resolved: Path | None = None  # the main file after symlinks: where config.d is looked for

    @property
    def dropin_dir(self) -> Path:
        return (self.resolved or Path(self.main.path)).parent / "config.d"

    @property
    def kata_deploy(self) -> bool:
        """The kata-deploy layout: the file is replaced on upgrade, changes belong in config.d."""
        return bool(self.resolved and KATA_DEPLOY_MARK.search(str(self.resolved)))

    @property
    def patch_mode(self) -> str:
        """How a suggested `kata patch` should write: never into a file kata-deploy manages."""
        if self.kata_deploy:
            return f"--drop-in {self.dropin_dir}/90-imagefix.toml"
        return "--in-place"

    @property
    def loads(self) -> bool:
        """Whether the runtime can load this configuration at all."""
        return not self.broken and all(t.data is not None for t in self.files)

    def with_text(self, path: str, text: str) -> KataConfig:
        """The same configuration with one file's text replaced (or a new drop-in added): what Kata
        would read after a write, before anything is written."""
        new = parse_toml(text, path)
        same = [Path(path).resolve() == Path(t.path).resolve() for t in self.files]
        if same[0]:
            return KataConfig(new, self.dropins, self.runtime, self.runtime_reason, self.broken,
                              self.resolved)
        dropins = [new if hit else t for hit, t in zip(same[1:], self.dropins, strict=True)]
        if not any(same[1:]):
            dropins.append(new)
            dropins.sort(key=lambda t: Path(t.path).name.encode("utf-8", "surrogateescape"))
        return KataConfig(self.main, dropins, self.runtime, self.runtime_reason, self.broken, self.resolved)

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

    @property
    def kernel_params(self) -> str:
        """The effective kernel_params: one string, the last file that sets it replaces it whole."""
        value = self.effective((*self.hypervisor_table(), KERNEL_PARAMS_KEY), "")[0]
        return value if isinstance(value, str) else ""

    @property
    def image_pull_timeout(self) -> int:
        """agent.image_pull_timeout the guest gets from kernel_params (1200 s when not there)."""
        from .classes import image_pull_timeout

        return image_pull_timeout(self.kernel_params)

    def hypervisors(self) -> list[str]:
        """The [hypervisor.<name>] tables of the merged files: Go keeps them in a map and takes one
        in random order when there are several (a drop-in written for another config adds one)."""
        names: dict[str, None] = {}  # ordered and O(1): 60,000 tables were 47 s as a list
        for toml in self.files:
            for name, table in ((toml.data or {}).get("hypervisor") or {}).items():
                if isinstance(table, dict):
                    names.setdefault(name)
        return list(names)


_RS_RUNTIME_KEYS = ("name", "hypervisor_name", "agent_name")


def detect_runtime(toml: TomlFile) -> tuple[str, str]:
    """runtime-rs only when the file shows it; the Go runtime otherwise.

    Read from the scanned lines, not the parsed data, so an invalid file is
    still recognised (advice for the wrong runtime would move a right key).
    """
    for entry in toml.entries:
        if entry.table == ("runtime",) and entry.key in _RS_RUNTIME_KEYS:
            return "rs", f"[runtime] {entry.key} is a runtime-rs key"
        if entry.table == ("agent", "kata") and entry.key.endswith("_ms"):
            return "rs", f"[agent.kata] {entry.key} is a runtime-rs key"
    for table in toml.headers:
        if len(table) == 3 and table[0] == "hypervisor" and table[2] == "factory":
            return "rs", f"[{'.'.join(table)}] is a runtime-rs table"
    return "go", "no runtime-rs keys: the Go runtime (kata-qemu-tdx uses it)"


@dataclass(frozen=True)
class BrokenEntry:
    """A config.d entry that makes the runtime refuse to load the configuration."""

    path: str
    why: str


def read_dropins(folder: Path, runtime: str | None) -> tuple[list[TomlFile], list[BrokenEntry]]:
    """Every entry of config.d in name order, as Kata reads them (any suffix, dot-files too)."""
    if not folder.is_dir():
        return [], []
    dropins: list[TomlFile] = []
    broken: list[BrokenEntry] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.encode("utf-8", "surrogateescape")):
        if entry.is_symlink() and runtime == "rs":
            broken.append(BrokenEntry(str(entry), "runtime-rs accepts only regular files in config.d "
                                      "(this is a symbolic link)"))
            continue
        if entry.is_dir():
            broken.append(BrokenEntry(str(entry), "a directory in config.d: the runtime fails to read it"))
            continue
        try:
            dropins.append(read_toml(entry))
        except ImagefixError as exc:
            broken.append(BrokenEntry(str(entry), f"{exc}; the runtime reads every entry of config.d"))
    return dropins, broken


def resolved_config_path(path: str | Path) -> Path:
    """The file Kata reads for `path`: symlinks resolved (kata-deploy links the old path to runtimes/)."""
    from ..fileio import resolve_link

    return resolve_link(path)


KATA_DEPLOY_MARK = re.compile(r"/runtimes/[^/]+/configuration-[^/]+\.toml$")


def load_config(path: str | Path, runtime: str | None = None) -> KataConfig:
    main = read_toml(path)
    resolved = resolved_config_path(path)
    if runtime is None:
        runtime, reason = detect_runtime(main)
    else:
        reason = "--runtime"
    dropins, broken = read_dropins(resolved.parent / "config.d", runtime)
    return KataConfig(main, dropins, runtime, reason, broken, resolved)


# --- editing ---------------------------------------------------------------------------------

def _last_key_line(toml: TomlFile, table: tuple[str, ...]) -> int | None:
    if table in toml.table_last:
        return toml.table_last[table]
    return toml.headers.get(table)


def _set_int(toml: TomlFile, table: tuple[str, ...], key: str, value: int, comment: str,
             lines: list[str]) -> str | None:
    """Set table.key = value in `lines` (of `toml`); returns a description, or None if already so."""
    existing = [e for e in toml.entries if e.table == table and e.key == key]
    if existing:
        entry = existing[-1]
        plain = entry.value_text.split("#", 1)[0].strip().replace("_", "")
        current = int(plain) if plain.isdigit() else toml.value((*table, key))
        if current == value:
            return None
        line = lines[entry.line]
        prefix, _, rest = line.partition("=")
        match = _INT_VALUE.match(rest)
        tail = match.group(2) if match else rest[len(rest.rstrip("\r\n")):]
        lead = rest[: len(rest) - len(rest.lstrip())]
        lines[entry.line] = f"{prefix}={lead or ' '}{value}{tail}"
        return f"[{'.'.join(table)}] {key} = {current} -> {value}"
    _add_key(toml, table, f"{key} = {value}", comment, lines)
    return f"[{'.'.join(table)}] {key} = {value} (added)"


def _add_key(toml: TomlFile, table: tuple[str, ...], assignment: str, comment: str, lines: list[str]) -> None:
    """A new `key = value` line (with its reason above it) after the table's last key, or the table
    appended at the end of the file when it has none."""
    nl = toml.newline
    after = _last_key_line(toml, table)
    new = [f"# imagefix: {comment}{nl}", f"{assignment}{nl}"]
    if after is None:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.extend([nl, f"[{'.'.join(table)}]{nl}", *new])
    else:
        if not lines[after].endswith(("\n", "\r")):
            lines[after] += nl
        lines[after + 1 : after + 1] = new


def _toml_string(value: str) -> str:
    """A TOML basic string (kernel parameters may hold quotes or backslashes)."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch >= " " else f"\\u{ord(ch):04x}" for ch in out) + '"'


def _set_string(toml: TomlFile, table: tuple[str, ...], key: str, value: str, comment: str,
                lines: list[str]) -> str | None:
    """Set table.key = "value" in `lines` (of `toml`), replacing a value of one or more lines."""
    nl = toml.newline
    existing = [e for e in toml.entries if e.table == table and e.key == key]
    if existing:
        entry = existing[-1]
        current = toml.value((*table, key))
        if current == value:
            return None
        indent = lines[entry.line][: len(lines[entry.line]) - len(lines[entry.line].lstrip())]
        name = lines[entry.line].split("=", 1)[0].strip()
        lines[entry.line : entry.last_line + 1] = [f"{indent}{name} = {_toml_string(value)}{nl}"]
        return f"[{'.'.join(table)}] {key} = {value!r} (was {current!r})"
    _add_key(toml, table, f"{key} = {_toml_string(value)}", comment, lines)
    return f"[{'.'.join(table)}] {key} = {value!r} (added)"


def _is_header(line: str) -> bool:
    return bool(_HEADER.match(line.rstrip("\r\n"))) and not line.lstrip().startswith("#")


def _key_name(line: str) -> str | None:
    match = _KEY.match(line.rstrip("\r\n"))
    return _split_key(match.group(2))[-1] if match else None


def repair_duplicate_table(toml: TomlFile) -> tuple[TomlFile, list[str]] | None:
    """The recipe's breakage, repaired: a second `[table]` header whose block holds nothing but
    create_container_timeout (and comments) is dropped; its value is kept as a misplaced entry.
    None when the file is invalid in any other way (then nothing is guessed)."""
    twice = re.match(r"table \[([^\]]+)\] is declared twice \(again at line (\d+)\)", toml.error or "")
    if not twice:
        return None
    start = int(twice.group(2)) - 1
    end = next((i for i in range(start + 1, len(toml.lines)) if _is_header(toml.lines[i])), len(toml.lines))
    keys = [line for line in toml.lines[start + 1:end] if line.strip() and not line.lstrip().startswith("#")]
    if not keys or not all(_key_name(line) == TIMEOUT_KEY for line in keys):
        return None
    value = tomllib.loads("".join(keys)).get(TIMEOUT_KEY)
    lines = toml.lines[:start] + toml.lines[end:]
    repaired = parse_toml("".join(lines), toml.path)
    if repaired.data is None or not isinstance(value, int):
        return None
    # Keep the value as if it stood in the first [table], so it is moved like any misplaced copy.
    first = toml.headers[_split_key(twice.group(1))]
    lines.insert(first + 1, f"{TIMEOUT_KEY} = {value}{toml.newline}")
    repaired = parse_toml("".join(lines), toml.path)
    note = (f"merged the second [{twice.group(1)}] (line {start + 1}), which made the file invalid TOML and "
            "held only create_container_timeout")
    return (repaired, [note]) if repaired.data is not None else None


def repair_main(config: KataConfig) -> tuple[KataConfig, list[str]]:
    """The configuration with its main file's recipe breakage repaired (see repair_duplicate_table)."""
    if config.main.data is not None:
        return config, []
    repaired = repair_duplicate_table(config.main)
    if repaired is None:
        raise ImagefixError(f"{config.main.path}:{config.main.error_line}: not valid TOML: "
                            f"{config.main.error}; fix it by hand (imagefix will not guess which copy "
                            "you meant)")
    main, notes = repaired
    return KataConfig(main, config.dropins, config.runtime, config.runtime_reason, config.broken,
                      config.resolved), notes


def _drop_empty_deep_tables(lines: list[str], changes: list[str]) -> list[str]:
    """A Go drop-in's `[agent.X.Y]`/`[hypervisor.X.Y]` header left with no keys: Go still refuses it,
    so it goes too (its comments stay)."""
    scanned = parse_toml("".join(lines))
    for table, line in sorted(scanned.headers.items(), key=lambda item: -item[1]):
        if len(table) < 3 or table[0] not in ("agent", "hypervisor"):
            continue
        end = next((i for i in range(line + 1, len(lines)) if _is_header(lines[i])), len(lines))
        if any(text.strip() and not text.lstrip().startswith("#") for text in lines[line + 1:end]):
            continue
        del lines[line]
        changes.append(f"removed the empty [{'.'.join(table)}] header (line {line + 1}): the Go runtime "
                       "refuses a drop-in table it has no setting for")
    return lines


def misplaced_values(config: KataConfig, toml: TomlFile) -> list[tuple[Entry, int]]:
    """create_container_timeout entries in tables the runtime does not read, with their int values."""
    out = []
    for entry in toml.entries_named(TIMEOUT_KEY):
        value = toml.value(entry.path)
        if entry.table != config.timeout_table and isinstance(value, int) and not isinstance(value, bool):
            out.append((entry, value))
    return out


def patch_config(config: KataConfig, *, timeout: int | None, memory: int | None,
                 why_timeout: str = "", why_memory: str = "", toml: TomlFile | None = None,
                 kernel_params: str | None = None) -> tuple[str, list[str]]:
    """`toml` (the main file by default) with misplaced timeout keys moved and the values set.

    A misplaced value is the user's intent: it becomes the value in force, or
    the larger of it and the asked one (said in the changes).
    """
    toml = toml or config.main
    changes: list[str] = []
    if toml.data is None:
        repaired = repair_duplicate_table(toml)
        if repaired is None:
            raise ImagefixError(f"{toml.path}:{toml.error_line}: not valid TOML: {toml.error}; "
                                "fix it by hand (imagefix will not guess which copy you meant)")
        toml, changes = repaired
    right = config.timeout_table
    misplaced = misplaced_values(config, toml)
    all_misplaced = [e for e in toml.entries_named(TIMEOUT_KEY) if e.table != right]
    toml.release()  # the parsed data is no longer needed: a multi-MB file would hold it twice otherwise
    if misplaced:
        kept = max(value for _, value in misplaced)
        if timeout is None or kept > timeout:
            if timeout is not None:
                changes.append(f"kept the misplaced {kept} s: it is larger than the {timeout} s asked for")
            timeout = kept
    lines = list(toml.lines)
    for entry in sorted(all_misplaced, key=lambda e: e.line, reverse=True):
        del lines[entry.line : entry.last_line + 1]
        changes.append(f"removed {TIMEOUT_KEY} from [{'.'.join(entry.table)}] (line {entry.line + 1}), "
                       "where the runtime does not read it")
    if config.runtime == "go" and toml is not config.main and all_misplaced:
        lines = _drop_empty_deep_tables(lines, changes)
    # Re-scan after deletions so line numbers are right for the insertions.
    edited = parse_toml("".join(lines), toml.path)
    lines = list(edited.lines)
    if timeout is not None:
        reasons = [why_timeout] if why_timeout else []
        if misplaced:
            reasons.insert(0, f"moved here from [{'.'.join(misplaced[-1][0].table)}], where the runtime "
                              "does not read it")
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
    if kernel_params is not None:
        edited = parse_toml("".join(lines), toml.path)
        lines = list(edited.lines)
        done = _set_string(edited, config.hypervisor_table(), KERNEL_PARAMS_KEY, kernel_params,
                           "agent.image_pull_timeout bounds the pull inside the guest (1200 s by default); "
                           "the other parameters are kept", lines)
        if done:
            changes.append(done)
    # The result is parsed once more by the caller's effective-value check (shadowing), which also
    # refuses it if it were not valid TOML: no second parse here.
    return "".join(lines), changes


GO_TEMPLATE_TIMEOUT = 60  # @DEFCREATECONTAINERTIMEOUT@ in Kata's Go templates


def timeout_to_keep(config: KataConfig, asked: int | None, why: str) -> tuple[int | None, str]:
    """The timeout a patch must leave in force: the asked one, raised to any misplaced value (the
    recipe's intent), or the shipped 60 s where a Go config lacks the key (0 s: every create fails)."""
    kept = [value for toml in config.files if toml.data is not None
            for _, value in misplaced_values(config, toml)]
    if kept and max(kept) > (asked or 0) and max(kept) > config.timeout[0]:
        return max(kept), f"the {max(kept)} s set under another table, where the runtime does not read it"
    if asked is None and config.runtime == "go" and config.timeout[1] is None:
        return GO_TEMPLATE_TIMEOUT, ("the Go runtime has no default of its own: without this key every "
                                     "CreateContainer fails at once")
    return asked, why


def fatal_table(runtime: str, table: tuple[str, ...], in_dropin: bool) -> bool:
    """Whether an unknown key (create_container_timeout) under `table` makes the runtime refuse the
    configuration. runtime-rs: `[hypervisor.<hv>.factory]` and `[agent.kata.mem_agent]` deny unknown
    fields. Go: a drop-in's key under a map table (`[agent.X]`, `[hypervisor.X]`, and any table below
    them) fails in applyKey (src/runtime/pkg/katautils/config.go); the main file drops it silently."""
    if runtime == "rs":
        return (len(table) == 3 and table[0] == "hypervisor" and table[2] == "factory") or \
            table == ("agent", "kata", "mem_agent")
    return in_dropin and len(table) >= 2 and table[0] in ("agent", "hypervisor")


def refusals(config: KataConfig) -> list[str]:
    """Why the runtime would refuse this configuration although every file is valid TOML: a
    create_container_timeout in a table that rejects it, and - Go drop-ins - a table three levels deep
    under [agent.X]/[hypervisor.X] (applyKey finds no field of that name, even for an empty table)."""
    out = []
    for toml in config.files:
        in_dropin = toml is not config.main
        for entry in toml.entries_named(TIMEOUT_KEY):
            if entry.table != config.timeout_table and fatal_table(config.runtime, entry.table, in_dropin):
                out.append(f"{toml.path}:{entry.line + 1}: {TIMEOUT_KEY} under [{'.'.join(entry.table)}] "
                           "makes the runtime refuse the configuration")
        if config.runtime == "go" and in_dropin:
            for table, line in toml.headers.items():
                if len(table) >= 3 and table[0] in ("agent", "hypervisor"):
                    out.append(f"{toml.path}:{line + 1}: the Go runtime refuses a drop-in table "
                               f"[{'.'.join(table)}] (no such setting)")
    return list(dict.fromkeys(out))


def shadowing(after: KataConfig, *, timeout: int | None, memory: int | None) -> list[str]:
    """Why the effective values (main file + every drop-in, as Kata merges them) are not the asked ones,
    or why the runtime would not load the result at all."""
    problems = [f"{b.path}: {b.why}" for b in after.broken]
    problems += [f"{t.path}: not valid TOML ({t.error})" for t in after.files if t.data is None]
    if problems:
        return problems
    problems += refusals(after)
    for asked, (value, where, _), key in ((timeout, after.timeout, TIMEOUT_KEY),
                                          (memory, after.memory, MEMORY_KEY)):
        if asked is not None and value != asked:
            source = f"set by {where.path}" if where else "not set anywhere"
            problems.append(f"the effective {key} would be {value}, {source}")
    if timeout is not None and after.image_pull_timeout < timeout:
        where = after.effective((*after.hypervisor_table(), KERNEL_PARAMS_KEY), "")[1]
        source = f"kernel_params set by {where.path}" if where else "kernel_params do not set it"
        problems.append(f"the guest's agent.image_pull_timeout would be {after.image_pull_timeout} s, below "
                        f"{timeout} s ({source})")
    if after.runtime == "go" and len(after.hypervisors()) > 1:
        problems.append(f"the merged files would have {len(after.hypervisors())} hypervisor tables "
                        f"({', '.join(after.hypervisors())}): the Go runtime takes one in random order")
    return problems


def kernel_params_for(config: KataConfig, toml: TomlFile, timeout: int | None) -> str | None:
    """The kernel_params `toml` must set so that agent.image_pull_timeout is not below `timeout`
    (None when it already is not): the string the file sets, else the effective one, with the
    parameter added or replaced - a later kernel_params replaces the string whole, so every other
    parameter (kata-deploy's own drop-in writes some) is carried over."""
    if timeout is None or config.image_pull_timeout >= timeout:
        return None
    from .classes import with_image_pull_timeout

    own = toml.value((*config.hypervisor_table(), KERNEL_PARAMS_KEY))
    base = own if isinstance(own, str) else config.kernel_params
    return with_image_pull_timeout(base, timeout)


def dropin_text(config: KataConfig, path: str, *, timeout: int | None, memory: int | None,
                why_timeout: str, why_memory: str, kernel_params: str | None = None) -> tuple[str, list[str]]:
    """The drop-in at `path` with the values set: an existing file is edited (its other settings
    stay), a new one starts with a header saying what it is for."""
    existing = next((t for t in config.dropins if Path(t.path).resolve() == Path(path).resolve()), None)
    if existing is None:
        nl = config.main.newline
        header = (f"# Written by imagefix: overrides for {Path(config.main.path).name}, read after it "
                  f"and after the drop-ins that sort before this one.{nl}")
        existing = parse_toml(header, path)
    return patch_config(config, timeout=timeout, memory=memory, why_timeout=why_timeout,
                        why_memory=why_memory, toml=existing,
                        kernel_params=kernel_params_for(config, existing, timeout))


def main_configs(paths: tuple[str, ...] | list[str]) -> list[str]:
    """The configurations to check for the paths given: a config.d entry stands for the
    configuration*.toml files of the folder above it (what a pre-commit hook passes)."""
    out: list[str] = []
    for path in paths:
        folder = Path(path).parent
        if folder.name == "config.d":
            owners = sorted(str(p) for p in folder.parent.glob("configuration*.toml"))
            if not owners:
                raise ImagefixError(f"{path}: a config.d entry, but no configuration*.toml beside {folder}")
            out += owners
        else:
            out.append(str(path))
    return list(dict.fromkeys(out))

