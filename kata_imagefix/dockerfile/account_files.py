"""The account files a stage starts from: a base image's, none (scratch), or not known (not read).

Each answers the same questions: a user or group by name, a uid's entry, whether
a gid is taken, a config file (/etc/login.defs, /etc/default/useradd,
/etc/adduser.conf) and the distribution family, whose `adduser` differs.
UNKNOWN means "not read here", as opposed to None, "known to be absent".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..image.model import Image
from ..users import find_entry, id_field


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass
class Account:
    """A passwd entry as the build leaves it; an id is None when it is picked at build time (`why`)."""

    uid: int | None
    gid: int | None
    uid_why: str | None = None
    gid_why: str | None = None
    group: str | None = None  # the group whose gid the user took (groupmod -g moves it along)


@dataclass
class Group:
    gid: int | None
    why: str | None = None


class Files:
    """Nothing read: every answer is UNKNOWN (the base image was not checked)."""

    known = False

    def __init__(self, what: str) -> None:
        self.what = what  # for messages: "the base image debian:12"

    def user(self, name: str) -> Account | _Unknown | None:
        return Account(0, 0) if name == "root" else UNKNOWN  # root is uid 0 by definition

    def user_by_uid(self, uid: int) -> Account | _Unknown | None:
        return UNKNOWN

    def group(self, name: str) -> Group | _Unknown | None:
        return Group(0) if name == "root" else UNKNOWN

    def gid_used(self, gid: int) -> bool | _Unknown:
        return UNKNOWN

    def config(self, path: str) -> bytes | _Unknown | None:
        return UNKNOWN

    def family(self) -> str | None:
        return None


class NoFiles(Files):
    """FROM scratch: no /etc/passwd, no /etc/group, no tools."""

    known = True

    def user(self, name: str) -> Account | _Unknown | None:
        return Account(0, 0) if name == "root" else None

    def user_by_uid(self, uid: int) -> Account | _Unknown | None:
        return None

    def group(self, name: str) -> Group | _Unknown | None:
        return Group(0) if name == "root" else None

    def gid_used(self, gid: int) -> bool | _Unknown:
        return False

    def config(self, path: str) -> bytes | _Unknown | None:
        return None


class ImageFiles(NoFiles):
    """A base image's own files, read on demand."""

    def __init__(self, image: Image, what: str) -> None:
        super().__init__(what)
        self.image = image
        self._read = cache(image.read_file)

    def user(self, name: str) -> Account | _Unknown | None:
        return _account(find_entry(self._read("/etc/passwd"), name=name)) or super().user(name)

    def user_by_uid(self, uid: int) -> Account | _Unknown | None:
        return _account(find_entry(self._read("/etc/passwd"), id_value=uid))

    def group(self, name: str) -> Group | _Unknown | None:
        fields = find_entry(self._read("/etc/group"), name=name)
        return Group(id_field(fields[2])) if fields else super().group(name)

    def gid_used(self, gid: int) -> bool | _Unknown:
        return find_entry(self._read("/etc/group"), id_value=gid) is not None

    def config(self, path: str) -> bytes | _Unknown | None:
        return self._read(path)

    def family(self) -> str | None:
        release = self._read("/etc/os-release") or self._read("/usr/lib/os-release")
        if release is None:
            return "busybox" if self._read("/bin/busybox") is not None else None
        ids = b" ".join(re.findall(rb'^(?:ID|ID_LIKE)="?([^"\n]*)', release, re.M)).decode("ascii", "replace")
        return family_of_words(set(ids.lower().split()))


def _account(fields: list[str] | None) -> Account | None:
    if fields is None or len(fields) < 4:
        return None
    return Account(id_field(fields[2]), id_field(fields[3]))


_BUSYBOX = {"alpine", "busybox"}
_SHADOW = {"rhel", "fedora", "centos", "rocky", "rockylinux", "almalinux", "alma", "ol", "oraclelinux",
           "amzn", "amazonlinux", "ubi", "ubi7", "ubi8", "ubi9", "ubi10", "suse", "opensuse", "sles",
           "photon", "mariner", "azurelinux", "mysql"}
_DEBIAN = {"debian", "ubuntu", "bookworm", "bullseye", "buster", "trixie", "jammy", "focal", "noble",
           "bionic", "buildpack", "deps", "python", "node", "golang", "ruby", "php", "perl", "openjdk",
           "temurin", "maven", "gradle", "rust", "gcc", "nginx", "httpd", "postgres", "redis"}


def family_of_words(words: set[str]) -> str | None:
    """busybox (Alpine, busybox), shadow (adduser is useradd: RHEL, UBI, Fedora, SUSE…) or debian."""
    for family, names in (("busybox", _BUSYBOX), ("shadow", _SHADOW), ("debian", _DEBIAN)):
        if words & names:
            return family
    return None


def family_of_reference(reference: str) -> str | None:
    """The family a base image's name suggests (python:3.12-alpine -> busybox, ubi9/ubi -> shadow)."""
    return family_of_words(set(re.split(r"[/:@._-]+", reference.lower())))
