"""Parse and print byte sizes. MB is 10^6 bytes, MiB is 2^20 (as docker and Kata use them)."""

import re

from .errors import ImagefixError

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30,
    "ti": 2**40, "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """'100MB' -> 100_000_000, '1.5GiB' -> 1610612736, '4096' -> 4096."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ImagefixError(
            f"cannot read size {text!r}: use bytes or a unit such as 100MB, 512MiB, 1.5GiB"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def parse_growth(text: str) -> tuple[str, float]:
    """A growth limit: ('pct', 10.0) for '10%', ('bytes', 50e6) for '50MB'; refused in one line."""
    stripped = str(text).strip()
    if stripped.endswith("%"):
        try:
            value = float(stripped[:-1])
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            raise ImagefixError(f"cannot read growth {text!r}: use a size such as 50MB or a percentage such "
                                "as 10%")
        return "pct", value
    try:
        return "bytes", float(parse_size(stripped))
    except ImagefixError:
        raise ImagefixError(f"cannot read growth {text!r}: use a size such as 50MB or a percentage such as "
                            "10%") from None


def human_size(num_bytes: int | float | None) -> str:
    """Decimal units, as `docker images` prints them."""
    if num_bytes is None:
        return "?"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def mib(num_bytes: int | float) -> float:
    return num_bytes / 2**20
