"""A registry that loops, stalls or sends odd headers: bounded, one line, no traceback."""

from __future__ import annotations

import contextlib
import time

import pytest
from registries import ScriptedServer, send


@pytest.fixture
def scripted():
    servers = []

    def start(answer):
        servers.append(ScriptedServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_a_redirect_loop_stops_after_ten(cli, scripted):
    server = scripted(lambda h, n: send(h, 307, {"Location": f"/v2/loop/manifests/x{n}"}))
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/loop:1")
    assert result.exit_code == 2 and "more than 10 redirects" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - start < 30
    assert server.hits <= 12


@pytest.mark.parametrize("value", ["nan", "-5", "inf", "soon"])
def test_odd_retry_after_values_count_as_absent(cli, scripted, value):
    server = scripted(lambda h, n: send(h, 503, {"Retry-After": value}))
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
    server = scripted(lambda h, n: send(h, 200, {}, b"{}"))
    port = server.host.rsplit(":", 1)[1]
    result = cli("scan", f"docker://0.0.0.0:{port}/app:1")
    assert result.exit_code == 2 and f"--insecure-registry 0.0.0.0:{port}" in result.stderr, result.stderr


def _image_server(scripted, serve_blob, config: bytes):
    import hashlib
    import json

    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest, "size": len(config)},
                           "layers": []}).encode()

    def answer(handler, _n):
        if "/manifests/" in handler.path:
            send(handler, 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest)
        else:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                serve_blob(handler)

    return scripted(answer)


CONFIG = b'{"architecture": "amd64", "os": "linux", "config": {"User": "185:185"}}'


def test_an_endless_blob_stops_one_byte_past_its_size(cli, scripted):
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()  # no length: it never ends
        while True:
            handler.wfile.write(b"x" * 65536)

    server = _image_server(scripted, endless, CONFIG)
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/endless:1")
    assert result.exit_code == 2 and f"more than the {len(CONFIG)} bytes" in result.stderr
    assert time.monotonic() - start < 20


def test_a_trickling_blob_is_given_up_as_stalled(cli, scripted):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(CONFIG)))
        handler.end_headers()
        for byte in CONFIG:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)

    server = _image_server(scripted, trickle, CONFIG)
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/slow:1", "--stall-seconds", "1")
    assert result.exit_code == 2 and "stalled" in result.stderr and server.host in result.stderr
    assert time.monotonic() - start < 10


def test_a_transfer_past_its_deadline_is_given_up(cli, scripted):
    big = b'{"config": {"Labels": {"pad": "' + b"x" * 2_000_000 + b'"}}}'

    def steady(handler):  # 200 kB/s: above the stall floor, far below what the deadline allows
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(big)))
        handler.end_headers()
        for offset in range(0, len(big), 20_000):
            handler.wfile.write(big[offset:offset + 20_000])
            handler.wfile.flush()
            time.sleep(0.1)

    server = _image_server(scripted, steady, big)
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/late:1", "--deadline-seconds", "1", "--stall-seconds", "5")
    assert result.exit_code == 2 and "transfer deadline" in result.stderr
    assert time.monotonic() - start < 8


def _index_server(scripted, platforms: int):
    import hashlib
    import json

    config_digest = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
    child = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": config_digest, "size": len(CONFIG)}, "layers": []}).encode()
    child_digest = "sha256:" + hashlib.sha256(child).hexdigest()
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "digest": child_digest, "size": len(child),
                                       "platform": {"os": "linux", "architecture": f"arch{i}"}}
                                      for i in range(platforms)]}).encode()

    def answer(handler, _n):
        if handler.path.endswith("/manifests/1"):
            send(handler, 200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, index)
        elif "/manifests/" in handler.path:
            send(handler, 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, child)
        else:
            send(handler, 200, {}, CONFIG)

    return scripted(answer)


def test_a_huge_index_is_capped_and_says_so(cli, scripted):
    server = _index_server(scripted, 10_000)
    start = time.monotonic()
    result = cli("scan", "--format", "json", "--all-platforms", "--max-platforms", "3",
                 f"docker://{server.host}/many:1")
    assert result.exit_code == 0, result.stderr
    assert len(result.json()["images"]) == 3
    assert "lists 10000 platforms; scanning the first 3" in result.stderr
    missing = cli("scan", "--platform", "linux/s390x", f"docker://{server.host}/many:1")
    assert missing.exit_code == 2 and "and 9990 more" in missing.stderr and len(missing.stderr) < 1000
    assert time.monotonic() - start < 30


