"""Load a Kata configuration the way Kata does, independently of imagefix (for the tests).

It merges the main file and config.d as Kata's loaders do (Go `decodeDropIns`/`updateFromDropIn`/
`applyKey` in src/runtime/pkg/katautils/config.go; runtime-rs `drop_in_directory_handling::load`,
src/libs/kata-types/src/config/drop_in.rs: entries in name order, whatever their suffix, map tables
merged key by key) and raises Refused where the runtime would refuse the configuration:

- a file that is not TOML, a directory in config.d, a symlinked drop-in (runtime-rs);
- Go: a drop-in key or table three levels deep under [agent.X]/[hypervisor.X] that is no setting of
  Kata's (applyKey finds no field: the table header alone is such a key);
- runtime-rs: an unknown key under [agent.kata], [agent.kata.mem_agent] or [hypervisor.<hv>.factory]
  (serde deny_unknown_fields);
- Go: two hypervisor tables (it takes one in random map order - refused here, as never right).

The settings Kata knows are read from its own generated configs (tests/data/kata-4.1.0).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

DATA = Path(__file__).parent / "data" / "kata-4.1.0"


class Refused(Exception):
    pass


def _known(folder: str, *path: str) -> set[str]:
    keys: set[str] = set()
    for shipped in (DATA / folder).glob("*.toml"):
        node = tomllib.loads(shipped.read_text())
        for part in path:
            node = node.get(part, {}) if part != "*" else {k: v for t in node.values() for k, v in t.items()}
        keys |= set(node)
    return keys


GO_FIELDS = {"agent": _known("go", "agent", "*"), "hypervisor": _known("go", "hypervisor", "*")}
RS_DENY = {("agent", "kata"): _known("rs", "agent", "kata") | {"mem_agent"},
           ("agent", "kata", "mem_agent"): _known("rs", "agent", "kata", "mem_agent") | {"enable"},
           "factory": {"enable_template", "template_path", "vm_cache_number", "vm_cache_endpoint"}}


def _merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _parse(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Refused(f"{path}: {exc}") from None


def load(main: Path, runtime: str) -> dict:
    resolved = Path(os.path.realpath(main))
    data = _parse(resolved)
    folder = resolved.parent / "config.d"
    for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
        entry = folder / name
        if entry.is_dir() or (runtime == "rs" and entry.is_symlink()):
            raise Refused(f"{entry}: not a regular file")
        drop = _parse(entry)
        if runtime == "go":
            for section in ("agent", "hypervisor"):
                for table in (drop.get(section) or {}).values():
                    for key in table:
                        if key not in GO_FIELDS[section]:
                            raise Refused(f"{entry}: no setting {section}.*.{key}")
        _merge(data, drop)
    if runtime == "rs":
        agent = (data.get("agent") or {}).get("kata") or {}
        for table, known in ((("agent", "kata"), agent), (("agent", "kata", "mem_agent"),
                                                          agent.get("mem_agent") or {})):
            if set(known) - RS_DENY[table]:
                raise Refused(f"unknown keys under [{'.'.join(table)}]: {set(known) - RS_DENY[table]}")
        for hypervisor in (data.get("hypervisor") or {}).values():
            if set(hypervisor.get("factory") or {}) - RS_DENY["factory"]:
                raise Refused("unknown keys under [hypervisor.*.factory]")
    elif len(data.get("hypervisor") or {}) > 1:
        raise Refused(f"hypervisor tables {sorted(data['hypervisor'])}: Go takes one in random order")
    return data


def value(main: Path, runtime: str, *key: str):
    node = load(main, runtime)
    for part in key:
        node = node[part]
    return node


def timeout(main: Path, runtime: str = "go"):
    if runtime == "rs":
        return load(main, "rs")["agent"]["kata"].get("create_container_timeout", 30)
    return load(main, "go")["runtime"].get("create_container_timeout", 0)


def runtime_of(main: Path) -> str:
    """runtime-rs files say [runtime] name = \"virt_container\"; the rest is Go."""
    data = tomllib.loads(Path(os.path.realpath(main)).read_text())
    return "rs" if "name" in (data.get("runtime") or {}) else "go"
