"""File-level view of an image: each layer's entries, read once, and what the merged tree wastes.

Entries come from layer tars (archives, registry blobs, `docker save`) or
straight from overlay2 layer directories (no export at all). Only paths and
sizes are kept - never file contents - so memory follows the number of
files, not the size of the image.
"""

from __future__ import annotations

import heapq
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .documents import docker_archive_manifest, load_json
from .layerfs import OPAQUE_MARKER, WHITEOUT_PREFIX, member_size, normalize
from .tarstream import HARDLINK, ByteStream, TarFormatError, walk

FILE, DIR, LINK, WHITEOUT, OPAQUE = "f", "d", "l", "w", "o"
Entry = tuple[str, int, str]  # (path, bytes counted like docker, kind)


def classify(path: str, is_dir: bool, size: int) -> Entry:
    if WHITEOUT_PREFIX not in path:  # almost every entry: no need to split the path
        return path, size, DIR if is_dir else FILE
    name = posixpath.basename(path)
    if name == OPAQUE_MARKER:
        return posixpath.dirname(path), 0, OPAQUE
    if name.startswith(WHITEOUT_PREFIX):
        return posixpath.join(posixpath.dirname(path), name[len(WHITEOUT_PREFIX):]), 0, WHITEOUT
    return path, size, DIR if is_dir else FILE


def entries_from_tar(stream: ByteStream, *, seekable: bool = False) -> Iterator[Entry]:
    for member in walk(stream, seekable=seekable):
        path = normalize(member.name)
        if not path:
            continue
        size = 0 if member.type == HARDLINK else member_size(member)
        yield classify(path, member.is_dir, size)


def entries_from_dir(root: str) -> Iterator[Entry]:
    """An overlay2 diff directory: sizes from lstat, whiteouts as 0/0 char devices, opaque xattr."""
    seen_inodes: set[tuple[int, int]] = set()  # hard links count once per layer, as docker counts them
    stack = [""]
    while stack:
        relative = stack.pop()
        folder = os.path.join(root, relative) if relative else root
        if relative and overlay_opaque(folder):
            yield relative, 0, OPAQUE
        try:
            items = list(os.scandir(folder))
        except OSError:
            continue
        for item in items:
            path = f"{relative}/{item.name}" if relative else item.name
            info = item.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                yield path, 0, DIR
                stack.append(path)
            elif stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                yield path, 0, WHITEOUT
            elif stat.S_ISLNK(info.st_mode):
                yield path, info.st_size, LINK
            elif stat.S_ISREG(info.st_mode):
                size = info.st_size
                if info.st_nlink > 1:
                    key = (info.st_dev, info.st_ino)
                    size = 0 if key in seen_inodes else size
                    seen_inodes.add(key)
                yield classify(path, False, size)


def overlay_opaque(folder: str) -> bool:
    """overlayfs marks a directory that replaces the lower layers' one with an xattr."""
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(folder, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def entries_from_save(stream: ByteStream, diff_ids: list[str]) -> list[list[Entry]]:
    """A `docker save` stream: layer tars in whatever order; its manifest.json gives the stacking order."""
    by_path: dict[str, list[Entry]] = {}
    order: list[str] = []
    for member in walk(stream):
        name = normalize(member.name)
        if not member.is_regular:
            continue
        if name == "manifest.json":
            manifest = docker_archive_manifest(load_json(member.read(), "docker save: manifest.json"),
                                               "docker save: manifest.json")
            order = [normalize(path) for path in (manifest[0].get("Layers") or [])] if manifest else []
        elif name.endswith("/layer.tar") or (name.startswith("blobs/sha256/") and member.size >= 1024):
            try:
                by_path[name] = list(entries_from_tar(member.open()))
            except TarFormatError:
                if name.startswith("blobs/"):
                    continue  # a config or manifest blob in newer layouts, not a layer
                raise
    if len(order) != len(diff_ids):
        raise TarFormatError("the export's manifest.json does not list the image's layers")
    return [by_path.get(path, []) for path in order]


@dataclass
class Waste:
    path: str
    bytes: int
    layer: int  # where the hidden copy was written
    hidden_by: int  # the layer that overwrote or deleted it
    how: str  # "overwritten" | "deleted"


@dataclass
class FileView:
    files: list[tuple[str, int, int]]  # visible (path, bytes, layer)
    directories: list[tuple[str, int]]  # (dir, bytes of visible files below it)
    waste: list[Waste]
    layer_sizes: list[int]
    file_count: int
    waste_bytes: int = 0
    notes: list[str] = field(default_factory=list)


_LAYER_BITS = 16  # visible values pack (bytes << 16 | layer): one int, not a tuple, per file


def merge(layers: Iterable[Iterable[Entry]], top: int = 20) -> FileView:
    """Stack the layers like overlayfs and count what no longer shows.

    Each layer is consumed in one pass, as it streams: a whiteout or opaque
    marker hides only what *lower* layers wrote, so the order of entries
    within a layer does not matter, and no layer's entry list is kept.
    """
    visible: dict[str, int] = {}  # path -> bytes << 16 | layer
    waste: list[Waste] = []
    layer_sizes = []
    mask = (1 << _LAYER_BITS) - 1
    for index, entries in enumerate(layers):
        total = 0
        for path, size, kind in entries:
            if kind in (FILE, LINK):
                total += size
                old = visible.get(path)
                if old is not None and old >> _LAYER_BITS and (old & mask) != index:
                    waste.append(Waste(path, old >> _LAYER_BITS, old & mask, index, "overwritten"))
                visible[path] = size << _LAYER_BITS | index
            elif kind == WHITEOUT:
                _hide(visible, waste, path, index, mask, below_only=False)
            elif kind == OPAQUE:
                _hide(visible, waste, path, index, mask, below_only=True)
        layer_sizes.append(total)
    directories: dict[str, int] = {}
    for path, packed in visible.items():
        size = packed >> _LAYER_BITS
        if not size:
            continue
        parent = posixpath.dirname(path)
        while parent:
            directories[parent] = directories.get(parent, 0) + size
            parent = posixpath.dirname(parent)
    files = heapq.nsmallest(top, ((p, v >> _LAYER_BITS, v & mask) for p, v in visible.items()),
                            key=lambda x: (-x[1], x[0]))
    waste.sort(key=lambda w: (-w.bytes, w.path))
    return FileView(
        files=files,
        directories=heapq.nsmallest(top, directories.items(), key=lambda x: (-x[1], x[0])),
        waste=waste,
        layer_sizes=layer_sizes,
        file_count=len(visible),
        waste_bytes=sum(w.bytes for w in waste),
    )


def _hide(visible: dict[str, int], waste: list[Waste], path: str, index: int, mask: int, *,
          below_only: bool) -> None:
    """A whiteout deletes the path and what is below it; an opaque marker (below_only) what is below
    it. Only lower layers' copies are hidden."""
    prefix = path + "/"
    doomed = [p for p in visible if (p.startswith(prefix) or (not below_only and p == path))
              and (visible[p] & mask) < index]
    for victim in doomed:
        packed = visible.pop(victim)
        if packed >> _LAYER_BITS:
            waste.append(Waste(victim, packed >> _LAYER_BITS, packed & mask, index, "deleted"))