def _drip(handler, data: bytes, pause: float = 0.2) -> None:
    """One byte at a time, each just inside any socket timeout: only a stall limit ends it."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        for byte in data:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(pause)


MANIFEST = (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": '
            b'{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:' + b"0" * 64 +
            b'", "size": 2}, "layers": []}')


@pytest.mark.parametrize("where", ["headers", "manifest", "token"])
def test_a_registry_that_drips_is_given_up_at_the_stall_limit(cli, scripted, where):
    def answer(handler, _n):
        if where == "headers":
            _drip(handler, b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: y\r\n" * 200)
        elif where == "manifest":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            handler.send_header("Content-Length", str(len(MANIFEST)))
            handler.end_headers()
            _drip(handler, MANIFEST)
        elif handler.path.startswith("/token"):
            body = b'{"token": "' + b"t" * 500 + b'"}'
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            _drip(handler, body)
        else:
            send(handler, 401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token",service="r"'})

    server = scripted(answer)
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/drip:1", "--stall-seconds", "1")
    assert result.exit_code == 2 and "stalled" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert time.monotonic() - start < 20  # a hang guard: the drip alone would last minutes


@pytest.mark.parametrize("where", ["manifest", "token"])
def test_a_steady_manifest_or_token_past_its_deadline_is_given_up(cli, scripted, where):
    """200 kB/s never stalls, so only the deadline (1 s + the 4 MiB cap at 1 MB/s) ends it."""
    def steady(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        handler.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            for _ in range(300):  # 60 s if nothing gave up
                handler.wfile.write(b" " * 20_000)
                handler.wfile.flush()
                time.sleep(0.1)

    def answer(handler, _n):
        if where == "manifest" or handler.path.startswith("/token"):
            steady(handler)
        else:
            send(handler, 401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token",service="r"'})

    server = scripted(answer)
    start = time.monotonic()
    result = cli("scan", f"docker://{server.host}/late:1", "--deadline-seconds", "1", "--stall-seconds", "5")
    assert result.exit_code == 2 and "transfer deadline" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("body", [b"[1, 2]", b"42", b'"token"', b'{"token": 5}', b'{"token": ["a"]}',
                                  b"\xff\xfe{}", b'{"token": "\xff\xfe"}', b'{"token": "abc\\r\\nX-Evil: 1"}',
                                  b'{"token": "abc\r\nX-Evil: 1"}', b"[" * 100_000, b'{"token": ' * 100_000,
                                  b'{"token": null, "access_token": {"a": 1}}'])
def test_odd_token_answers_are_one_line(cli, scripted, body):
    def answer(handler, _n):
        if handler.path.startswith("/token"):
            send(handler, 200, {"Content-Type": "application/json"}, body)
        else:
            send(handler, 401, {"WWW-Authenticate": f'Bearer realm="http://{server.host}/token",service="r"'})

    server = scripted(answer)
    result = cli("scan", f"docker://{server.host}/odd:1")
    assert result.exit_code == 2 and f"token service {server.host}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr
    assert "X-Evil" not in result.stderr


@pytest.mark.parametrize("chunks", [b"zz\r\nabc\r\n0\r\n\r\n", b"10\r\nabc", b"5\r\nabc"])
def test_a_manifest_with_broken_chunked_encoding_is_one_line(cli, scripted, chunks):
    def answer(handler, _n):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(chunks)

    server = scripted(answer)
    result = cli("scan", f"docker://{server.host}/chunked:1")
    assert result.exit_code == 2 and "internal error" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_fix_in_registry_takes_only_a_404_as_a_free_target_tag(cli, scripted):
    """A 403 (or 401, 5xx) on the probe for `1-kata` says nothing about whether the tag exists: the fix
    stops there instead of overwriting what may be there (before: any error but "exists" went on)."""
    import hashlib
    import json

    config = CONFIG
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                                      "size": len(config)}, "layers": []}).encode()
    asked: list[str] = []

    def answer(handler, _hit):
        asked.append(handler.path)
        if handler.path.endswith("/manifests/1-kata"):
            send(handler, 403)
        elif "/manifests/" in handler.path:
            send(handler, 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, manifest)
        else:
            send(handler, 200, {}, config)

    server = scripted(answer)
    result = cli("fix", f"docker://{server.host}/app:1", "--in-registry")
    assert result.exit_code == 2 and "access denied" in result.stderr and "(HTTP 403)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert asked == ["/v2/app/manifests/1-kata"]  # nothing read, nothing written after the refused probe
