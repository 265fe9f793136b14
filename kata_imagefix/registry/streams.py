"""Bounded transfers: every answer under a stall limit and a deadline, blobs checked against their digest.

Why a watchdog thread and not only socket timeouts: a timeout bounds each read,
not a server that drips a byte just inside it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time

import msgspec

from .digesting import BackgroundDigest
from .errors import RegistryError, reason


class TransferLimits(msgspec.Struct, frozen=True):
    """When a blob transfer is given up: a stall (under `stall_bytes` in `stall_seconds` while bytes
    are still due), or past its deadline (`deadline_seconds` plus the expected size at `rate`)."""

    stall_seconds: float = 30.0
    stall_bytes: int = 64 * 2**10
    deadline_seconds: float = 60.0
    rate: float = 1e6  # bytes per second the deadline allows for the expected size



class Stats(msgspec.Struct):
    """Requests and body bytes of one image's reads (shared by the threads that read its layers)."""

    requests: int = 0
    bytes: int = 0  # response body bytes received
    by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    lock: threading.Lock = msgspec.field(default_factory=threading.Lock)

    def count(self, kind: str) -> None:
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def received(self, count: int) -> None:
        with self.lock:
            self.bytes += count


def answer(conn: http.client.HTTPConnection, where: str, limits: TransferLimits) -> http.client.HTTPResponse:
    """The response line and headers, which must come within the stall limit: the socket timeout
    bounds each read, not a server that drips a byte just inside it."""
    sock = conn.sock  # the response keeps it when the connection lets go (HTTP/1.0, Connection: close)
    with Watchdog(sock, limits, headers=True) as watch:
        try:
            response = conn.getresponse()
            response.watched_socket = sock  # type: ignore[attr-defined]
            return response
        except (OSError, http.client.HTTPException):
            if watch.reason:
                raise RegistryError(f"{where}: {watch.reason}") from None
            raise


def read_watched(response: http.client.HTTPResponse, limit: int, what: str, where: str,
                 limits: TransferLimits, timeout: float) -> bytes:
    """Up to `limit` bytes of a (non-blob) body, given up at a stall or past the deadline; a
    broken chunked encoding is an error of the registry, not of imagefix."""
    parts: list[bytes] = []
    got = 0
    with Watchdog(getattr(response, "watched_socket", None), limits, size=limit) as watch:
        try:
            while got < limit:
                chunk = response.read1(min(limit - got, 1 << 16))
                if not chunk:
                    break
                watch.seen += len(chunk)
                parts.append(chunk)
                got += len(chunk)
            if response.length == 0 and not response.isclosed():
                response.read()  # read1 leaves a finished body open: read() marks it done
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if watch.reason:
                raise RegistryError(f"{where}: {what} {watch.reason}") from None
            if isinstance(exc, TimeoutError):
                raise RegistryError(f"{where} stopped sending {what} (timed out after "
                                    f"{timeout:g} s)") from None
            raise RegistryError(f"{where}: {what} broke off: {reason(exc)}") from None
    if watch.reason:
        raise RegistryError(f"{where}: {what} {watch.reason}")
    return b"".join(parts)


class Watchdog:
    """Cuts a connection that stalls (under `stall_bytes` counted in `seen` within `stall_seconds`;
    an answer's headers must all come within that time) or runs past its deadline; a blocked read
    then ends at once, and `reason` says why."""

    def __init__(self, sock: socket.socket | None, limits: TransferLimits, *, size: int = 0,
                 headers: bool = False) -> None:
        self.sock, self.limits, self.headers = sock, limits, headers
        self.started = time.monotonic()
        self.deadline = self.started + limits.deadline_seconds + size / limits.rate
        self.seen = 0
        self.reason = ""
        self._stop = threading.Event()

    def _watch(self) -> None:
        while True:
            before = self.seen
            if self._stop.wait(max(min(self.limits.stall_seconds, self.deadline - time.monotonic()), 0)):
                return
            if time.monotonic() >= self.deadline:
                self.reason = (f"took longer than {self.deadline - self.started:.0f} s "
                               "(transfer deadline; gave up)")
            elif self.headers:
                self.reason = f"stalled: no complete answer within {self.limits.stall_seconds:g} s"
            elif self.seen - before < self.limits.stall_bytes:
                self.reason = (f"stalled: {self.seen - before} bytes in {self.limits.stall_seconds:g} s "
                               f"(under {self.limits.stall_bytes // 1024} KiB)")
            else:
                continue
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
            return

    def __enter__(self) -> Watchdog:
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()



