"""OS/ARCH[/VARIANT] platforms: the host's, parsing, and picking one from an index."""

from __future__ import annotations

import platform as host_platform

from ..errors import ImagefixError

Platform = tuple[str, str, str | None]


def host_platform_spec() -> Platform:
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return "linux", arch, "v7" if arch == "arm" else None


def parse_platform(text: str | None) -> Platform:
    if not text:
        return host_platform_spec()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImagefixError(f"invalid platform {text!r}: use OS/ARCH or OS/ARCH/VARIANT")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def describe(descriptor: dict) -> str:
    plat = descriptor.get("platform") or {}
    return "/".join(filter(None, [plat.get("os"), plat.get("architecture"), plat.get("variant")])) or "?"


def runnable(descriptors: list[dict]) -> list[dict]:
    """Index entries that are images (attestation manifests say unknown/unknown)."""
    return [d for d in descriptors if (d.get("platform") or {}).get("os") not in (None, "unknown")]


MAX_LISTED = 10  # an error line names at most this many platforms


def pick_platform(descriptors: list[dict], wanted: Platform, label: str) -> dict:
    os_name, arch, variant = wanted
    for descriptor in descriptors:
        plat = descriptor.get("platform") or {}
        if plat.get("os") == os_name and plat.get("architecture") == arch and (
            variant is None or plat.get("variant") == variant
        ):
            return descriptor
    shown = sorted({describe(d) for d in descriptors})
    have = ", ".join(shown[:MAX_LISTED]) or "none"
    if len(shown) > MAX_LISTED:
        have += f" and {len(shown) - MAX_LISTED} more"
    raise ImagefixError(
        f"{label}: no manifest for platform {'/'.join(filter(None, wanted))} (it has {have}); "
        "choose one with --platform or scan each with --all-platforms"
    )
