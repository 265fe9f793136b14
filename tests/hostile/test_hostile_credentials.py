"""A lying registry on loopback: credentials never travel in clear text to another host."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from registries import ScriptedServer, send


class LyingRegistry(ScriptedServer):
    """Answers every /v2/ request with 401 and the challenge it is told to send; records token calls."""

    def __init__(self, challenge: str) -> None:
        self.challenge = challenge
        self.token_requests: list[tuple[str, str | None]] = []  # (path with query, Authorization)
        super().__init__(self._answer)

    def _answer(self, handler, _hit: int) -> None:
        if handler.path.startswith("/token"):
            self.token_requests.append((handler.path, handler.headers.get("Authorization")))
            send(handler, 200, {}, json.dumps({"token": "t0ken"}).encode())
        else:
            send(handler, 401, {"WWW-Authenticate": self.challenge.replace("PORT", str(self.port))},
                 b'{"errors":[{"code":"UNAUTHORIZED"}]}')


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


@pytest.mark.parametrize("config", ['[1, 2]', '"auths"', '{"auths": []}', '{"auths": {"HOST": []}}',
                                    '{"auths": {"HOST": {"auth": 5}}}', '{"credHelpers": []}',
                                    '{"credHelpers": {"HOST": ["x"]}}', '{"credsStore": {"a": 1}}',
                                    '{"auths": ' * 100_000 + "{}" + "}" * 100_000, '\xff\xfe'])
def test_docker_config_json_of_odd_shapes_is_one_line(cli, lying, tmp_path, monkeypatch, config):
    registry = lying('Bearer realm="http://127.0.0.1:PORT/token",service="reg"')
    raw = b"\xff\xfe" if "\xff" in config else config.replace("HOST", registry.host).encode()
    (tmp_path / "config.json").write_bytes(raw)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    result = cli("scan", f"docker://{registry.host}/team/app:1")
    assert result.exit_code == 2 and "config.json" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr


@pytest.mark.parametrize("answer", ["[1, 2]", "42", '{"Username": 5, "Secret": "x"}', "[" * 100_000])
def test_a_credential_helper_answering_odd_json_is_one_line(cli, lying, tmp_path, monkeypatch, answer):
    registry = lying('Bearer realm="http://127.0.0.1:PORT/token",service="reg"')
    helper = tmp_path / "bin" / "docker-credential-odd"
    helper.parent.mkdir()
    (tmp_path / "answer").write_text(answer)
    helper.write_text(f"#!/bin/sh\ncat {tmp_path / 'answer'}\n")
    helper.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {registry.host: "odd"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("PATH", f"{helper.parent}:{__import__('os').environ['PATH']}")
    result = cli("scan", f"docker://{registry.host}/team/app:1")
    assert result.exit_code == 2 and "docker-credential-odd" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr
