"""A small OCI distribution (Docker Registry HTTP API v2) client on http.client.

Why not requests/docker-py here: start-up time. A registry scan should cost
about what `skopeo inspect` costs, so this path imports only http.client, ssl
and json. Every manifest and blob is checked against its digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import ImagefixError
from ..image.documents import image_manifest, load_json
from ..image.reference import checked_digest
from .auth import Challenge, Credentials, credentials_for, parse_challenge
from .digesting import BackgroundDigest

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
MAX_MANIFEST = 4 * 2**20
MAX_ERROR_BODY = 8 * 2**10  # an error or empty-success body is never read whole (a 1 GiB 404 body)
MAX_REDIRECTS = 10  # as Go's HTTP client
RETRY_STATUS = (429, 500, 502, 503, 504)
DEFAULT_TIMEOUT = 30.0


class RegistryError(ImagefixError):
    """A registry's refusal or failure; `status` is the HTTP status that ended it (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(RegistryError):
    """HTTP 404: the registry says the tag, digest or blob is not there."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, status)


def api_host(domain: str) -> str:
    return "registry-1.docker.io" if domain == "docker.io" else domain


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def certs_dir() -> Path:
    """Where Docker keeps per-registry CAs (`certs.d/HOST:PORT/ca.crt`)."""
    return Path(os.environ.get("IMAGEFIX_CERTS_DIR") or "/etc/docker/certs.d")


_scheme_cache: dict[str, str] = {}
_token_cache: dict[tuple, str] = {}
_cache_lock = threading.Lock()
_stats_lock = threading.Lock()
# Kept-alive connections clients have released, per (scheme, host, timeout, trust): a fleet audit opens
# one client per image (each with its own transfer counts) without a handshake per image.
_idle: dict[tuple, list[http.client.HTTPConnection]] = {}
MAX_IDLE = 64  # as many as --jobs allows: each worker keeps its own
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class Stats:
    requests: int = 0
    bytes: int = 0  # response body bytes received
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        with _stats_lock:  # layer sizes are read by several threads into one image's counts
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


class RegistryClient:
    """One registry host; safe for one thread (make one per reference)."""

    def __init__(self, host: str, *, insecure: tuple[str, ...] = (), credentials: Credentials | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = 3,
                 limits: TransferLimits | None = None) -> None:
        self.host = host
        self.limits = limits or TransferLimits()
        self.timeout = timeout
        self.retries = retries
        self.insecure = tuple(insecure)
        self.allow_http = self.plain_http_allowed(host)
        self._explicit = credentials
        self._credentials: Credentials | bool | None = False  # False: not looked up yet
        self._conn: http.client.HTTPConnection | None = None
        self._reused = False  # the connection came from the idle pool (the server may have closed it)
        self._last: http.client.HTTPResponse | None = None
        self._auth_header: str | None = None
        self.stats = Stats()

    def plain_http_allowed(self, host: str) -> bool:
        """Plain HTTP is decided per host: loopback, or a host named with --insecure-registry.
        A registry that may use it does not make its token realm or redirects trusted."""
        return is_loopback(host) or host in self.insecure

    # --- connections ------------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca = certs_dir() / self.host / "ca.crt"
        if ca.is_file():
            context.load_verify_locations(cafile=str(ca))
        return context

    def _connect(self, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(self.host, timeout=self.timeout, context=self._tls_context())
        return http.client.HTTPConnection(self.host, timeout=self.timeout)

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        scheme = _scheme_cache.get(self.host)
        if scheme is None:
            scheme = "https"
            if self.allow_http:
                try:
                    # Only asks "does it speak TLS?": no CA bundle to load, nothing is sent.
                    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    bare.check_hostname = False
                    bare.verify_mode = ssl.CERT_NONE
                    probe = http.client.HTTPSConnection(self.host, timeout=self.timeout, context=bare)
                    probe.connect()
                    probe.close()
                except (ssl.SSLError, ConnectionResetError):
                    scheme = "http"  # a plain-HTTP registry on loopback / --insecure-registry
                except OSError as exc:
                    raise RegistryError(f"cannot connect to {self.host}: {exc.strerror or exc}") from None
            with _cache_lock:
                _scheme_cache[self.host] = scheme
        self.scheme = scheme
        pooled = None
        if not fresh:
            with _cache_lock:
                idle = _idle.get(self._pool_key(scheme))
                pooled = idle.pop() if idle else None
        self._reused = pooled is not None
        self._conn = pooled or self._connect(scheme)
        return self._conn

    def _pool_key(self, scheme: str) -> tuple:
        """A connection is only shared between clients that would have verified it the same way."""
        trust: tuple[str, int, int] | str | None = None
        if scheme == "https":
            ca = certs_dir() / self.host / "ca.crt"
            with contextlib.suppress(OSError):
                status = ca.stat()
                trust = (str(ca), status.st_mtime_ns, status.st_size)
            trust = trust or str(ca)
        return scheme, self.host, self.timeout, trust

    def release(self) -> None:
        """Done for now: the connection goes back to the idle pool when its last response was read to
        the end (a body left unread or a `Connection: close` drops it), for the next client."""
        conn, last = self._conn, self._last
        self._conn, self._last = None, None
        if conn is None:
            return
        clean = last is None or (last.isclosed() and last.length == 0 and not last.will_close)
        if clean and conn.sock is not None:
            with _cache_lock:
                idle = _idle.setdefault(self._pool_key(self.scheme), [])
                if len(idle) < MAX_IDLE:
                    idle.append(conn)
                    return
        conn.close()

    def _discard(self, response: http.client.HTTPResponse) -> None:
        """Skip a body nobody needs: a few kB at most; a longer one drops the connection instead."""
        self._read_watched(response, MAX_ERROR_BODY, "an error body")
        if not response.isclosed():
            response.close()
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- auth -------------------------------------------------------------------------------
    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = credentials_for(self.host, self._explicit)
        return self._credentials  # type: ignore[return-value]

    def _authenticate(self, challenge: Challenge | None, scope: str) -> bool:
        """Answer a 401; False when there is nothing more to try."""
        if challenge is None:
            return False
        creds = self.credentials()
        if challenge.scheme == "basic":
            if creds is None or self._auth_header == creds.basic():
                return False
            self._auth_header = creds.basic()
            return True
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return False
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        scope = challenge.params.get("scope", scope)
        key = (realm, service, scope, creds.username if creds else None)
        with _cache_lock:
            cached = _token_cache.get(key)
        if cached and self._auth_header != f"Bearer {cached}":
            self._auth_header = f"Bearer {cached}"
            return True
        token = self._fetch_token(realm, service, scope, creds)
        with _cache_lock:
            _token_cache[key] = token
        if self._auth_header == f"Bearer {token}":
            return False
        self._auth_header = f"Bearer {token}"
        return True

    def _fetch_token(self, realm: str, service: str, scope: str, creds: Credentials | None) -> str:
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("https", "http") or (parsed.scheme == "http" and
                                                        not self.plain_http_allowed(parsed.netloc)):
            raise RegistryError(f"{self.host}: refusing token realm {parsed.scheme}://{parsed.netloc}: "
                                "credentials go over plain HTTP only to loopback or an --insecure-registry "
                                "host")
        own = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)  # the realm's own query stays
        query = urllib.parse.urlencode(own + [(k, v) for k, v in (("service", service), ("scope", scope))
                                              if v])
        path = (parsed.path or "/") + ("?" + query if query else "")
        host = parsed.netloc
        if parsed.scheme == "https":
            context = ssl.create_default_context()
            ca = certs_dir() / host / "ca.crt"
            if ca.is_file():
                context.load_verify_locations(cafile=str(ca))
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, timeout=self.timeout,
                                                                           context=context)
        else:
            conn = http.client.HTTPConnection(host, timeout=self.timeout)
        headers = {"User-Agent": "imagefix"}
        if creds is not None:
            headers["Authorization"] = creds.basic()
        where = f"{self.host}: token service {host}"
        try:
            conn.request("GET", path, headers=headers)
            response = self._answer(conn, where)
            body = self._read_watched(response, MAX_MANIFEST, "its token", where=where)
            self.stats.count("token")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise RegistryError(f"{where} failed: {_reason(exc)}") from None
        finally:
            conn.close()
        if response.status in (401, 403):
            who = f"as {creds.username}" if creds else "anonymously"
            raise RegistryError(f"{self.host}: authentication {who} was refused by {host}", response.status)
        if response.status != 200:
            raise RegistryError(f"{self.host}: token service {host} answered HTTP {response.status}",
                                response.status)
        return _token_of(body, where)

    # --- requests ---------------------------------------------------------------------------
    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None, scope: str = "", kind: str = "api",
                stream: bool = False, redirects: int = 0) -> http.client.HTTPResponse:
        """Send with auth, retries (429/5xx, resets, with backoff) and redirects to blob storage."""
        attempt = 0
        authenticated = False
        fresh = False
        while True:
            conn = self._connection(fresh)
            send = {"User-Agent": "imagefix", **(headers or {})}
            if self._auth_header:
                send["Authorization"] = self._auth_header
            try:
                if hasattr(body, "seek"):
                    body.seek(0)  # type: ignore[union-attr]
                conn.request(method, path, body=body, headers=send)
                response = self._answer(conn, f"{self.host}: {kind} {path.split('?')[0]}")
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
                deterministic = isinstance(exc, (socket.gaierror, ConnectionRefusedError, ssl.SSLError))
                if attempt < self.retries and not deterministic:
                    attempt += 1
                    time.sleep(0.2 * 2**attempt)
                    continue
                hint = ""
                if isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc).upper():
                    hint = (f" - it answers in plain HTTP, not TLS; if you trust the network to it, "
                            f"say --insecure-registry {self.host}")
                raise RegistryError(f"{self.host}: connection failed: {_reason(exc)}{hint}") from None
            self._last = response
            if response.status in (401, 403):
                self._discard(response)
                if response.status == 401 and not authenticated:
                    authenticated = True
                    challenge = parse_challenge(response.getheader("WWW-Authenticate", ""))
                    if self._authenticate(challenge, scope):
                        continue
                who = "without credentials" if self.credentials() is None else "with the credentials given"
                raise RegistryError(f"{self.host}: access denied {who} (HTTP {response.status})",
                                    response.status)
            if response.status in RETRY_STATUS and attempt < self.retries:
                self._discard(response)
                attempt += 1
                delay = _retry_after(response.getheader("Retry-After")) or 0.2 * 2**attempt
                time.sleep(min(delay, 10))
                continue
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                self._discard(response)
                if redirects >= MAX_REDIRECTS:
                    raise RegistryError(f"{self.host}: more than {MAX_REDIRECTS} redirects for {path}")
                return self._follow(location, path, kind, redirects + 1,
                                    keep={k: v for k, v in (headers or {}).items() if k == "Range"})
            return response

    def _follow(self, location: str, origin: str, kind: str, redirects: int,
                keep: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """Blob storage redirect: a fresh connection, no registry credentials sent along."""
        target = urllib.parse.urljoin(f"{self.scheme}://{self.host}{origin}", location)
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme not in ("https", "http") or (parsed.scheme == "http" and
                                                        not self.plain_http_allowed(parsed.netloc)):
            raise RegistryError(f"{self.host}: refusing a redirect to {parsed.scheme}://{parsed.netloc} "
                                "(plain HTTP is only for loopback or --insecure-registry)")
        if parsed.netloc == self.host:
            return self.request("GET", parsed.path + ("?" + parsed.query if parsed.query else ""), kind=kind,
                                redirects=redirects, headers=keep)
        conn: http.client.HTTPConnection
        if parsed.scheme == "https":
            conn = http.client.HTTPSConnection(parsed.netloc, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parsed.netloc, timeout=self.timeout)
        try:
            conn.request("GET", parsed.path + ("?" + parsed.query if parsed.query else ""),
                         headers={"User-Agent": "imagefix", **(keep or {})})
            self.stats.count(kind)
            return self._answer(conn, f"{self.host}: blob storage {parsed.netloc}")
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"{self.host}: blob storage {parsed.netloc} failed: {_reason(exc)}") from None

    # --- the API ----------------------------------------------------------------------------
    def manifest(self, repository: str, reference: str) -> tuple[dict, str, bytes]:
        """(manifest, digest, raw bytes); the digest is checked against the body."""
        if ":" in reference:  # a digest from an index or the user: checked before it goes into the URL
            checked_digest(reference, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}",
                                headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                scope=f"repository:{repository}:pull", kind="manifest")
        if response.status == 404:
            self._discard(response)
            raise NotFound(f"{self.host}/{repository}: no manifest {reference} (tag or digest unknown)")
        body = self._body(response, f"manifest {reference}", MAX_MANIFEST)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = (reference if reference.startswith("sha256:")
                    else response.getheader("Docker-Content-Digest"))
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(f"{self.host}/{repository}: manifest {reference} does not match its digest "
                                f"{expected} (refused)")
        self.stats.bytes += len(body)
        where = f"{self.host}/{repository}: manifest {reference}"
        return image_manifest(load_json(body, where), where), digest, body

    def blob(self, repository: str, digest: str, limit: int = 64 * 2**20, size: int | None = None) -> bytes:
        with self.open_blob(repository, digest, size) as stream:
            parts: list[bytes] = []
            received = 0
            while chunk := stream.read(1 << 20):
                parts.append(chunk)
                received += len(chunk)
                if received > limit:
                    raise RegistryError(f"{self.host}/{repository}: blob {digest} is larger than expected")
        return b"".join(parts)

    def open_blob(self, repository: str, digest: str, size: int | None = None) -> VerifyingStream:
        checked_digest(digest, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}",
                                scope=f"repository:{repository}:pull", kind="blob")
        if response.status == 404:
            self._discard(response)
            raise NotFound(f"{self.host}/{repository}: blob {digest} is missing (deleted from the registry?)")
        if response.status != 200:
            self._discard(response)
            raise RegistryError(f"{self.host}/{repository}: blob {digest}: HTTP {response.status}",
                                response.status)
        return VerifyingStream(response, digest, f"{self.host}/{repository}", self.stats, size=size,
                               limits=self.limits)

    def blob_range(self, repository: str, digest: str, byte_range: str, length: int) -> bytes | None:
        """`length` bytes of a blob named by an HTTP `Range` (`bytes=-4096`, `bytes=0-17`), or None when
        the registry will not serve them: a 200 (the whole blob) is closed unread, its connection dropped.
        The bytes are not checked against the digest (only a whole blob can be): callers judge them."""
        checked_digest(digest, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", headers={"Range": byte_range},
                                scope=f"repository:{repository}:pull", kind="blob-range")
        if response.status == 200:
            response.close()  # never read a whole layer for its last bytes
            self.close()
            return None
        if response.status != 206:
            self._discard(response)
            if response.status == 404:
                raise NotFound(f"{self.host}/{repository}: blob {digest} is missing")
            raise RegistryError(f"{self.host}/{repository}: blob {digest} range: HTTP {response.status}",
                                response.status)
        try:
            body = response.read(length + 1)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RegistryError(f"{self.host}/{repository}: blob {digest} range broke off: {_reason(exc)}") \
                from None
        if len(body) != length or not response.isclosed() or \
                not _range_is(response.getheader("Content-Range", ""), byte_range, length):
            response.close()
            self.close()
            return None  # not the bytes asked for (a multipart answer, a wrong range): no claim from them
        with _stats_lock:
            self.stats.bytes += len(body)
        return body

    def sibling(self) -> RegistryClient:
        """A client for another thread: same host, options, credentials, token and transfer counts,
        its own connection."""
        other = RegistryClient(self.host, insecure=self.insecure, credentials=self._explicit,
                               timeout=self.timeout, retries=self.retries, limits=self.limits)
        other._credentials, other._auth_header, other.stats = self._credentials, self._auth_header, self.stats
        return other

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}",
                                scope=f"repository:{repository}:pull", kind="blob-check")
        self._discard(response)
        return response.status == 200

    def push_blob(self, repository: str, data: bytes, *, mount_from: str | None = None) -> str:
        """Upload (or cross-repository mount) a blob; returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repository}:pull,push"
        if self.has_blob(repository, digest):
            return digest
        query = f"?mount={digest}&from={mount_from}" if mount_from else ""
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/{query}", scope=scope,
                                kind="upload", headers={"Content-Length": "0"})
        self._discard(response)
        if response.status == 201:
            return digest  # mounted: no bytes moved
        if response.status != 202 or not response.getheader("Location"):
            raise RegistryError(f"{self.host}/{repository}: upload refused (HTTP {response.status})",
                                response.status)
        location = urllib.parse.urljoin(f"{self.scheme}://{self.host}/", response.getheader("Location"))
        parsed = urllib.parse.urlsplit(location)
        separator = "&" if parsed.query else "?"
        path = f"{parsed.path}?{parsed.query}{separator}digest={digest}" if parsed.query else \
            f"{parsed.path}?digest={digest}"
        response = self.request("PUT", path, body=data, scope=scope, kind="upload",
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(len(data))})
        self._discard(response)
        if response.status != 201:
            raise RegistryError(f"{self.host}/{repository}: blob upload failed (HTTP {response.status})",
                                response.status)
        return digest

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> None:
        """Cross-repository mount: the registry links the blob, no bytes are sent."""
        if self.has_blob(repository, digest):
            return
        scope = f"repository:{repository}:pull,push"
        query = f"?mount={digest}&from={from_repository}"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/{query}", scope=scope, kind="mount",
                                headers={"Content-Length": "0"})
        self._discard(response)
        if response.status != 201:
            raise RegistryError(f"{self.host}: cannot mount {digest} from {from_repository} into "
                                f"{repository} (HTTP {response.status}); imagefix does not re-upload layers",
                                response.status)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        scope = f"repository:{repository}:pull,push"
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", body=raw, scope=scope,
                                kind="manifest-put", headers={"Content-Type": media_type,
                                                              "Content-Length": str(len(raw))})
        body = self._read_watched(response, MAX_ERROR_BODY, "its answer")
        if response.status != 201:
            detail = body.decode("utf-8", "replace")[:200]
            raise RegistryError(f"{self.host}/{repository}: manifest {reference} refused "
                                f"(HTTP {response.status}: {detail})", response.status)
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def _body(self, response: http.client.HTTPResponse, what: str, limit: int) -> bytes:
        if response.status != 200:
            self._discard(response)
            raise RegistryError(f"{self.host}: {what}: HTTP {response.status}", response.status)
        try:
            body = self._read_watched(response, limit + 1, what)
        except RegistryError:
            self.close()
            raise
        if len(body) > limit:
            raise RegistryError(f"{self.host}: {what} is larger than {limit} bytes")
        return body


    # --- every answer under the stall limit and the deadline -------------------------------------
    def _answer(self, conn: http.client.HTTPConnection, where: str) -> http.client.HTTPResponse:
        """The response line and headers, which must come within the stall limit: the socket timeout
        bounds each read, not a server that drips a byte just inside it."""
        sock = conn.sock  # the response keeps it when the connection lets go (HTTP/1.0, Connection: close)
        with _Watchdog(sock, self.limits, headers=True) as watch:
            try:
                response = conn.getresponse()
                response.watched_socket = sock  # type: ignore[attr-defined]
                return response
            except (OSError, http.client.HTTPException):
                if watch.reason:
                    raise RegistryError(f"{where}: {watch.reason}") from None
                raise

    def _read_watched(self, response: http.client.HTTPResponse, limit: int, what: str, *,
                      where: str | None = None) -> bytes:
        """Up to `limit` bytes of a (non-blob) body, given up at a stall or past the deadline; a
        broken chunked encoding is an error of the registry, not of imagefix."""
        where = where or self.host
        parts: list[bytes] = []
        got = 0
        with _Watchdog(getattr(response, "watched_socket", None), self.limits, size=limit) as watch:
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
                                        f"{self.timeout:g} s)") from None
                raise RegistryError(f"{where}: {what} broke off: {_reason(exc)}") from None
        if watch.reason:
            raise RegistryError(f"{where}: {what} {watch.reason}")
        return b"".join(parts)


