"""The HTTP body reader under the export path: chunk framing stepped over, whatever the delivery."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kata_imagefix.image.sources.httpbody import HttpBody
from kata_imagefix.image.tarstream import TarFormatError


class Trickle(io.RawIOBase):
    """A connection that hands out at most `step` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.step, len(self.data) - self.at)
        buffer[:count] = self.data[self.at:self.at + count]
        self.at += count
        return count


def connection(wire: bytes, step: int) -> io.BufferedReader:
    return io.BufferedReader(Trickle(wire, step), 4096)


def chunked(payload: bytes, sizes: list[int], *, extension: bool = False, trailer: bool = False) -> bytes:
    out, at = [], 0
    for size in sizes:
        piece = payload[at:at + size]
        if not piece:
            break
        at += len(piece)
        out.append(f"{len(piece):x}{';name=value' if extension else ''}\r\n".encode() + piece + b"\r\n")
    if at < len(payload):
        rest = payload[at:]
        out.append(f"{len(rest):X}\r\n".encode() + rest + b"\r\n")
    out.append(b"0\r\n" + (b"X-Trailer: yes\r\n" if trailer else b"") + b"\r\n")
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.integers(1, 700), max_size=20),
       st.sampled_from([1, 3, 64, 10**6]),
       st.lists(st.tuples(st.booleans(), st.integers(0, 900)), max_size=30), st.booleans(), st.booleans())
def test_reads_and_skips_the_payload_exactly(payload, sizes, step, ops, extension, trailer):
    wire = chunked(payload, sizes, extension=extension, trailer=trailer)
    body = HttpBody(connection(wire + b"HTTP/1.1 200 OK\r\n", step), chunked=True)  # next response: untouched
    at, expected = 0, []
    got = []
    for is_read, count in ops:
        if is_read:
            got.append(body.read(count))
        else:
            got.append(body.skip(count))
        taken = min(count, len(payload) - at)
        expected.append(payload[at:at + taken] if is_read else taken)
        at += taken
    got.append(body.read())
    expected.append(payload[at:])
    assert got == expected
    assert body.read(10) == b"" and body.skip(10) == 0  # at the end: stays at the end, no blocking read


def test_length_delimited_and_unframed_bodies():
    body = HttpBody(connection(b"abcdefTRAILING", 2), chunked=False, length=6)
    assert body.read(4) == b"abcd" and body.read() == b"ef"
    body = HttpBody(connection(b"until the connection closes", 5), chunked=False)
    assert body.skip(6) == 6 and body.read() == b"the connection closes"


@pytest.mark.parametrize("wire", [
    b"5\r\nabc",  # the connection drops inside a chunk
    b"5\r\nabcde\r\n",  # ... before the terminating chunk
    b"zz\r\nabc\r\n0\r\n\r\n",  # not a chunk size
    b"3\r\nabcXX3\r\ndef\r\n0\r\n\r\n",  # no CRLF after a chunk
])
def test_broken_framing_is_one_error(wire):
    with pytest.raises(TarFormatError, match="export stream"):
        HttpBody(connection(wire, 3), chunked=True).read()
