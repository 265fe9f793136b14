"""What `--user-mode` makes of a USER: the one decision `patch` (a Dockerfile) and `fix` (an image) share.

A mode says how a *named* user is written, since a name is what the host
cannot look up under guest pull: `numeric` resolves it in the image's own
files, `reset` writes `USER ""`, `root` writes `0:0`. A USER that is numeric
already works in every mode and is kept; a lone uid gains the primary group
of its /etc/passwd entry in `numeric` mode (the group guest pull loses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ImagefixError
from . import USER_MODES, Resolution, UserKind, UserSpec


@dataclass(frozen=True)
class UserChoice:
    """The USER a fix writes. `kept`: the one there already works in this mode (nothing to rewrite)."""

    value: str
    uid: int | None
    gid: int | None
    kept: bool
    how: str  # why this value, for the change message
    lost_group: bool = False  # a lone uid given its passwd group (KIF102) rather than a name resolved
    by_mode: bool = False  # root because the mode says so (reset/root), not because the image's files do


def choose_user(spec: UserSpec, mode: str, resolve: Callable[[], Resolution]) -> UserChoice:
    """The USER for `mode`; `resolve` reads the image's files only when a value needs them.

    Raises ImagefixError (without saying where: the caller names the file or image) for a USER
    containerd refuses, and in `numeric` mode for a name the image's files do not resolve.
    """
    if mode not in USER_MODES:
        raise ImagefixError(f"unknown user mode {mode!r}: use {', '.join(USER_MODES)}")
    kind = spec.kind
    if kind is UserKind.INVALID:
        raise ImagefixError(f"cannot write a numeric USER for {spec.raw!r}: containerd does not accept it "
                            f"({spec.problem}); write USER uid:gid by hand")
    if kind is UserKind.ROOT:
        return UserChoice('""' if mode == "reset" else "0:0", 0, 0, True, "root already")
    if kind is UserKind.NUMERIC:
        return UserChoice(spec.raw, spec.uid, spec.gid, True, "numeric already")
    if kind is UserKind.NUMERIC_NO_GROUP:
        if mode == "numeric":
            found = resolve()
            if found.ok and found.gid_from_passwd and found.gid != 0:
                return UserChoice(found.numeric, found.uid, found.gid, False, "its /etc/passwd group",
                                  lost_group=True)
        return UserChoice(spec.raw, spec.uid, 0, True, "numeric already")
    if spec.user_name == "root" and spec.group_name is None:
        gid = spec.gid if spec.gid is not None else 0
        return UserChoice(f"0:{gid}", 0, gid, False, "root by its uid")
    if mode == "reset":
        return UserChoice('""', 0, 0, False, "the container runs as ROOT", by_mode=True)
    if mode == "root":
        return UserChoice("0:0", 0, 0, False, "the container runs as root", by_mode=True)
    found = resolve()
    if not found.ok:
        raise ImagefixError(f"cannot write a numeric USER for {spec.raw!r}: {found.problem}")
    return UserChoice(found.numeric, found.uid, found.gid, False, f"from {found.source}")
