"""USER strings read the way containerd reads them, and their uid/gid from an image's own files.

containerd's `oci.WithUser` (pkg/oci/spec_opts.go, see docs/users.md) splits the
string at every ":" (more than two parts is an error), tries Go's
`strconv.Atoi` on each part (ASCII digits with one optional sign, within
int64) and looks every other non-empty part up in the image's /etc/passwd or
/etc/group. An empty user part means uid 0, an empty group part gid 0, both
without a lookup. Ids outside 0..2^31-1 are refused by current containerd and
silently wrapped (-1 -> 4294967295, 4294967296 -> 0, i.e. root) by older ones,
so they are reported as invalid here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum

import msgspec

# How a fix writes a named user: the one table `patch`, `fix` and their --user-mode read.
USER_MODES = {
    "numeric": "USER uid:gid from the image's own files (stays non-root)",
    "reset": 'USER "" (runs as root: the builder stores an empty user)',
    "root": "USER 0:0 (root, said explicitly)",
}
MAX_ID = 2**31 - 1  # containerd follows runc: uid/gid above MaxInt32 are refused
WHY_EXPLICIT = ("the kubelet drops the image's group, guest pull loses the gid and /etc/group's groups, "
                "and Kata's genpolicy refuses implicit ids")  # why a pod sets its ids (identity.py, KIF107)
_INT64 = 2**63
_GO_ATOI = re.compile(r"[+-]?[0-9]+\Z")  # ASCII only: '١٨٥' and '１８５' are names to Go


class UserKind(Enum):
    ROOT = "root"  # no USER, "", 0, 0:0, ":" - uid 0 and gid 0 with no lookup
    NUMERIC = "numeric"  # 185:185, :185, 185:
    NUMERIC_NO_GROUP = "numeric-no-group"  # 185 (the gid comes from /etc/passwd)
    NAMED = "named"  # spark, root, app:app, 185:spark, spark:
    INVALID = "invalid"  # a:b:c, -1, 4294967296: containerd refuses or changes the user


def _go_atoi(part: str) -> tuple[int | None, str | None]:
    """(value, problem): None/None for a name or an empty part; a problem for a number out of range."""
    if not _GO_ATOI.match(part):
        return None, None
    value = int(part)
    if not -_INT64 <= value < _INT64:
        return None, f"{part} is beyond 64 bits (containerd refuses it; older versions look it up as a name)"
    if value < 0 or value > MAX_ID:
        return None, (f"{part} is outside 0..{MAX_ID} (containerd refuses it; older versions turned "
                      f"it into {value % 2**32}{' - root' if value % 2**32 == 0 else ''})")
    return value, None


class UserSpec(msgspec.Struct, frozen=True):
    raw: str
    user: str  # the part before the first ':' (the whole string without one)
    group: str | None  # the part after it; None when there is no ':'

    @classmethod
    def parse(cls, raw: str | None) -> UserSpec:
        raw = (raw or "").strip()
        user, sep, group = raw.partition(":")
        return cls(raw=raw, user=user, group=group if sep else None)

    @property
    def problem(self) -> str | None:
        """Why containerd cannot use this string as it stands, or None."""
        if self.group is not None and ":" in self.group:
            return f"{self.raw!r} has more than one ':' (containerd refuses it: user[:group] only)"
        for part in (self.user, self.group or ""):
            problem = _go_atoi(part)[1]
            if problem:
                return problem
        return None

    @property
    def uid(self) -> int | None:
        """The uid when the user part needs no lookup (an empty part is 0)."""
        return 0 if self.user == "" else _go_atoi(self.user)[0]

    @property
    def gid(self) -> int | None:
        """The gid when the group part needs no lookup; None without a group part."""
        if self.group is None:
            return None
        return 0 if self.group == "" else _go_atoi(self.group)[0]

    @property
    def user_name(self) -> str | None:
        return self.user if self.user and self.uid is None and self.problem is None else None

    @property
    def group_name(self) -> str | None:
        if self.group and self.gid is None and self.problem is None:
            return self.group
        return None

    @property
    def kind(self) -> UserKind:
        if self.problem:
            return UserKind.INVALID
        if self.user_name is not None or self.group_name is not None:
            return UserKind.NAMED
        if self.group is None:
            return UserKind.ROOT if self.uid == 0 else UserKind.NUMERIC_NO_GROUP
        return UserKind.ROOT if (self.uid, self.gid) == (0, 0) else UserKind.NUMERIC

    @property
    def runs_as_root(self) -> bool:
        """uid 0 with no lookup: no USER, "", 0, 0:0, :185."""
        return self.kind in (UserKind.ROOT, UserKind.NUMERIC) and self.uid == 0

    @property
    def names(self) -> list[str]:
        """The non-numeric parts the host would have to look up."""
        return [n for n in (self.user_name, self.group_name) if n is not None]

    def display(self) -> str:
        return self.raw if self.raw else '"" (root)'


class Resolution(msgspec.Struct, frozen=True):
    """uid/gid for a spec, or why they could not be found."""

    uid: int | None
    gid: int | None
    source: str  # e.g. "the image's /etc/passwd and /etc/group"
    problem: str | None = None
    gid_from_passwd: bool = False  # the gid is a passwd entry's primary group (not written in USER)
    hint: str | None = None  # what to do when the ids cannot be found, when it is not the usual

    @property
    def ok(self) -> bool:
        return self.uid is not None and self.gid is not None and self.problem is None

    @property
    def numeric(self) -> str:
        return f"{self.uid}:{self.gid}"


def find_entry(data: str | bytes | None, *, name: str | None = None,
               id_value: int | None = None) -> list[str] | None:
    """The first /etc/passwd or /etc/group line for a name (field 1) or a uid/gid (field 3), split
    at ':'. A regex walks the bytes: no line list or table of a million entries is ever built.
    Blanks around a line do not count, as in moby/sys/user (containerd's parser trims each line)."""
    if data is None:
        return None
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if name is not None:
        pattern = rb"^[ \t\v\f]*" + re.escape(name.encode("utf-8", "surrogateescape")) + rb":[^\n]*"
    elif id_value is not None:
        pattern = (rb"^[ \t\v\f]*[^:\n#][^:\n]*:[^:\n]*:0*" + str(id_value).encode()
                   + rb"(?::[^\n]*|[ \t\v\f\r]*$)")
    else:
        return None
    match = re.search(pattern, raw, re.M)
    if match is None:
        return None
    fields = match.group(0).strip().decode("utf-8", "replace").split(":")
    return fields if len(fields) >= 3 else None


# The ids the API server and containerd's numeric USER take. An /etc/passwd or /etc/group id is not
# range-checked by containerd (moby/sys/user reads it with Atoi, errors ignored, then a uint32 cast):
# 4294967296 becomes 0, root - so one above MAX_ID is never offered as a fix.
MAX_ID = 2**31 - 1


def id_field(text: str) -> int | None:
    """A uid/gid field of /etc/passwd or /etc/group (ASCII digits only, at most MAX_ID: a larger one is
    never offered as a fix)."""
    value = int(text) if text.isascii() and text.isdigit() else None
    return value if value is not None and value <= MAX_ID else None


def containerd_file_id(field: str) -> int:
    """A uid/gid field of the image's /etc/passwd or /etc/group as containerd takes it: Go's Atoi with
    its error ignored (not a number: 0; past 64 bits: clamped), cast to uint32."""
    if not _GO_ATOI.match(field):
        return 0
    return max(min(int(field), _INT64 - 1), -_INT64) % 2**32


def unusable_id(name: str, what: str, field: str) -> str:
    """Why a passwd entry's uid or gid field gives no id imagefix offers: not a number, or out of range
    (which containerd does not check: it casts it to 32 bits)."""
    if field.isascii() and field.isdigit():
        cast = containerd_file_id(field)
        return (f"user {name!r} has {what} {field} in /etc/passwd, outside 0..{MAX_ID}: containerd does not "
                f"check it and takes {cast}{' (root)' if cast == 0 else ''}")
    return f"user {name!r} has no numeric {what}"


def primary_gid(passwd: bytes | None, uid: int) -> int | None:
    """The primary gid of the first passwd entry with this uid (what containerd's WithUserID takes)."""
    fields = find_entry(passwd, id_value=uid)
    return id_field(fields[3]) if fields and len(fields) >= 4 else None


def resolve_user(
    spec: UserSpec,
    read_file: Callable[[str], bytes | None],
    source: str = "the image's /etc/passwd and /etc/group",
) -> Resolution:
    """Resolve to uid:gid the way containerd would if it could read the rootfs."""
    if spec.problem:
        return Resolution(None, None, source, spec.problem)
    uid, gid = spec.uid, spec.gid
    from_passwd = False
    if spec.user_name is not None or spec.group is None:
        passwd_bytes = read_file("/etc/passwd")
        name = spec.user_name
        if name is not None:
            fields = find_entry(passwd_bytes, name=name)
            if fields is None and name == "root":
                fields = ["root", "x", "0", "0"]  # uid 0 by definition; a missing entry changes nothing
            if fields is None or len(fields) < 4:
                missing = "the image has no /etc/passwd" if passwd_bytes is None else \
                    f"no user {name!r} in the image's /etc/passwd"
                return Resolution(None, None, source, missing)
            uid = id_field(fields[2])
            if uid is None:
                return Resolution(None, None, source, unusable_id(name, "uid", fields[2]))
            if spec.group is None:
                gid, from_passwd = id_field(fields[3]), True
                if gid is None:
                    return Resolution(uid, None, source, unusable_id(name, "gid", fields[3]))
        elif uid is not None:
            found = primary_gid(passwd_bytes, uid)
            # containerd's WithUserID: no entry for the uid means gid 0, without an error.
            gid, from_passwd = (found, True) if found is not None else (0, False)
    if spec.group_name is not None:
        group_bytes = read_file("/etc/group")
        if group_bytes is None:
            return Resolution(uid, None, source, "the image has no /etc/group")
        fields = find_entry(group_bytes, name=spec.group_name)
        gid = id_field(fields[2]) if fields else None
        if gid is None:
            return Resolution(uid, None, source, f"no group {spec.group_name!r} in the image's /etc/group")
    return Resolution(uid, gid, source, gid_from_passwd=from_passwd)
