"""How to talk to registries (kept apart from the client so that merely naming it imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .auth import Credentials


@dataclass(frozen=True)
class RegistryOptions:
    insecure: tuple[str, ...] = ()
    credentials: Credentials | None = None
    timeout: float = 30.0
    exact: bool = False
    all_platforms: bool = False
    platform: str | None = None
