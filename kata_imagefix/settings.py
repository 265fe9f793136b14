"""Settings from `.imagefix.toml` or `[tool.imagefix]` in pyproject.toml; CLI flags win.

Keys are the long flag names (`max-layer-size`, `fail-on`, `ignore`, ...).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import ImagefixError

PROFILES = ("kata-tdx", "kata", "generic")
MAX_SETTINGS = 4 * 2**20  # a FIFO blocked, /dev/zero never ended, tomllib is quadratic in dotted parts
MAX_KEY_PARTS = 64
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')

# The keys the commands read through cli/options.setting(); the CLI also accepts every other long
# flag of its commands (they become that command's defaults).
KNOWN_KEYS = {
    "profile", "fail-on", "select", "ignore", "max-layer-size", "guest-memory", "pull-rate",
    "create-timeout", "kubelet-timeout", "memory-reserve", "pull-overhead", "safety-factor",
    "tmpfs-fraction", "jobs", "insecure-registry", "registry-timeout", "stall-seconds",
    "deadline-seconds", "max-platforms",
}


def find_config(start: Path | None = None) -> Path | None:
    """The nearest `.imagefix.toml`, or a pyproject.toml with [tool.imagefix], upwards from cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / ".imagefix.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if (pyproject.is_file() and pyproject.stat().st_size <= MAX_SETTINGS
                and b"[tool.imagefix]" in pyproject.read_bytes()):
            return pyproject
        if (folder / ".git").exists():
            break
    return None


def load_settings(path: Path | None, known: set[str] | frozenset[str] = frozenset(KNOWN_KEYS)
                  ) -> dict[str, Any]:
    """Read and check a config file; unknown keys are errors, not silently ignored."""
    if path is None:
        return {}
    import tomllib  # only when there is a file

    from .fileio import read_regular

    try:
        text = read_regular(path, MAX_SETTINGS, "config").decode("utf-8")
        deep = next((number for number, line in enumerate(text.splitlines(), 1)
                     if _QUOTED.sub("", line).split("=", 1)[0].count(".") >= MAX_KEY_PARTS), None)
        if deep is not None:
            raise ImagefixError(f"config {path}:{deep}: a key of more than {MAX_KEY_PARTS} dotted parts "
                                "(the keys are flag names)")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImagefixError(f"config {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ImagefixError(f"config {path} is nested too deeply to read") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("imagefix", {})
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ImagefixError(f"config {path}: unknown key(s) {', '.join(unknown)}; the keys are the long flag "
                            "names of the commands (imagefix COMMAND --help)")
    return data


def id_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'KIF101,KIF2' or ['KIF101'] -> ['KIF101', 'KIF2'] (prefixes select a family)."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else [
        part for item in value for part in str(item).split(",")
    ]
    return [item.strip().upper() for item in items if item.strip()]
