"""One registry host's connection and the request loop: auth, retries and redirects, each delegated
(tokens.py, policy.py), connections and trust from the session (session.py, tls.py)."""

from __future__ import annotations

import http.client
import ssl
from typing import TYPE_CHECKING, BinaryIO

from .errors import RegistryError, reason
from .policy import REDIRECTS, RetryPolicy
from .session import Session, default_session
from .streams import Stats, TransferLimits, answer, read_watched
from .tls import is_loopback, probe_context
from .tokens import Authenticator

if TYPE_CHECKING:
    from .auth import Credentials

MAX_ERROR_BODY = 8 * 2**10  # an error or empty-success body is never read whole (a 1 GiB 404 body)
MAX_TOKEN = 4 * 2**20
DEFAULT_TIMEOUT = 30.0
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Transport:
    """One registry host; safe for one thread (make one per reference, or `sibling()` it)."""

    def __init__(self, host: str, *, insecure: tuple[str, ...] = (), credentials: Credentials | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = 3, limits: TransferLimits | None = None,
                 session: Session | None = None, policy: RetryPolicy | None = None) -> None:
        self.host = host
        self.limits = limits or TransferLimits()
        self.timeout = timeout
        self.policy = policy or RetryPolicy(retries=retries)
        self.session = session or default_session()
        self.insecure = tuple(insecure)
        self.allow_http = self.plain_http_allowed(host)
        self.auth = Authenticator(host, credentials, self.session)
        self.scheme = "https"
        self._conn: http.client.HTTPConnection | None = None
        self._reused = False  # the connection came from the idle pool (the server may have closed it)
        self._last: http.client.HTTPResponse | None = None
        self.stats = Stats()

    @property
    def retries(self) -> int:
        return self.policy.retries

    def plain_http_allowed(self, host: str) -> bool:
        """Plain HTTP is decided per host: loopback, or a host named with --insecure-registry.
        A registry that may use it does not make its token realm or redirects trusted."""
        return is_loopback(host) or host in self.insecure

    def credentials(self) -> Credentials | None:
        return self.auth.credentials()

    # --- the connection ---------------------------------------------------------------------
    def _scheme(self) -> str:
        with self.session.lock:
            scheme = self.session.schemes.get(self.host)
        if scheme is not None:
            return scheme
        scheme = "https"
        if self.allow_http:
            try:
                probe = http.client.HTTPSConnection(self.host, timeout=self.timeout, context=probe_context())
                probe.connect()
                probe.close()
            except (ssl.SSLError, ConnectionResetError):
                scheme = "http"  # a plain-HTTP registry on loopback / --insecure-registry
            except OSError as exc:
                raise RegistryError(f"cannot connect to {self.host}: {exc.strerror or exc}") from None
        with self.session.lock:
            self.session.schemes[self.host] = scheme
        return scheme

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        self.scheme = self._scheme()
        pooled = None if fresh else self.session.take_idle(self._pool_key())
        self._reused = pooled is not None
        self._conn = pooled or self.session.connect(self.scheme, self.host, self.timeout)
        return self._conn

    def _pool_key(self) -> tuple:
        return self.session.pool_key(self.scheme, self.host, self.timeout)

    def release(self) -> None:
        """Done for now: the connection goes back to the idle pool when its last response was read to
        the end (a body left unread or a `Connection: close` drops it), for the next client."""
        conn, last = self._conn, self._last
        self._conn, self._last = None, None
        if conn is None:
            return
        clean = last is None or (last.isclosed() and last.length == 0 and not last.will_close)
        if clean and conn.sock is not None and self.session.keep_idle(self._pool_key(), conn):
            return
        conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def discard(self, response: http.client.HTTPResponse) -> None:
        """Skip a body nobody needs: a few kB at most; a longer one drops the connection instead."""
        self.read_body(response, MAX_ERROR_BODY, "an error body")
        if not response.isclosed():
            response.close()
            self.close()

    def read_body(self, response: http.client.HTTPResponse, limit: int, what: str, *,
                  where: str | None = None) -> bytes:
        return read_watched(response, limit, what, where or self.host, self.limits, self.timeout)

    # --- requests ---------------------------------------------------------------------------
    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None, scope: str = "", kind: str = "api",
                redirects: int = 0) -> http.client.HTTPResponse:
        """Send with auth, retries (429/5xx, resets, with backoff) and redirects to blob storage."""
        attempt = 0
        authenticated = False
        fresh = False
        while True:
            conn = self._connection(fresh)
            send = {"User-Agent": "imagefix", **(headers or {})}
            if self.auth.header:
                send["Authorization"] = self.auth.header
            try:
                if hasattr(body, "seek"):
                    body.seek(0)  # type: ignore[union-attr]
                conn.request(method, path, body=body, headers=send)
                response = answer(conn, f"{self.host}: {kind} {path.split('?')[0]}", self.limits)
                self.stats.count(kind)
            except RegistryError:
                self.close()
                raise
            except TimeoutError:
                self.close()
                raise RegistryError(f"{self.host} did not answer within {self.timeout:g} s") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                reused = self._reused
                self.close()
                if reused and isinstance(exc, STALE) and method in ("GET", "HEAD") and not fresh:
                    fresh = True  # an idle connection the server had closed: once more on a new one
                    continue
                delay = self.policy.after_error(exc, attempt)
                if delay is not None:
                    attempt += 1
                    self.policy.wait(delay)
                    continue
                hint = _tls_hint(exc, self.host) if isinstance(exc, ssl.SSLError) else ""
                raise RegistryError(f"{self.host}: connection failed: {reason(exc)}{hint}") from None
            self._last = response
            if response.status in (401, 403):
                self.discard(response)
                if response.status == 401 and not authenticated:
                    authenticated = True
                    from .auth import parse_challenge  # a registry that asks: most local ones never do

                    challenge = parse_challenge(response.getheader("WWW-Authenticate", ""))
                    if self.auth.answer(challenge, scope, self.plain_http_allowed, self._get_elsewhere):
                        continue
                who = "without credentials" if self.credentials() is None else "with the credentials given"
                raise RegistryError(f"{self.host}: access denied {who} (HTTP {response.status})",
                                    response.status)
            delay = self.policy.after_status(response.status, attempt, response.getheader("Retry-After"))
            if delay is not None:
                self.discard(response)
                attempt += 1
                self.policy.wait(delay)
                continue
            if response.status in REDIRECTS and response.getheader("Location"):
                self.discard(response)
                return self._follow(response.getheader("Location") or "", path, kind, redirects + 1,
                                    keep={k: v for k, v in (headers or {}).items() if k == "Range"})
            return response

    def _follow(self, location: str, origin: str, kind: str, redirects: int,
                keep: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """Blob storage redirect: a fresh connection (trusted as tls.py says for that host), no registry
        credentials sent along."""
        parsed = self.policy.redirect(self.host, f"{self.scheme}://{self.host}{origin}", location, redirects,
                                      self.plain_http_allowed)
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
        if parsed.netloc == self.host:
            return self.request("GET", path, kind=kind, redirects=redirects, headers=keep)
        where = f"{self.host}: blob storage {parsed.netloc}"
        conn = self.session.connect(parsed.scheme, parsed.netloc, self.timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": "imagefix", **(keep or {})})
            self.stats.count(kind)
            return answer(conn, where, self.limits)
        except (OSError, http.client.HTTPException) as exc:
            hint = _tls_hint(exc, parsed.netloc) if isinstance(exc, ssl.SSLError) else ""
            raise RegistryError(f"{where} failed: {reason(exc)}{hint}") from None

    def _get_elsewhere(self, scheme: str, host: str, path: str, headers: dict[str, str],
                       where: str) -> tuple[int, bytes]:
        """One GET to another host (a token service) on a connection of its own: (status, body)."""
        conn = self.session.connect(scheme, host, self.timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": "imagefix", **headers})
            response = answer(conn, where, self.limits)
            body = self.read_body(response, MAX_TOKEN, "its token", where=where)
            self.stats.count("token")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise RegistryError(f"{where} failed: {reason(exc)}") from None
        finally:
            conn.close()
        return response.status, body


def _tls_hint(exc: ssl.SSLError, host: str) -> str:
    """What to do about a TLS failure, for the one line."""
    text = str(exc).upper()
    if "WRONG_VERSION_NUMBER" in text:
        return (f" - it answers in plain HTTP, not TLS; if you trust the network to it, "
                f"say --insecure-registry {host}")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f" - its CA goes in certs.d/{host}/ca.crt, or in hosts.toml's ca for a mirror"
    if "BAD_CERTIFICATE" in text or "CERTIFICATE_REQUIRED" in text:
        return (f" - it wants a client certificate: certs.d/{host}/client.cert and client.key, or "
                "hosts.toml's client for a mirror")
    return ""
