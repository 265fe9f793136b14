"""A registry layer's unpacked size without downloading it: the gzip trailer or the zstd frame header.

Why: the budget rules need each layer's unpacked size, and a guess from the
compressed size is 3x wrong for incompressible data. A gzip member ends with
ISIZE, its uncompressed length modulo 2^32 (RFC 1952 section 2.3.1); a zstd
frame header may carry Frame_Content_Size (RFC 8878 section 3.1.1.1.4). One
small HTTP range request per layer reads them, all layers at once.

What can make them lie, and what is done about it (docs/sizes.md says the same):
- several gzip members (eStargz, concatenated streams): ISIZE is only the last
  member's. The tail read also looks for a member that starts inside it and
  ends at the end of the blob; a trailer smaller than the data could hold is
  refused.
- a layer of 4 GiB or more: ISIZE wraps. The value is trusted only when the
  next possible one (ISIZE + 2^32) would need a compression ratio above
  TRUST_RATIO; else the layer keeps the marked estimate.
- a bomb or a crafted trailer: a value no deflate/zstd stream of that many
  compressed bytes could produce (above MAX_DEFLATE_RATIO / below what the
  bytes could hold) is refused.
- several zstd frames: Frame_Content_Size covers the first frame only; a
  value smaller than the data could hold is refused, and layers marked as
  zstd:chunked or eStargz are not trusted at all.
A layer that is streamed anyway (--exact) is counted, and the trailer checked
against the count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from ...registry.client import RegistryClient

GZIP_TAIL = 4096  # enough for an eStargz footer (51 bytes) and a small last member
ZSTD_HEAD = 18  # the longest zstd frame header: magic, descriptor, window, dictionary id, content size
TRUST_RATIO = 8  # image layers compress 2-6x; a 4 GiB wrap needing more than this is ruled out
MAX_DEFLATE_RATIO = 1032  # deflate's ceiling (258 bytes per 2-bit code): more cannot be real
MAX_ZSTD_RATIO = 32768  # an RLE block: 4 bytes for 128 KiB
HEADER_SLACK = 4096  # gzip header fields (name, extra) the tail cannot see
WRAP = 2**32
T = TypeVar("T")
CONCURRENCY = 8
WHOLE_LIMIT = 16 * 2**20  # a blob that arrived whole is unpacked in memory only up to this
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MULTI_PART_ANNOTATIONS = ("containerd.io/snapshot/stargz/toc.digest",
                          "io.github.containers.zstd-chunked.manifest-checksum")


class SizeClaim(msgspec.Struct, frozen=True):
    """What a layer's blob says about its unpacked (tar) length: `size` when trusted, else `why` not."""

    size: int | None
    why: str = ""
    claimed: int | None = None  # the raw trailer / header value, when there was one
    files: int | None = None  # file bytes as `docker history` counts them, when the whole blob was read
    trailer: bool = False  # the size is a gzip trailer's: a full read of the blob must end with it


def compression(media_type: str) -> str | None:
    """gzip, zstd, none (a plain tar) or None (unknown) from a layer descriptor's media type."""
    kind = (media_type or "").lower()
    if kind.endswith(("+gzip", ".gzip")):
        return "gzip"
    if kind.endswith("+zstd"):
        return "zstd"
    if kind.endswith((".v1.tar", ".diff.tar")):
        return "none"
    return None


def _deflate_floor(compressed: int) -> int:
    """The fewest bytes `compressed` gzip bytes can unpack to. Encoders pick the smallest of stored,
    fixed and dynamic Huffman blocks; stored data costs 5 bytes per 64 KiB, a fixed-code literal at
    most 9 bits: random data grows by 0.03 % through Go's or zlib's deflate, never by 1/8."""
    payload = max(compressed - 18 - HEADER_SLACK, 0)
    return payload * 8 // 9


def _members_in_tail(tail: bytes, first: int) -> list[int]:
    """Offsets (from `first`) in `tail` where a whole gzip member starts and runs exactly to the end."""
    import zlib

    found = []
    start = tail.find(b"\x1f\x8b\x08", first)
    while start >= 0:
        inflater = zlib.decompressobj(31)
        try:
            inflater.decompress(tail[start:])
            if inflater.eof and not inflater.unused_data:
                found.append(start)
        except zlib.error:
            pass
        start = tail.find(b"\x1f\x8b\x08", start + 1)
    return found


