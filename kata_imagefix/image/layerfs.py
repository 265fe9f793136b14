"""Read layer tars the way a union filesystem would: whiteouts, opaque dirs, sizes.

Layers come as callables that open a fresh binary stream (plain tar, gzip,
bzip2 or xz), so nothing is read until needed and a lookup can stop early.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .model import NAME_MAX, PATH_MAX, SymlinkTo
from .tarstream import HARDLINK, SYMLINK, ByteStream, Member, walk

WHITEOUT_PREFIX = ".wh."
MAX_HARDLINK_HOPS = 8  # real tars link to a file met earlier: a longer chain is a crafted loop
OPAQUE_MARKER = ".wh..wh..opq"

LayerOpener = Callable[[], BinaryIO]

if TYPE_CHECKING:
    from .layercache import LayerFacts


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


@dataclass(frozen=True)
class Verdict:
    """What one layer says about one path."""

    kind: str  # "file": content here; "link": a symlink (target in content); "hidden"; "none": untouched;
    # "alias": a hard link to a path (in content) this layer does not hold: the lower layers' copy
    content: bytes | None = None

    @property
    def settles(self) -> bool:
        return self.kind != "none"

    @property
    def answer(self) -> bytes | SymlinkTo | None:
        if self.kind == "link":
            return SymlinkTo((self.content or b"").decode("utf-8", "surrogateescape"))
        return self.content if self.kind == "file" else None

    @property
    def source(self) -> str:
        return (self.content or b"").decode("utf-8", "surrogateescape")


UNTOUCHED = Verdict("none")


def layer_verdicts(stream: BinaryIO, targets: list[str], *, reopen: LayerOpener,
                   seekable: bool = False, seen: frozenset[str] = frozenset()) -> dict[str, Verdict]:
    """The layer's final word on each of the normalized `targets`.

    Reading stops early once every target's content is found in this layer;
    `reopen` reads the layer again for the rare hard-linked target.
    """
    verdicts = {target: UNTOUCHED for target in targets}
    watch: dict[str, list[str]] = {}  # a member name -> the targets it would hide
    for target in targets:
        parents = _ancestors(target)
        for hiding in [*(posixpath.join(posixpath.dirname(p), WHITEOUT_PREFIX + posixpath.basename(p))
                         for p in [*parents, target]), *(posixpath.join(p, OPAQUE_MARKER) for p in parents)]:
            watch.setdefault(hiding, []).append(target)
        for parent in parents:
            watch.setdefault(parent, []).append(target)  # hides only when it is not a directory
    hardlinks: dict[str, str] = {}
    for member in walk(stream, seekable=seekable):
        name = normalize(member.name)
        if name in verdicts and verdicts[name].kind != "file":
            if member.type == HARDLINK:
                hardlinks[name] = normalize(member.linkname)
            elif member.is_regular:
                verdicts[name] = Verdict("file", member.read())
            elif member.type == SYMLINK:
                verdicts[name] = Verdict("link", member.linkname.encode("utf-8", "surrogateescape"))
            else:
                verdicts[name] = Verdict("hidden")  # a directory or device: no content to read
        elif name in watch and (not member.is_dir or name.rsplit("/", 1)[-1].startswith(WHITEOUT_PREFIX)):
            for target in watch[name]:
                if verdicts[target].kind == "none":
                    verdicts[target] = Verdict("hidden")
        if not hardlinks and all(v.kind in ("file", "link") for v in verdicts.values()):
            return verdicts  # a deletion could still be followed by a new copy: only files stop early
    for name, source in hardlinks.items():  # rare: read the link's source from the same layer again
        if verdicts[name].kind not in ("file", "link"):
            chain = seen | {name}
            if source in chain or len(chain) > MAX_HARDLINK_HOPS:
                verdicts[name] = Verdict("hidden")  # a hard link to itself or a cycle: no content
                continue
            with reopen() as again:
                verdicts[name] = layer_verdicts(again, [source], reopen=reopen, seekable=seekable,
                                                seen=chain)[source]
                if verdicts[name].kind == "none":  # linked to a file of a lower layer, as the applier does
                    verdicts[name] = Verdict("alias", source.encode("utf-8", "surrogateescape"))
    return verdicts


def find_files(paths: Iterable[str], layers_top_down: list[LayerOpener], *, seekable: bool = False,
               keys: list[str | None] | None = None,
               cache: LayerFacts | None = None) -> dict[str, bytes | SymlinkTo | None]:
    """The content of each path in the merged filesystem, every layer read at most once for all of them.

    Layers are read from the top down until each path is settled: the file
    itself, a whiteout of it or of a parent, an opaque parent, or a
    non-directory parent. With `keys` (layer digests) and a `cache`, what a
    layer said is kept and later answers without reading it.
    """
    wanted = {path: normalize(path) for path in paths}
    # target -> the path it is looked up as now (a hard link to a lower layer's file changes it)
    asked = {target: target for target in set(wanted.values()) if _path_fits(target)}
    answers: dict[str, bytes | SymlinkTo | None] = {}
    for index, opener in enumerate(layers_top_down):
        pending = sorted(set(asked.values()))
        if not pending:
            break
        key = keys[index] if keys else None
        known = cache.get(key) if cache is not None and key else None
        if known is not None and all(target in known for target in pending):
            verdicts = known
        else:
            with opener() as stream:  # a registry stream checks its digest on close: cached only if it held
                verdicts = layer_verdicts(stream, pending, seekable=seekable, reopen=opener)
            if cache is not None and key:
                cache.put(key, {target: verdicts[target] for target in pending})
        for target, current in list(asked.items()):
            verdict = verdicts[current]
            if verdict.kind == "alias":
                asked[target] = normalize(verdict.source)
            elif verdict.settles:
                answers[target] = verdict.answer
                del asked[target]
    return {path: answers.get(target) for path, target in wanted.items()}


def _path_fits(path: str) -> bool:
    """Whether the kernel would look the path up at all (a 100 kB link target would not)."""
    raw = path.encode("utf-8", "surrogateescape")
    return len(raw) < PATH_MAX and all(len(part) <= NAME_MAX for part in raw.split(b"/"))


def find_file(path: str, layers_top_down: Iterable[LayerOpener], *,
              seekable: bool = False) -> bytes | SymlinkTo | None:
    """The content of `path` in the merged filesystem, reading layers from the top down."""
    return find_files([path], list(layers_top_down), seekable=seekable)[path]


def tar_unpacked_size(stream: ByteStream, *, seekable: bool = False) -> int:
    """Unpacked size of one layer tar, counted like `docker history`."""
    return sum(member_size(m) for m in walk(stream, seekable=seekable))
