"""A lean, streaming tar reader for image layers.

Why not `tarfile`: its stream mode copies its buffer on every forward skip,
which made walking a 600 MB gzip layer take seconds. Here file data is
skipped by seeking (plain, seekable blobs) or by decompressing into a
bounded scratch buffer (compressed blobs): memory stays flat whatever the
layer size. Reads ustar, GNU (long names) and PAX headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast


def _zlib():
    """ISA-L inflates about 6x faster than zlib here (same API); zlib is the fallback."""
    try:
        from isal import isal_zlib
        return isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        import zlib
        return zlib

BLOCK = 512
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ"

REGULAR = (b"0", b"\0", b"7")
HARDLINK, SYMLINK, CHARDEV, DIRECTORY = b"1", b"2", b"3", b"5"


class ByteStream(Protocol):
    """What the reader needs of a layer: a file, an HTTP body, a member of an outer tar, a counter."""

    def read(self, size: int = -1, /) -> bytes: ...


class TarFormatError(Exception):
    """The layer is not a readable tar (truncated, corrupt, or an unknown compression)."""


def compression_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return None


class _Source:
    """Bytes of the (decompressed) tar with cheap skip()."""

    def __init__(self, raw: ByteStream, compression: str | None, seekable: bool) -> None:
        self.raw = raw
        self.compression = compression
        self.seekable = seekable and compression is None
        self.pending = b""  # decompressed bytes; those before `pos` are consumed
        self.pos = 0  # an offset, not a re-slice: slicing the rest off on every header copied ~1 MB
        self.done = False
        self.raw_bytes = 0  # compressed bytes read, for accounting
        self.end: int | None = None  # a seekable stream's length: a skip past it is a truncated layer
        self._file: BinaryIO | None = None  # raw again when seekable: skips are seeks
        if self.seekable:
            self._file = file = cast(BinaryIO, raw)  # seekable=True comes only with an open file (see walk)
            here = file.tell()
            self.end = file.seek(0, 2)
            file.seek(here)
        self._frames: _ZstdFrames | None = None
        self._fresh = True  # a bzip2/xz decompressor not fed yet: the stream may end cleanly here
        self._decomp = self._decompressor() if compression else None
        self._tail = b""

    def _decompressor(self):
        if self.compression == "gzip":
            return _zlib().decompressobj(31)
        if self.compression == "zstd":
            try:
                import zstandard
            except ImportError:  # pragma: no cover
                raise TarFormatError("zstd layer: install the zstandard package") from None
            # zstandard's decompressobj has no output limit (a 1 MB frame of RLE blocks makes 30 GB in
            # one call); its stream reader hands out at most what is asked for, but says nothing when
            # the input stops inside a frame, so the frames are followed alongside (_ZstdFrames)
            self._frames = _ZstdFrames()
            return zstandard.ZstdDecompressor().stream_reader(_Feeding(self), read_size=CHUNK // 4,
                                                              read_across_frames=True)
        if self.compression == "bzip2":
            import bz2

            return bz2.BZ2Decompressor()
        import lzma

        return lzma.LZMADecompressor()

    def _raw_read(self, size: int) -> bytes:
        data = self.raw.read(size)
        self.raw_bytes += len(data)
        return data

    def _more(self) -> bytes:
        """Up to CHUNK fresh decompressed bytes; b'' at the end."""
        try:
            return self._inflate()
        except TarFormatError:
            raise
        except Exception as exc:  # zlib.error, lzma.LZMAError, OSError, zstd errors
            raise TarFormatError(f"corrupt {self.compression or 'tar'} data ({exc})") from None

    def _inflate(self) -> bytes:
        if self._decomp is None:
            return self._raw_read(CHUNK)
        if self.compression == "gzip":
            return self._inflate_gzip()
        if self.compression == "zstd":
            out = self._decomp.read(CHUNK)
            assert self._frames is not None  # set with the zstd reader
            if not out and not self._frames.complete:
                raise TarFormatError("compressed layer is truncated")
            return out
        return self._inflate_buffered()

    def _inflate_gzip(self) -> bytes:
        while True:
            decomp = self._decomp
            assert decomp is not None  # only _inflate calls it, and only with a decompressor
            if self._tail:
                data, self._tail = self._tail, b""
            else:
                data = self._raw_read(CHUNK // 4)
                if not data:
                    if not decomp.eof and self.raw_bytes:
                        raise TarFormatError("compressed layer is truncated")
                    return b""
            out = decomp.decompress(data, CHUNK)
            self._tail = decomp.unconsumed_tail
            if decomp.eof and decomp.unused_data.strip(b"\0"):
                # concatenated gzip members: start the next one
                rest = decomp.unused_data
                self._decomp = decomp = _zlib().decompressobj(31)
                self._tail = rest
            if out:
                return out
            if decomp.eof and not self._tail:
                return b""

    def _inflate_buffered(self) -> bytes:
        """bzip2 and xz: at most CHUNK bytes per call (their decompressors keep the input they have
        not used yet); concatenated streams (pbzip2, pixz) go on; ending inside one is truncation."""
        while True:
            decomp = self._decomp
            assert decomp is not None  # only _inflate calls it, and only with a decompressor
            if not decomp.needs_input:  # output still due from input already given
                out = decomp.decompress(b"", CHUNK)
            else:
                data, self._tail = (self._tail or self._raw_read(CHUNK // 4)), b""
                if not data:
                    if self._fresh:
                        return b""
                    raise TarFormatError("compressed layer is truncated")
                if self._fresh:
                    data = data.lstrip(b"\0")  # padding between (or after) streams
                    if not data:
                        continue
                    self._fresh = False
                out = decomp.decompress(data, CHUNK)
            if decomp.eof:
                self._tail = decomp.unused_data
                self._decomp = self._decompressor()
                self._fresh = True
            if out:
                return out

    def read(self, size: int) -> bytes:
        if self.seekable:
            data = self.raw.read(size)
            self.raw_bytes += len(data)
            return data
        start, end = self.pos, self.pos + size
        if end <= len(self.pending):  # the common case: a header or small file inside the buffer
            self.pos = end
            return self.pending[start:end]
        parts = [self.pending[start:]] if start < len(self.pending) else []
        have = len(parts[0]) if parts else 0
        if self._decomp is None and size - have >= CHUNK // 16:
            # a big read of a plain stream (a nested layer tar pulling its next chunk): take the bytes
            # straight from the stream rather than through this buffer, saving two copies of each
            self.pending, self.pos = b"", 0
            data = _read_up_to(self.raw, size - have)
            self.raw_bytes += len(data)
            return parts[0] + data if parts else data
        while have < size:
            more = self._more()
            if not more:
                break
            parts.append(more)
            have += len(more)
        if have <= size:
            self.pending, self.pos = b"", 0
            return b"".join(parts)
        last = parts.pop()
        cut = len(last) - (have - size)
        parts.append(last[:cut])
        self.pending, self.pos = last, cut  # keep the rest in place: no copy of the remainder
        return b"".join(parts)

    def skip(self, size: int) -> None:
        if size <= 0:
            return
        if self._file is not None:  # seekable
            if self._file.seek(size, 1) > (self.end or 0):  # seeking past the end reads as a clean end
                raise TarFormatError("layer ends inside a file: truncated")
            return
        left = len(self.pending) - self.pos
        if left >= size:
            self.pos += size
            return
        size -= left
        self.pending, self.pos = b"", 0
        if self._decomp is None and hasattr(self.raw, "skip"):  # hand the skip down, nothing copied
            if self.raw.skip(size) < size:
                raise TarFormatError("layer ends inside a file: truncated")
            return
        while size > 0:
            more = self._more()
            if not more:
                raise TarFormatError("layer ends inside a file: truncated")
            if len(more) > size:
                self.pending, self.pos = more, size
                return
            size -= len(more)


class _Feeding:
    """The raw stream as zstd's reader sees it: each chunk also goes past the frame follower."""

    def __init__(self, source: _Source) -> None:
        self.source = source

    def read(self, size: int = -1) -> bytes:
        data = self.source._raw_read(size if size > 0 else CHUNK)
        assert self.source._frames is not None  # made before the reader that calls this
        self.source._frames.feed(data)
        return data