def whole_gzip(blob: bytes) -> SizeClaim:
    """A blob small enough to arrive whole in the tail: unpacked (every member) and counted both ways."""
    import io
    import zlib

    from ..layerfs import tar_unpacked_size
    from ..tarstream import TarFormatError

    parts: list[bytes] = []
    rest = blob
    try:
        while rest.strip(b"\0"):
            inflater = zlib.decompressobj(31)
            parts.append(inflater.decompress(rest, WHOLE_LIMIT - sum(len(part) for part in parts) + 1))
            if not inflater.eof or sum(len(part) for part in parts) > WHOLE_LIMIT:
                return SizeClaim(None, "not a whole gzip stream, or more than it is worth unpacking here")
            rest = inflater.unused_data
        tar = b"".join(parts)
        return SizeClaim(len(tar), files=tar_unpacked_size(io.BytesIO(tar)))
    except (zlib.error, TarFormatError):
        return SizeClaim(None, "not a gzip-compressed tar")


def gzip_claim(tail: bytes, compressed: int) -> SizeClaim:
    """Judge a gzip blob's last bytes (`tail`) given its compressed size."""
    if len(tail) < 8:
        return SizeClaim(None, "the blob is too short for a gzip trailer")
    if len(tail) >= compressed:  # the whole blob: count it
        whole = whole_gzip(tail[-compressed:])
        if whole.size is not None or "not a gzip" in whole.why:
            return whole
    claimed = int.from_bytes(tail[-4:], "little")
    if _members_in_tail(tail, 1 if len(tail) >= compressed else 0):
        return SizeClaim(None, "several gzip members (eStargz or concatenated): the trailer counts only "
                               "the last", claimed)
    floor, ceiling = _deflate_floor(compressed), compressed * MAX_DEFLATE_RATIO
    if claimed < floor:
        return SizeClaim(None, f"its trailer says {claimed} bytes, less than {compressed} compressed bytes "
                               "hold: several gzip members, or 4 GiB or more unpacked", claimed)
    if claimed > ceiling:
        return SizeClaim(None, f"its trailer says {claimed} bytes, which {compressed} compressed bytes "
                               "cannot unpack to", claimed)
    if claimed + WRAP <= compressed * TRUST_RATIO:
        return SizeClaim(None, "it may be 4 GiB or more unpacked (the trailer counts modulo 4 GiB)", claimed)
    return SizeClaim(claimed, "", claimed, trailer=True)