class _Watchdog:
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

    def __enter__(self) -> _Watchdog:
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def _token_of(body: bytes, where: str) -> str:
    """The token of a token service's answer (`token`, or OAuth2's `access_token`): an object holding a
    string that can go into a header as it is (RFC 6750 b64token characters)."""
    try:
        data = load_json(body, where)
    except ImagefixError:
        data = None
    token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"{where} sent no token")
    if not _TOKEN.fullmatch(token):
        raise RegistryError(f"{where} sent a token with characters a header cannot carry (refused)")
    return token


_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class TransferLimits:
    """When a blob transfer is given up: a stall (under `stall_bytes` in `stall_seconds` while bytes
    are still due), or past its deadline (`deadline_seconds` plus the expected size at `rate`)."""

    stall_seconds: float = 30.0
    stall_bytes: int = 64 * 2**10
    deadline_seconds: float = 60.0
    rate: float = 1e6  # bytes per second the deadline allows for the expected size


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
                raise RegistryError(f"{self.where}: blob {self.digest} broke off: {_reason(exc)}") from None
            if not chunk:
                self.response.close()  # at the end: frees the connection for the next request
                break
            parts.append(chunk)
            got += len(chunk)
            self._pace(len(chunk))  # a trickle cannot keep this loop waiting past the stall limit
        data = b"".join(parts) if len(parts) != 1 else parts[0]
        self.stats.bytes += len(data)
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


def _range_is(content_range: str, asked: str, length: int) -> bool:
    """Whether `Content-Range: bytes A-B/TOTAL` is the suffix or prefix `asked` for (TOTAL may be `*`)."""
    unit, _, spec = content_range.partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdigit() or not last.isdigit():
        return False
    start, end = int(first), int(last)
    if end - start + 1 != length:
        return False
    if asked.startswith("bytes=-"):
        return not total.isdigit() or end == int(total) - 1
    return start == int(asked.removeprefix("bytes=").split("-")[0] or 0)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, or None: `nan`, `inf`, negative or unreadable values count as absent."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split("\n")[0][:200]
