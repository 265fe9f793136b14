"""Edits of a Kata configuration: values set where the runtime reads them, misplaced timeouts moved,
a duplicate table repaired, a drop-in written; and the check that the result has the asked values.

Edits are made line by line, not through a TOML round-trip library: tomlkit
puts a new key after the next table's leading comments and writes LF into
CRLF files. Every edited text is parsed again with tomllib and checked.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ..errors import ImagefixError
from .config import KataConfig, refusals
from .toml_lines import (
    HEADER,
    INT_VALUE,
    KERNEL_PARAMS_KEY,
    KEY_LINE,
    MEMORY_KEY,
    TIMEOUT_KEY,
    Entry,
    TomlFile,
    parse_toml,
    split_key,
)


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
        match = INT_VALUE.match(rest)
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
    return bool(HEADER.match(line.rstrip("\r\n"))) and not line.lstrip().startswith("#")


def _key_name(line: str) -> str | None:
    match = KEY_LINE.match(line.rstrip("\r\n"))
    return split_key(match.group(2))[-1] if match else None


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
    first = toml.headers[split_key(twice.group(1))]
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
