"""An HTTP response body read straight off the connection, with a skip() that copies nothing.

Why: `docker save` arrives as a chunked body in ~32 kB HTTP chunks (31k of them
per GB). Iterating it through requests/urllib3 costs a Python round per chunk
and a fresh bytes object for every byte; on a 2-core host that CPU is taken
from the engine that is producing the stream. Here the connection's buffered
reader fills one reusable buffer a megabyte at a time, the chunk framing is
stepped over in place, and file contents the tar walker does not want are
skipped without ever becoming Python objects.
"""

from __future__ import annotations

import io
import re

from ..tarstream import TarFormatError

BUFFER = 1 << 20
_FIRST = re.compile(rb"([0-9a-fA-F]{1,16})[^\r\n]*\r\n")  # chunk-size [; extensions] CRLF
_NEXT = re.compile(rb"\r\n([0-9a-fA-F]{1,16})[^\r\n]*\r\n")  # the CRLF closing the previous chunk first


class HttpBody:
    """read(n) / skip(n) over a chunked (or plain, length-delimited) HTTP body."""

    def __init__(self, fp: io.BufferedIOBase, *, chunked: bool, length: int | None = None) -> None:
        self.fp = fp  # the connection's buffered reader, positioned at the first body byte
        self.chunked = chunked
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.pos = self.end = 0
        # payload bytes left in the current HTTP chunk (or in the whole body when not chunked)
        self.left = 0 if chunked else (length if length is not None else -1)
        self.first_chunk = True
        self.finished = False

    def _fill(self) -> bool:
        """More bytes from the connection at the end of the buffer; False at the end of the stream."""
        if self.pos == self.end:
            self.pos = self.end = 0
        elif self.end == len(self.buf):  # keep the unread tail, make room after it
            tail = self.end - self.pos
            self.buf[:tail] = self.buf[self.pos:self.end]
            self.pos, self.end = 0, tail
        count = self.fp.readinto1(self.view[self.end:])  # one read: never wait for a full buffer
        if not count:
            return False
        self.end += count
        return True

    def _line(self) -> bytes:
        while True:
            cut = self.buf.find(b"\r\n", self.pos, self.end)
            if cut >= 0:
                line = bytes(self.buf[self.pos:cut])
                self.pos = cut + 2
                return line
            if self.end - self.pos > 4096 or not self._fill():
                raise TarFormatError("the engine's export stream broke off (bad chunk framing)")

    def _next_chunk(self) -> bool:
        """Step over the framing to the next chunk's payload; False at the terminating chunk."""
        while True:  # the common case in one regex call: CRLF ending the last chunk, the next size line
            found = (_FIRST if self.first_chunk else _NEXT).match(self.buf, self.pos, self.end)
            if found or self.end - self.pos > 4096 or not self._fill():
                break
        if not found:
            raise TarFormatError("the engine's export stream broke off (bad chunk framing)")
        self.first_chunk = False
        self.pos = found.end()
        size = int(found.group(1), 16)
        if size == 0:
            while self._line():  # trailers, up to the blank line
                pass
            self.finished = True
            return False
        self.left = size
        return True

    def _available(self, wanted: int) -> int:
        """How many payload bytes (up to `wanted`) sit in the buffer at `pos`; 0 at the end."""
        if self.left == 0 and (self.finished or not self.chunked or not self._next_chunk()):
            self.finished = True
            return 0
        if self.pos == self.end and not self._fill():
            if self.left > 0 or self.chunked:
                raise TarFormatError("the engine's export stream ended early (truncated)")
            self.finished = True  # an unframed body without a length ends with the connection
            return 0
        room = self.end - self.pos
        return min(wanted, room) if self.left < 0 else min(wanted, room, self.left)

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size if size >= 0 else 1 << 62
        while wanted:
            count = self._available(wanted)
            if not count:
                break
            parts.append(bytes(self.view[self.pos:self.pos + count]))
            self.pos += count
            if self.left > 0:
                self.left -= count
            wanted -= count
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def skip(self, size: int) -> int:
        done = 0
        while done < size:
            count = self._available(size - done)
            if not count:
                break
            self.pos += count
            if self.left > 0:
                self.left -= count
            done += count
        return done
