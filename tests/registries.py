"""Real registries for the tests (Debian's docker-registry on loopback), their TLS certificates,
htpasswd files and a token endpoint made locally, plus a fault server for what a real registry
will not do on purpose (a 500 then a 200, a hang)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from make_samples import SPARK_GROUP, SPARK_PASSWD, Entry, ImageSpec, LayerSpec, base_layer, write_oci_layout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    data: Path  # filesystem storage root
    process: subprocess.Popen | None = None

    def blob_path(self, digest: str) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.data / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def make_certificate(folder: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for the loopback address (it is its own CA)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def start_registry(work: Path, *, tls: bool = False, users: dict[str, str] | None = None,
                   token: TokenServer | None = None, client_ca: Path | None = None) -> Registry:
    """docker-registry on loopback; `tls` serves HTTPS with a certificate of its own (`registry.ca`),
    `client_ca` also demands a client certificate that CA issued."""
    if not shutil.which("docker-registry"):
        import pytest

        pytest.skip("docker-registry is not installed")
    port = free_port()
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = [
        "version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
        f"    rootdirectory: {data}", "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}",
    ]
    if tls:
        cert, key = make_certificate(work / "tls")
        config += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if client_ca:
            config += ["    clientcas:", f"      - {client_ca}"]
    if users:
        import bcrypt

        htpasswd = work / "htpasswd"
        htpasswd.write_text("".join(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(5)).decode()}\n"
                                    for user, pw in users.items()))
        config += ["auth:", "  htpasswd:", "    realm: imagefix-test", f"    path: {htpasswd}"]
    if token:
        config += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                   f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_path}"]
    (work / "config.yml").write_text("\n".join(config) + "\n")
    log = open(work / "registry.log", "wb")  # noqa: SIM115 - kept open while the registry runs
    process = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"registry did not start: {(work / 'registry.log').read_text()[-500:]}")
    registry = Registry(f"127.0.0.1:{port}", data, process)
    if tls:
        registry.ca = work / "tls" / "cert.pem"  # type: ignore[attr-defined]
    return registry


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token endpoint like Docker Hub's: basic credentials in, a signed JWT with access claims out."""

    def __init__(self, work: Path, users: dict[str, str]) -> None:
        from cryptography.hazmat.primitives import serialization

        self.users = users
        self.service, self.issuer = "imagefix-test-registry", "imagefix-test-issuer"
        self.cert_path, key_path = make_certificate(work / "token")
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[dict] = []
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                server.requests.append({"user": user, **query})
                scope = urllib.request.unquote(query.get("scope", ""))
                access = []
                if user and scope.startswith("repository:"):
                    _, name, actions = scope.split(":")
                    access = [{"type": "repository", "name": name, "actions": actions.split(",")}]
                body = json.dumps({"token": server.sign(user or "", access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, subject: str, access: list[dict]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self.httpd.shutdown()


# --- pushing test images through the registry API ------------------------------------------

def repo_name(prefix: str = "t") -> str:
    return f"imagefix-test/{prefix}-{uuid.uuid4().hex[:8]}"


def push_layout(client, layout: Path, tag: str, repository: str) -> dict:
    """Upload an OCI layout's image (blobs, then manifest) through the registry API."""
    index = json.loads((layout / "index.json").read_text())
    descriptor = next(d for d in index["manifests"]
                      if d["annotations"]["org.opencontainers.image.ref.name"] == tag)
    blob = lambda d: (layout / "blobs/sha256" / d.split(":")[1]).read_bytes()  # noqa: E731
    manifest_raw = blob(descriptor["digest"])
    manifest = json.loads(manifest_raw)
    for layer in [manifest["config"], *manifest["layers"]]:
        client.push_blob(repository, blob(layer["digest"]))
    client.put_manifest(repository, tag, manifest_raw, manifest["mediaType"])
    return {**descriptor, "manifest": manifest}


def push_spec(client, tmp_path: Path, repository: str, tag: str, spec: ImageSpec) -> dict:
    layout = tmp_path / f"layout-{uuid.uuid4().hex[:6]}"
    write_oci_layout(layout, {tag: spec})
    return push_layout(client, layout, tag, repository)


def spark_like(user: str = "spark", big: int = 0, arch: str = "amd64") -> ImageSpec:
    layers = []
    if big:
        layers.append(LayerSpec([Entry("opt", kind="dir"), Entry("opt/big.bin", data=os.urandom(big))],
                                "/bin/sh -c dd if=/dev/urandom of=/opt/big.bin"))
    layers.append(base_layer(SPARK_PASSWD, SPARK_GROUP))
    # unique top layer and config: tests that damage blobs must not hit other tests' images
    unique = uuid.uuid4().hex.encode()
    layers.append(LayerSpec([Entry("app.txt", unique)], "/bin/sh -c echo hello > /app.txt"))
    return ImageSpec(layers, config={"User": user, "Labels": {"test": unique.decode()}}, architecture=arch)


class CountingProxy:
    """TCP proxy in front of the registry: counts the bytes clients send (uploads) and the
    connections they open."""

    def __init__(self, target: str) -> None:
        host, port = target.split(":")
        self.target = (host, int(port))
        self.sent = 0
        self.connections = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    self.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


class ScriptedServer:
    """A loopback HTTP server whose answer to every GET is `answer(request_handler, hit_number)`: for
    registries that lie, loop, stall or drop connections (a real registry cannot be made to)."""

    def __init__(self, answer, protocol: str = "HTTP/1.0") -> None:
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = protocol

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.hits += 1
                answer(self, server.hits)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultServer(ScriptedServer):
    """A registry double for faults: serves one image, failing first with 500s, or hanging; with
    `drop_after_config`, an HTTP/1.1 server that silently closes each connection once it has sent
    an image's config (as a registry does with connections idle past its timeout)."""

    def __init__(self, manifest: bytes, config: bytes, *, failures: int = 0, hang: bool = False,
                 drop_after_config: bool = False) -> None:
        self.manifest, self.config = manifest, config
        self.config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.failures, self.hang, self.drop_after_config = failures, hang, drop_after_config
        self.stop_event = threading.Event()
        super().__init__(self._answer, "HTTP/1.1" if drop_after_config else "HTTP/1.0")

    def _answer(self, handler, _hit: int) -> None:
        if self.hang:
            self.stop_event.wait(30)
            return
        if self.failures > 0:
            self.failures -= 1
            send(handler, 500)
        elif "/manifests/" in handler.path:
            send(handler, 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, self.manifest)
        elif handler.path.endswith(self.config_digest):
            send(handler, 200, {"Content-Type": "application/octet-stream"}, self.config)
            if self.drop_after_config:
                handler.close_connection = True  # without a `Connection: close` to warn the client
        else:
            send(handler, 404)

    def stop(self) -> None:
        self.stop_event.set()
        super().stop()


def send(handler, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
    """One whole HTTP answer from a ScriptedServer handler."""
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