def zstd_claim(head: bytes, compressed: int) -> SizeClaim:
    """Judge a zstd blob's first bytes: Frame_Content_Size when the header has one and it can be right."""
    if head[:4] != ZSTD_MAGIC:
        return SizeClaim(None, "it does not start with a zstd frame")
    if len(head) < 5:
        return SizeClaim(None, "the zstd frame header is cut short")
    descriptor = head[4]
    if descriptor & 0x08:
        return SizeClaim(None, "the zstd frame header has its reserved bit set")
    single_segment = bool(descriptor & 0x20)
    offset = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 0x03]
    width = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    if not width:
        return SizeClaim(None, "its zstd frame header has no content size")
    if len(head) < offset + width:
        return SizeClaim(None, "the zstd frame header is cut short")
    claimed = int.from_bytes(head[offset:offset + width], "little") + (256 if width == 2 else 0)
    floor = max(compressed - 22 - 3 * (compressed // 131072 + 1), 0)  # raw blocks: 3 bytes per 128 KiB
    if claimed < floor:
        return SizeClaim(None, f"its first zstd frame holds {claimed} bytes, less than the blob: several "
                               "frames", claimed)
    if claimed > compressed * MAX_ZSTD_RATIO:
        return SizeClaim(None, f"its zstd header says {claimed} bytes, which {compressed} compressed bytes "
                               "cannot unpack to", claimed)
    return SizeClaim(claimed, "", claimed, trailer=True)


def claim_for(client: RegistryClient, repository: str, descriptor: dict) -> SizeClaim:
    """One layer: the range request its compression needs, judged. Never raises for the registry's
    faults: any failure is a reason to keep the estimate."""
    from ...registry.client import RegistryError

    digest, size = descriptor.get("digest"), int(descriptor.get("size") or 0)
    kind = compression(descriptor.get("mediaType", ""))
    annotations = descriptor.get("annotations") or {}
    if kind == "none":
        return SizeClaim(size)  # an uncompressed tar: the blob is the tar
    if kind is None or not digest or size <= 0:
        return SizeClaim(None, "its media type names no compression imagefix can read a size from")
    if any(key in annotations for key in MULTI_PART_ANNOTATIONS):
        return SizeClaim(None, "a seekable layer (eStargz / zstd:chunked) made of many parts")
    try:
        if kind == "gzip":
            tail = client.blob_range(repository, digest, f"bytes=-{GZIP_TAIL}", min(GZIP_TAIL, size))
            if tail is None:
                return SizeClaim(None, "the registry does not serve byte ranges")
            return gzip_claim(tail, size)
        head = client.blob_range(repository, digest, f"bytes=0-{ZSTD_HEAD - 1}", min(ZSTD_HEAD, size))
        if head is None:
            return SizeClaim(None, "the registry does not serve byte ranges")
        return zstd_claim(head, size)
    except RegistryError as exc:
        return SizeClaim(None, f"its size could not be read ({exc})")


_judged: dict[tuple, SizeClaim] = {}  # (host, digest, size, media type) -> what its bytes said, this process
_judged_lock = threading.Lock()


def _key(host: str, descriptor: dict) -> tuple:
    marks = tuple(sorted(k for k in descriptor.get("annotations") or {} if k in MULTI_PART_ANNOTATIONS))
    return host, descriptor.get("digest"), int(descriptor.get("size") or 0), descriptor.get("mediaType"), \
        marks


NOT_KEPT = ("its size could not be read", "the registry does not serve byte ranges")  # not about the bytes


def claims_alongside(client: RegistryClient, repository: str, descriptors: Sequence[dict],
                     work: Callable[[], T]) -> tuple[T, list[SizeClaim]]:
    """`work()` (the image config's request, on the caller's client) while the layers' claims are
    asked on connections of their own: the sizes cost no round trip after the config's."""
    if not _unjudged(client.host, descriptors):
        return work(), claims(client, repository, descriptors)
    done: list[Any] = at_once(lambda index: work() if index == 0 else claims(
        client, repository, descriptors, caller_free=False), 2, 2, "config-and-sizes")
    return done[0], done[1]


def _unjudged(host: str, descriptors: Sequence[dict]) -> list[int]:
    with _judged_lock:
        return [index for index, d in enumerate(descriptors) if _key(host, d) not in _judged]


def claims(client: RegistryClient, repository: str, descriptors: Sequence[dict], *,
           caller_free: bool = True) -> list[SizeClaim]:
    """Every layer's claim, up to CONCURRENCY requests at once, each on its own connection (the first
    on the caller's client when `caller_free`). A digest names the blob's bytes, so a layer judged
    once in this process (the base layer of a fleet's images, the same image under 50 tags) is not
    asked for again on that registry; a failed request is not kept."""
    with _judged_lock:
        known = {index: _judged[_key(client.host, d)] for index, d in enumerate(descriptors)
                 if _key(client.host, d) in _judged}
    wanted = [index for index in range(len(descriptors)) if index not in known]

    def one(position: int) -> SizeClaim:
        descriptor = descriptors[wanted[position]]
        if (position == 0 and caller_free) or compression(descriptor.get("mediaType", "")) == "none":
            claim = claim_for(client, repository, descriptor)  # the caller's client (it waits meanwhile)
        else:
            worker = client.sibling()
            try:
                claim = claim_for(worker, repository, descriptor)
            finally:
                worker.release()
        if not claim.why.startswith(NOT_KEPT):
            with _judged_lock:
                _judged[_key(client.host, descriptor)] = claim
        return claim

    if len(wanted) <= 1:
        found = [one(position) for position in range(len(wanted))]
    else:
        found = at_once(one, len(wanted), CONCURRENCY, "layer-size")
    known.update(zip(wanted, found, strict=True))
    return [known[index] for index in range(len(descriptors))]


def at_once(func: Callable[[int], T], count: int, workers: int, name: str) -> list[T]:
    """[func(0), ..., func(count - 1)] on up to `workers` threads; like ThreadPoolExecutor.map, every call
    runs and the first error in order is raised. Plain threads: concurrent.futures would bring logging
    and traceback into every registry scan's start-up for three requests."""
    results: list[Any] = [None] * count
    errors: list[BaseException | None] = [None] * count
    indexes = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            try:
                results[index] = func(index)
            except BaseException as exc:  # raised in the caller's thread below
                errors[index] = exc

    threads = [threading.Thread(target=work, name=f"{name}-{n}", daemon=True)
               for n in range(min(workers, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


class TrailerCheck:
    """A gzip blob stream read to its end (a digest check does that anyway) whose last four bytes must
    be the ISIZE a range request said: `lied()` is called when they are not."""

    def __init__(self, inner, claimed: int, lied) -> None:
        self.inner, self.claimed, self.lied = inner, claimed, lied
        self.tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.tail = (self.tail + data[-8:])[-8:]
        return data

    def __enter__(self) -> TrailerCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            while self.read(1 << 20):  # what the inner stream's close would read: through here instead
                pass
        self.inner.__exit__(*exc)
        if exc[0] is None and int.from_bytes(self.tail[-4:], "little") != self.claimed:
            self.lied()


class UnpackCounter:
    """A compressed layer stream read as its plain tar, counting every unpacked byte and gzip member.

    Why: a tar walk stops at the end-of-archive blocks, before the end of the
    compressed stream; `drain()` inflates the rest so that `total` is the whole
    unpacked length, the number a trailer is checked against.
    """

    def __init__(self, raw, chunk: int = 1 << 18) -> None:
        self.raw, self.chunk = raw, chunk
        self.total = 0
        self.members = 0
        self.kind: str | None = None
        self._inflater: Any = None  # zlib's, isal's or zstandard's decompressobj
        self._pending = b""  # compressed bytes not yet fed
        self._out = b""
        self._started = False
        self._ended = False

    def _start(self) -> None:
        self._started = True
        head = self.raw.read(self.chunk)
        self._pending = head
        if head.startswith(b"\x1f\x8b"):
            self.kind = "gzip"
        elif head.startswith(ZSTD_MAGIC):
            self.kind = "zstd"
        self._new_inflater()

    def _new_inflater(self) -> None:
        if self.kind == "gzip":
            self._inflater = _gzip_inflater()
            self.members += 1
        elif self.kind == "zstd":
            import zstandard

            self._inflater = zstandard.ZstdDecompressor().decompressobj()
            self.members += 1

    def _more(self) -> bytes:
        """The next unpacked bytes; b'' at the end of the stream."""
        while not self._ended:
            data = self._pending or self.raw.read(self.chunk)
            self._pending = b""
            if self._inflater is None:
                if not data:
                    self._ended = True
                return data
            if not data:
                if not self._inflater.eof:
                    raise ValueError(f"the {self.kind} stream is truncated")
                self._ended = True
                return b""
            out = self._inflater.decompress(data)
            if self._inflater.eof and self._inflater.unused_data:
                rest = self._inflater.unused_data
                if self.kind == "gzip" and not rest.strip(b"\0"):
                    rest = b""  # zero padding after the last member, as gzip(1) tolerates
                elif rest:
                    self._new_inflater()
                self._pending = rest
            if out:
                return out
        return b""

    def read(self, size: int = -1) -> bytes:
        if not self._started:
            self._start()
        parts, have = [], 0
        if self._out:
            parts.append(self._out)
            have = len(self._out)
            self._out = b""
        while size < 0 or have < size:
            more = self._more()
            if not more:
                break
            self.total += len(more)
            parts.append(more)
            have += len(more)
        data = b"".join(parts)
        if 0 <= size < len(data):
            data, self._out = data[:size], data[size:]
        return data

    def drain(self) -> int:
        """Unpack the rest (discarding it); the whole unpacked length."""
        self._out = b""
        while self.read(1 << 20):
            self._out = b""
        return self.total


def _gzip_inflater() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        import zlib

        return zlib.decompressobj(31)
    return isal_zlib.decompressobj(31)
