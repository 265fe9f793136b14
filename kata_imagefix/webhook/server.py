"""The HTTPS server of `imagefix webhook serve`: stdlib http.server in threads, TLS from files it reloads.

Paths: POST /mutate and /validate (AdmissionReview v1, admission.py),
GET /healthz (the process answers), /readyz (a certificate is loaded),
/metrics (Prometheus text). Bodies are bounded (MAX_BODY) and each
connection has a socket timeout, so a slow or hostile client holds one
thread for a bounded time. The certificate and key are re-read when either
file changes (cert-manager rotates the Secret in place); a pair that does
not load yet (the cert written, the key not) keeps the previous one.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from ..errors import ImagefixError
from .admission import Memo, WebhookOptions, answer
from .facts import ImageFacts
from .metrics import Metrics

MAX_BODY = 4 * 2**20  # an AdmissionReview carries the object and oldObject (etcd keeps ~1.5 MiB each)
SOCKET_TIMEOUT_S = 15.0
LOG = logging.getLogger("imagefix.webhook")


class TlsFiles:
    """The server's SSLContext from a cert/key pair, made again when either file changes."""

    def __init__(self, cert_file: str, key_file: str, check_every_s: float = 1.0) -> None:
        self.cert_file, self.key_file, self.check_every_s = cert_file, key_file, check_every_s
        self.lock = threading.Lock()
        self.context: ssl.SSLContext | None = None
        self.stamp: tuple | None = None
        self.checked = 0.0
        self.reloads = 0
        self.current()
        if self.context is None:
            raise ImagefixError(f"{cert_file} / {key_file}: not a certificate and key that belong together")

    def _stamp(self) -> tuple | None:
        try:
            return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in map(os.stat, (self.cert_file,
                                                                                     self.key_file)))
        except OSError:
            return None

    def current(self) -> ssl.SSLContext:
        with self.lock:
            now = time.monotonic()
            if self.context is not None and now - self.checked < self.check_every_s:
                return self.context
            self.checked = now
            stamp = self._stamp()
            if stamp is not None and stamp != self.stamp:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                try:
                    context.load_cert_chain(self.cert_file, self.key_file)
                except (ssl.SSLError, OSError) as exc:
                    LOG.warning("TLS files do not load (yet): %s; keeping the previous pair", exc)
                else:
                    if self.context is not None:
                        self.reloads += 1
                        LOG.info("TLS certificate reloaded from %s", self.cert_file)
                    self.context, self.stamp = context, stamp
            return self.context  # type: ignore[return-value]


class App:
    """What every handler thread shares: options, the image cache, the metrics."""

    def __init__(self, options: WebhookOptions, facts: ImageFacts) -> None:
        self.options, self.facts, self.metrics = options, facts, Metrics()
        self.memo = Memo()


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App, tls: TlsFiles | None) -> None:
        self.app, self.tls = app, tls
        super().__init__(address, Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:  # the handshake runs in the handler's thread, not in the accept loop
            sock = self.tls.current().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("connection from %s failed", client_address, exc_info=True)

    @property
    def url(self) -> str:
        host, port = cast(tuple[str, int], self.server_address[:2])  # as bound: getsockname()'s str host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm holds the body back
    # until the client's delayed ACK (~40 ms a request on a kept-alive connection)
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        app = self.server.app
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif self.path == "/readyz":
            ready = self.server.tls is None or self.server.tls.context is not None
            self._send(200 if ready else 503, b"ok\n" if ready else b"no certificate\n", "text/plain")
        elif self.path == "/metrics":
            text = app.metrics.render(app.facts.stats, app.memo.hits)
            self._send(200, text.encode(), "text/plain; version=0.0.4")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0]
        if path not in ("/mutate", "/validate"):
            self._send(404, b"not found\n", "text/plain")
            return
        started = time.monotonic()
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            app.metrics.observe(path, "error", time.monotonic() - started)
            self._send(411, b"Content-Length required\n", "text/plain")
            return
        if int(length) > MAX_BODY:
            self.close_connection = True
            app.metrics.observe(path, "error", time.monotonic() - started)
            self._send(413, f"body over {MAX_BODY} bytes\n".encode(), "text/plain")
            return
        body = self.rfile.read(int(length))
        result = answer(body, path.lstrip("/"), app.options, app.facts, app.memo)
        app.metrics.observe(path, result.outcome, time.monotonic() - started)
        self._send(result.status, result.body)


def make_server(listen: tuple[str, int], app: App, tls: TlsFiles | None) -> WebhookServer:
    try:
        return WebhookServer(listen, app, tls)
    except OSError as exc:
        raise ImagefixError(f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror or exc}") from None


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ImagefixError(f"--listen takes HOST:PORT, not {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


__all__ = ["MAX_BODY", "App", "TlsFiles", "WebhookServer", "make_server", "parse_listen"]