class VerifyingStream:
    """A blob body that hashes what passes through and refuses a mismatch at the end.

    Closing early drains the rest so that the digest is still checked - but
    never more than one byte past the size the descriptor names, never at a
    trickle, and never past the transfer's deadline.
    """

    def __init__(self, response: http.client.HTTPResponse, digest: str, where: str, stats: Stats, *,
                 size: int | None = None, limits: TransferLimits | None = None) -> None:
        self.response = response
        self.digest = digest
        self.where = where
        self.stats = stats
        self.size = size
        self.limits = limits or TransferLimits()
        algorithm, _, self.expected = digest.partition(":")
        self.hash = BackgroundDigest(algorithm if algorithm in ("sha256", "sha512") else "sha256")
        self.done = False
        self.received = 0
        now = self.started = time.monotonic()
        self.deadline = now + self.limits.deadline_seconds + (size or 0) / self.limits.rate
        self.window = (now, 0)  # (start, bytes received since)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        if self.done or not size:
            return b""
        want = min(size, 1 << 20)
        if self.size is not None:  # never more than one byte past what the descriptor names
            want = min(want, max(self.size - self.received + 1, 1))
        parts, got = [], 0
        while got < want:  # read1 returns what the socket buffer holds (~8 kB): gather up to `want`
            try:
                chunk = self.response.read1(want - got)
            except TimeoutError:
                raise RegistryError(f"{self.where}: blob {self.digest} stalled (timed out)") from None
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryError(f"{self.where}: blob {self.digest} broke off: {reason(exc)}") from None
            if not chunk:
                self.response.close()  # at the end: frees the connection for the next request
                break
            parts.append(chunk)
            got += len(chunk)
            self._pace(len(chunk))  # a trickle cannot keep this loop waiting past the stall limit
        data = b"".join(parts) if len(parts) != 1 else parts[0]
        self.stats.received(len(data))
        self.received += len(data)
        if self.size is not None and self.received > self.size:
            self._abandon()
            raise RegistryError(f"{self.where}: blob {self.digest} sends more than the {self.size} bytes its "
                                "descriptor names (refused)")
        if data:
            self.hash.update(data)
        else:
            self._finish()
        return data

    def _pace(self, count: int) -> None:
        now = time.monotonic()
        if now > self.deadline:
            self._abandon()
            raise RegistryError(f"{self.where}: blob {self.digest} took longer than "
                                f"{self.deadline - self.started:.0f} s (transfer deadline; gave up)")
        start, seen = self.window
        seen += count
        if now - start >= self.limits.stall_seconds:
            if seen < self.limits.stall_bytes:
                self._abandon()
                raise RegistryError(f"{self.where}: blob {self.digest} stalled: {seen} bytes in "
                                    f"{now - start:.0f} s (under {self.limits.stall_bytes // 1024} KiB)")
            start, seen = now, 0
        self.window = (start, seen)

    def _abandon(self) -> None:
        self.done = True
        self.hash.abandon()
        self.response.close()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self.hash.hexdigest() != self.expected:
            raise RegistryError(f"{self.where}: blob {self.digest} does not match its digest (refused)")

    def close(self) -> None:
        if not self.done:
            while self.read(1 << 20):
                pass
            self._finish()

    def __enter__(self) -> VerifyingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.hash.abandon()
            self.response.close()
