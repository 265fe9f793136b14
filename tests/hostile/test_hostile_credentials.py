"""A lying registry on loopback: credentials never travel in clear text to another host."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest


class LyingRegistry:
    """Answers every /v2/ request with 401 and the challenge it is told to send; counts token calls."""

    def __init__(self, challenge: str) -> None:
        self.challenge = challenge
        self.token_requests: list[tuple[str, str | None]] = []  # (path with query, Authorization)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    server.token_requests.append((self.path, self.headers.get("Authorization")))
                    body = json.dumps({"token": "t0ken"}).encode()
                    self.send_response(200)
                else:
                    body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", server.challenge.replace("PORT", str(server.port)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def lying() -> Iterator:
    servers: list[LyingRegistry] = []

    def start(challenge: str) -> LyingRegistry:
        servers.append(LyingRegistry(challenge))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connections(monkeypatch) -> list[str]:
    """Every host a TCP connection is opened to, in this process; documentation addresses never."""
    opened: list[str] = []
    real = socket.create_connection

    def record(address, *args, **kwargs):
        opened.append(address[0])
        if address[0].startswith("203.0.113."):
            raise AssertionError(f"a connection to {address[0]} was attempted")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", record)
    return opened


def test_basic_credentials_never_go_over_plain_http_to_another_host(cli, lying, connections):
    registry = lying('Bearer realm="http://203.0.113.7/token",service="registry"')
    result = cli("scan", f"docker://{registry.host}/team/app:1", "--username", "alice", "--password-stdin",
                 input="s3cret\n")
    assert result.exit_code == 2
    assert "refusing token realm http://203.0.113.7" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "203.0.113.7" not in connections  # refused before any connection


def test_a_loopback_realm_keeps_its_own_query(cli, lying):
    registry = lying('Bearer realm="http://127.0.0.1:PORT/token?account=alice",service="reg",'
                     'scope="repository:team/app:pull"')
    cli("scan", f"docker://{registry.host}/team/app:1", "--username", "alice", "--password-stdin",
        input="s3cret\n")
    path, authorization = registry.token_requests[0]
    assert path.startswith("/token?account=alice&") and "service=reg" in path and "scope=" in path
    assert authorization and authorization.startswith("Basic ")
