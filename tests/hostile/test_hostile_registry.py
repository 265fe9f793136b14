"""A registry that loops, stalls or sends odd headers: bounded, one line, no traceback."""

from __future__ import annotations

import http.server
import threading
import time

import pytest


class Scripted:
    """A loopback HTTP server whose answer to every GET is `handler(request_handler)`."""

    def __init__(self, answer) -> None:
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.hits += 1
                answer(self, server.hits)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(answer):
        servers.append(Scripted(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _send(handler, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_a_redirect_loop_stops_after_ten(cli, scripted):
    server = scripted(lambda h, n: _send(h, 307, {"Location": f"/v2/loop/manifests/x{n}"}))
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/loop:1")
    assert result.exit_code == 2 and "more than 10 redirects" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - start < 30
    assert server.hits <= 12


@pytest.mark.parametrize("value", ["nan", "-5", "inf", "soon"])
def test_odd_retry_after_values_count_as_absent(cli, scripted, value):
    server = scripted(lambda h, n: _send(h, 503, {"Retry-After": value}))
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/busy:1")
    assert result.exit_code == 2 and "internal error" not in result.stderr
    assert time.monotonic() - start < 30


def test_a_huge_error_body_is_not_read_whole(cli, scripted):
    def answer(handler, _n):
        handler.send_response(404)
        handler.send_header("Content-Length", str(1 << 30))
        handler.end_headers()
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(1024):
                handler.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    server = scripted(answer)
    result = cli("scan", f"docker://{server.host}/missing:1")
    assert result.exit_code == 2 and "no manifest" in result.stderr


def test_a_plain_http_registry_not_on_loopback_gets_a_hint(cli, scripted):
    # 0.0.0.0 reaches this machine on Linux but is not a loopback address: TLS is required there
    server = scripted(lambda h, n: _send(h, 200, {}, b"{}"))
    port = server.host.rsplit(":", 1)[1]
    result = cli("scan", f"docker://0.0.0.0:{port}/app:1")
    assert result.exit_code == 2 and f"--insecure-registry 0.0.0.0:{port}" in result.stderr, result.stderr
