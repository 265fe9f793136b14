"""How to talk to registries (kept apart from the client so that merely naming it imports nothing heavy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from .auth import Credentials
    from .tls import HostTLS


class RegistryOptions(msgspec.Struct, frozen=True):
    insecure: tuple[str, ...] = ()
    credentials: Credentials | None = None
    timeout: float = 30.0
    exact: bool = False
    all_platforms: bool = False
    platform: str | None = None
    stall_seconds: float = 30.0  # give up when under 64 KiB arrive in this long while bytes are due
    deadline_seconds: float = 60.0  # per transfer, plus its expected size at 1 MB/s
    max_platforms: int = 64  # --all-platforms considers at most this many entries of an index
    tls: tuple[tuple[str, HostTLS], ...] = ()  # (host, its own trust: hosts.toml ca/client/skip_verify)
