"""USER specs and their numeric resolution from an image's own /etc/passwd and /etc/group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

ROOT_NAMES = ("", "0", "root")


class UserKind(Enum):
    ROOT = "root"  # no USER, root, 0, 0:0
    NUMERIC = "numeric"  # 185:185
    NUMERIC_NO_GROUP = "numeric-no-group"  # 185
    NAMED = "named"  # spark, app:app, 185:spark


@dataclass(frozen=True)
class UserSpec:
    raw: str
    user: str
    group: str | None

    @classmethod
    def parse(cls, raw: str | None) -> UserSpec:
        raw = (raw or "").strip()
        user, sep, group = raw.partition(":")
        return cls(raw=raw, user=user, group=group if sep else None)

    @property
    def kind(self) -> UserKind:
        if self.user in ROOT_NAMES and (self.group is None or self.group in ("0", "root")):
            return UserKind.ROOT
        if not self.user.isdigit() or (self.group is not None and not self.group.isdigit()):
            return UserKind.NAMED
        return UserKind.NUMERIC if self.group is not None else UserKind.NUMERIC_NO_GROUP

    @property
    def names(self) -> list[str]:
        """The non-numeric parts the host would have to look up."""
        parts = [self.user] + ([self.group] if self.group is not None else [])
        return [p for p in parts if p and not p.isdigit()]

    def display(self) -> str:
        return self.raw if self.raw else '"" (root)'


@dataclass(frozen=True)
class Resolution:
    """uid/gid for a spec, or why they could not be found."""

    uid: int | None
    gid: int | None
    source: str  # e.g. "the image's /etc/passwd and /etc/group"
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.uid is not None and self.gid is not None and self.problem is None

    @property
    def numeric(self) -> str:
        return f"{self.uid}:{self.gid}"


def parse_colon_file(text: str | bytes | None) -> dict[str, list[str]]:
    """name -> fields for /etc/passwd or /etc/group (comments and junk lines skipped)."""
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] not in entries:
            entries[fields[0]] = fields
    return entries


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(
    spec: UserSpec,
    read_file: Callable[[str], bytes | None],
    source: str = "the image's /etc/passwd and /etc/group",
) -> Resolution:
    """Resolve to uid:gid the way containerd would if it could read the rootfs."""
    passwd_bytes = read_file("/etc/passwd")
    passwd = parse_colon_file(passwd_bytes)
    uid: int | None
    primary_gid: int | None = None
    if spec.user.isdigit():
        uid = int(spec.user)
        for fields in passwd.values():
            if len(fields) >= 4 and _int(fields[2]) == uid:
                primary_gid = _int(fields[3])
                break
    elif spec.user in ("", "root") and "root" not in passwd:
        uid, primary_gid = 0, 0
    else:
        if passwd_bytes is None:
            return Resolution(None, None, source, "the image has no /etc/passwd")
        fields = passwd.get(spec.user)
        if fields is None or len(fields) < 4:
            return Resolution(None, None, source, f"no user {spec.user!r} in the image's /etc/passwd")
        uid, primary_gid = _int(fields[2]), _int(fields[3])
        if uid is None:
            return Resolution(None, None, source, f"user {spec.user!r} has no numeric uid")

    if spec.group is None:
        gid = primary_gid
        if gid is None:
            return Resolution(uid, None, source,
                              f"uid {uid} has no entry in the image's /etc/passwd to take a group from")
        return Resolution(uid, gid, source)
    if spec.group.isdigit():
        return Resolution(uid, int(spec.group), source)
    group_bytes = read_file("/etc/group")
    if group_bytes is None:
        return Resolution(uid, None, source, "the image has no /etc/group")
    group_fields = parse_colon_file(group_bytes).get(spec.group)
    if group_fields is None or _int(group_fields[2]) is None:
        return Resolution(uid, None, source, f"no group {spec.group!r} in the image's /etc/group")
    return Resolution(uid, _int(group_fields[2]), source)