class _ZstdFrames:
    """Follows zstd frame and block headers (RFC 8878, section 3.1) over the compressed bytes, only to
    know whether the input ended between frames (complete) or inside one (truncated)."""

    def __init__(self) -> None:
        self.state = "magic"
        self.need = 4  # header bytes the state waits for
        self.buf = b""
        self.skip = 0  # content bytes to pass over
        self.checksum = False

    @property
    def complete(self) -> bool:
        return self.state == "magic" and not self.buf and not self.skip

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self.skip:
                taken = min(self.skip, end - pos)
                self.skip -= taken
                pos += taken
                continue
            taken = min(self.need - len(self.buf), end - pos)
            self.buf += data[pos:pos + taken]
            pos += taken
            if len(self.buf) == self.need:
                header, self.buf = self.buf, b""
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        if self.state == "magic":
            if header[1:] == b"\x2a\x4d\x18" and header[0] & 0xF0 == 0x50:
                self.state, self.need = "skippable", 4
            else:  # a real frame (a bad magic number is the decompressor's to report)
                self.state, self.need = "descriptor", 1
        elif self.state == "skippable":
            self.skip = int.from_bytes(header, "little")
            self.state, self.need = "magic", 4
        elif self.state == "descriptor":
            flags = header[0]
            single = flags >> 5 & 1
            self.checksum = bool(flags >> 2 & 1)
            rest = (0 if single else 1) + (0, 1, 2, 4)[flags & 3] + ((single, 2, 4, 8)[flags >> 6])
            self.state, self.need = ("frame-header", rest) if rest else ("block", 3)
        elif self.state == "frame-header":
            self.state, self.need = "block", 3
        else:  # a block header: last-block bit, type, size
            value = int.from_bytes(header, "little")
            self.skip = 1 if (value >> 1) & 3 == 1 else value >> 3  # an RLE block holds one byte
            if value & 1:
                self.skip += 4 if self.checksum else 0
                self.state, self.need = "magic", 4


@dataclass
class Member:
    name: str
    type: bytes
    size: int
    linkname: str
    _source: _Source | None = None
    _consumed: bool = False
    _reader: MemberReader | None = None

    @property
    def is_regular(self) -> bool:
        return self.type in REGULAR

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY

    def open(self) -> MemberReader:
        """Stream the file's bytes (for nested tars); only valid before the walk moves on."""
        if self._consumed or self._source is None:
            raise TarFormatError("member data already passed")
        self._consumed = True
        self._reader = MemberReader(self._source, self.size)
        return self._reader

    def read(self, limit: int = 64 * 2**20) -> bytes:
        """The file's bytes; only valid before the walk moves on."""
        if self._consumed or self._source is None:
            raise TarFormatError("member data already passed")
        if self.size > limit:
            raise TarFormatError(f"{self.name} is larger than {limit} bytes")
        self._consumed = True
        data = self._source.read(self.size)
        if len(data) < self.size:
            raise TarFormatError("layer ends inside a file: truncated")
        self._source.skip(-self.size % BLOCK)
        return data


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = field[0] & 0x3F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError("not a tar archive (bad number field)") from None


def _cstr(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


MAX_SPECIAL = 1 << 20  # Go's archive/tar (containerd, moby) refuses a longer PAX or GNU long-name record


def _pax_records(data: bytes) -> dict[str, str]:
    """`LEN key=value\\n` records; a malformed one is an error, as in Go's archive/tar (a length that
    does not move forward would loop)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        field = data[pos:space] if space > pos else b""
        length = int(field) if field.isdigit() else 0
        end = pos + length
        if length < 5 or end > len(data) or data[end - 1:end] != b"\n" or b"=" not in data[space + 1:end]:
            if not data[pos:].strip(b"\0"):
                break  # NUL padding after the last record
            raise TarFormatError("corrupt PAX header record")
        key, _, value = data[space + 1:end - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


def _pax_size(value: str) -> int:
    if not value.isdigit() or not value.isascii():
        raise TarFormatError(f"corrupt PAX header: size={value[:40]!r} is not a byte count")
    return int(value)


def _checksum_ok(header: bytes) -> bool:
    stored = _number(header[148:156])
    return stored == sum(header) - sum(header[148:156]) + 256  # the field itself counts as spaces


def walk(raw: ByteStream, *, seekable: bool = False) -> Iterator[Member]:
    """Members of a layer tar (plain, gzip, zstd, bzip2 or xz, detected from its first bytes);
    seekable=True only with an open file (a BinaryIO), whose skips are then seeks."""
    head = _read_up_to(raw, 6)
    if seekable:
        file = cast(BinaryIO, raw)
        file.seek(0)
        source = _Source(file, compression_of(head), True)
    else:
        source = _Source(_Prefixed(head, raw), compression_of(head), False)
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    first = True
    while True:
        header = source.read(BLOCK)
        if len(header) < BLOCK:
            if first and not header:
                return  # an empty layer
            if header.strip(b"\0"):
                raise TarFormatError("truncated tar header")
            return
        if not header.strip(b"\0"):
            return  # end-of-archive marker
        if not _checksum_ok(header):
            raise TarFormatError("not a tar archive (bad header checksum)" if first
                                 else "corrupt tar header")
        first = False
        type_flag = header[156:157]
        size = _number(header[124:136])
        if type_flag in (b"L", b"K", b"x", b"g"):
            if size > MAX_SPECIAL:
                raise TarFormatError(f"a {'PAX' if type_flag in (b'x', b'g') else 'GNU long name'} header of "
                                     f"{size} bytes (the limit of Go's archive/tar, which unpacks layers, is "
                                     f"{MAX_SPECIAL})")
            data = source.read(size)
            if len(data) < size:
                raise TarFormatError("truncated tar header")
            source.skip(-size % BLOCK)
            if type_flag == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif type_flag == b"K":
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif type_flag == b"x":
                pax = _pax_records(data)
            continue
        name = _cstr(header[0:100])
        if header[257:262] == b"ustar":
            prefix = _cstr(header[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        name = pax.get("path", long_name or name)
        linkname = ""
        if type_flag in (HARDLINK, SYMLINK):  # the only members whose target we need
            linkname = pax.get("linkpath", long_link or _cstr(header[157:257]))
        if "size" in pax:
            size = _pax_size(pax["size"])
        if name.endswith("/") and type_flag in (DIRECTORY, b"\0"):  # old tars mark dirs by the slash
            type_flag = DIRECTORY
            name = name.rstrip("/") or "/"
        elif type_flag == DIRECTORY:
            name = name.rstrip("/") or "/"
        member = Member(name, type_flag, size, linkname, source)
        long_name = long_link = None
        pax = {}
        yield member
        if member._reader is not None:
            member._reader.finish()
        elif not member._consumed and member.type not in (HARDLINK, SYMLINK, CHARDEV, DIRECTORY, b"4", b"6"):
            source.skip(size + (-size % BLOCK))


class MemberReader:
    """A member's bytes as a stream; finish() skips what was not read and the padding."""

    def __init__(self, source: _Source, size: int) -> None:
        self.source, self.left, self.pad = source, size, -size % BLOCK

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        count = self.left if size < 0 else min(size, self.left)
        data = self.source.read(count)
        if not data:
            raise TarFormatError("layer ends inside a file: truncated")
        self.left -= len(data)
        return data

    def skip(self, size: int) -> int:
        size = min(size, self.left)
        self.source.skip(size)
        self.left -= size
        return size

    def finish(self) -> None:
        self.source.skip(self.left + self.pad)
        self.left = self.pad = 0


def _read_up_to(raw: ByteStream, size: int) -> bytes:
    """`size` bytes unless the stream ends first: a socket may hand them out a few at a time."""
    data = raw.read(size)
    while data and len(data) < size:
        more = raw.read(size - len(data))
        if not more:
            break
        data += more
    return data


class _Prefixed:
    """A stream with bytes already read put back in front."""

    def __init__(self, head: bytes, rest: ByteStream) -> None:
        self.head, self.rest = head, rest

    def skip(self, size: int) -> int:
        taken = min(size, len(self.head))
        self.head = self.head[taken:]
        if size > taken and hasattr(self.rest, "skip"):
            return taken + self.rest.skip(size - taken)
        done = taken
        while done < size:
            data = self.rest.read(min(size - done, CHUNK))
            if not data:
                break
            done += len(data)
        return done

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head[:size] if size >= 0 else self.head, (
                self.head[size:] if size >= 0 else b"")
            if size < 0 or len(data) < size:
                more = self.rest.read(-1 if size < 0 else size - len(data))
                data += more
            return data
        return self.rest.read(size)
