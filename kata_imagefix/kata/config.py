"""Kata runtime configuration as the runtime loads it: which runtime reads it, config.d beside the
resolved file, the effective values, and what makes the runtime refuse it.

Facts (docs/kata-config.md): the Go runtime (kata-qemu-tdx) reads
`create_container_timeout` in `[runtime]` and has no default of its own (a
missing key is 0 s); runtime-rs reads it in `[agent.kata]` (30 s when absent).
Elsewhere it is ignored, or in some tables makes the runtime refuse the file.
Both runtimes resolve the config's symlinks and then read *every* entry of
`config.d/` beside the resolved file, in name order, whatever its suffix, each
over the last. The files themselves are read by toml_lines.py; config_edits.py
changes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ImagefixError
from .toml_lines import KERNEL_PARAMS_KEY, MEMORY_KEY, TIMEOUT_KEY, Entry, TomlFile, parse_toml, read_toml

TIMEOUT_TABLE = {"go": ("runtime",), "rs": ("agent", "kata")}
DEFAULT_TIMEOUT = {"go": 0, "rs": 30}  # Go: no code default (kata_agent.go takes the config's value)
DEFAULT_MEMORY_MIB = 2048


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
