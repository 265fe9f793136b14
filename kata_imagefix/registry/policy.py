"""When a request is tried again and where a redirect may go: one object, the client's only source.

As go-containerregistry's transport: 429 and 5xx answers and resets are retried with
backoff (a `Retry-After` the server sends is honoured up to a cap), refused
connections, unknown names and TLS failures are not (they will not change), and
redirects are followed up to Go's limit, never from TLS down to plain HTTP except
where plain HTTP is allowed.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable

import msgspec

from .errors import RegistryError


class RetryPolicy(msgspec.Struct, frozen=True):
    retries: int = 3
    statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_redirects: int = 10  # as Go's HTTP client

    def backoff(self, attempt: int) -> float:
        return self.base_delay * 2**attempt

    def after_status(self, status: int, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait before asking again, or None: the answer stands."""
        if status not in self.statuses or attempt >= self.retries:
            return None
        return min(_retry_after(retry_after) or self.backoff(attempt + 1), self.max_delay)

    def after_error(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before connecting again, or None: the failure stands."""
        deterministic = isinstance(exc, (socket.gaierror, ConnectionRefusedError, ssl.SSLError))
        if attempt >= self.retries or deterministic:
            return None
        return self.backoff(attempt + 1)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def redirect(self, host: str, base: str, location: str, redirects: int,
                 plain_ok: Callable[[str], bool]) -> urllib.parse.SplitResult:
        """Where a redirect from `base` (a URL on `host`) goes, or a refusal. `plain_ok(netloc)` says
        whether plain HTTP may be used to that host."""
        if redirects > self.max_redirects:
            raise RegistryError(f"{host}: more than {self.max_redirects} redirects for "
                                f"{urllib.parse.urlsplit(base).path}")
        parsed = urllib.parse.urlsplit(urllib.parse.urljoin(base, location))
        plain = parsed.scheme == "http"
        if parsed.scheme not in ("https", "http") or (plain and not plain_ok(parsed.netloc)):
            raise RegistryError(f"{host}: refusing a redirect to {parsed.scheme}://{parsed.netloc} "
                                "(plain HTTP is only for loopback or --insecure-registry)")
        return parsed


REDIRECTS = (301, 302, 303, 307, 308)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, or None: `nan`, `inf`, negative or unreadable values count as absent."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None
