"""Read layer tars the way a union filesystem would: whiteouts, opaque dirs, sizes.

Layers come as callables that open a fresh binary stream (plain tar, gzip,
bzip2 or xz), so nothing is read until needed and a lookup can stop early.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import BinaryIO

from .tarstream import HARDLINK, SYMLINK, Member, walk

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

LayerOpener = Callable[[], BinaryIO]


def normalize(name: str) -> str:
    """'./etc/passwd', '/etc/passwd', 'etc/passwd/' -> 'etc/passwd'."""
    if name.startswith("./"):
        name = name[2:]
    if "//" not in name and "/." not in name and not name.startswith("."):
        return name.strip("/")  # the usual tar name: nothing for normpath to fold
    name = posixpath.normpath("/" + name).lstrip("/")
    return "" if name == "." else name


def member_size(member: Member) -> int:
    """Bytes a member adds to a layer, as Docker counts them (hard links once, symlinks by target)."""
    if member.is_regular:
        return member.size
    if member.type == SYMLINK:
        return len(member.linkname.encode())
    return 0


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def find_file(path: str, layers_top_down: Iterable[LayerOpener], *,
              seekable: bool = False) -> bytes | None:
    """The content of `path` in the merged filesystem, reading layers from the top down.

    Stops at the first layer that settles the answer: the file itself, a
    whiteout of it or of a parent, an opaque parent, or a non-directory parent.
    """
    target = normalize(path)
    parents = _ancestors(target)
    whiteouts = {posixpath.join(posixpath.dirname(p), WHITEOUT_PREFIX + posixpath.basename(p))
                 for p in [*parents, target]}
    opaque_markers = {posixpath.join(p, OPAQUE_MARKER) for p in parents}
    for opener in layers_top_down:
        hidden = False
        with opener() as stream:
            hardlinks: dict[str, str] = {}
            for member in walk(stream, seekable=seekable):
                name = normalize(member.name)
                if name == target:
                    if member.type == HARDLINK:
                        hardlinks[target] = normalize(member.linkname)
                        continue
                    if member.is_regular:
                        return member.read()
                    return None  # a directory, device or symlink: no file content to read
                if name in whiteouts or name in opaque_markers or (name in parents and not member.is_dir):
                    hidden = True
            if target in hardlinks:  # rare: read the link's source from the same layer
                return find_file(hardlinks[target], [opener], seekable=seekable)
        if hidden:
            return None
    return None


def tar_unpacked_size(stream: BinaryIO, *, seekable: bool = False) -> int:
    """Unpacked size of one layer tar, counted like `docker history`."""
    return sum(member_size(m) for m in walk(stream, seekable=seekable))
