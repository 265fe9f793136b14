"""Trust per registry host: the one place a TLS context for a registry connection is built.

Every connection to a host - the registry, its token service, the blob storage a
redirect points to, a mirror - verifies the server the same way: the system CAs,
plus what Docker's `certs.d/HOST[:PORT]/` holds (`*.crt` CAs, `*.cert` + `*.key`
client pairs), plus what containerd's hosts.toml says for that host (`ca`,
`client`, `skip_verify`, passed in as HostTLS).
https://docs.docker.com/engine/security/certificates/
https://github.com/containerd/containerd/blob/main/docs/hosts.md
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
from pathlib import Path

import msgspec

from .errors import RegistryError, reason


class HostTLS(msgspec.Struct, frozen=True):
    """One host's own trust settings (from hosts.toml): a CA file, a client certificate and key,
    or no verification at all."""

    cas: tuple[str, ...] = ()
    clients: tuple[tuple[str, str | None], ...] = ()  # (certificate, key or None: both in one file)
    skip_verify: bool = False
    source: str = ""  # where the settings came from, for messages


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
    """Where Docker keeps per-registry trust (`certs.d/HOST:PORT/ca.crt`)."""
    return Path(os.environ.get("IMAGEFIX_CERTS_DIR") or "/etc/docker/certs.d")


def _docker_files(host: str) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """certs.d's CAs and client (cert, key) pairs for `host`, as dockerd reads them."""
    folder = certs_dir() / host
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return [], []
    cas = [folder / n for n in names if n.endswith(".crt")]
    pairs = [(folder / n, folder / (n[:-5] + ".key")) for n in names if n.endswith(".cert")]
    return cas, pairs


def tls_context(host: str, settings: HostTLS | None = None) -> ssl.SSLContext:
    """The context that verifies `host` (host[:port]); a CA or client file that cannot be used is one
    line naming it."""
    settings = settings or HostTLS()
    cas, pairs = _docker_files(host)
    cas += [Path(ca) for ca in settings.cas]
    pairs += [(Path(cert), Path(key or cert)) for cert, key in settings.clients]
    context = ssl.create_default_context()
    where = f"{host}: {settings.source + ': ' if settings.source else ''}"
    for ca in cas:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"{where}CA file {ca}: cannot use it ({reason(exc)})") from None
    for cert, key in pairs:
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"{where}client certificate {cert} / key {key}: cannot use them "
                                f"({reason(exc)})") from None
    if settings.skip_verify:  # hosts.toml skip_verify = true: the operator's choice for this host only
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def probe_context() -> ssl.SSLContext:
    """Only asks "does it speak TLS?" (loopback / --insecure-registry): nothing is sent, nothing trusted."""
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.verify_mode = ssl.CERT_NONE
    return bare


def trust_key(host: str, settings: HostTLS | None = None) -> tuple:
    """What a context for `host` was built from (files with their change times): a kept-alive connection
    is only shared between clients that would have verified it the same way."""
    cas, pairs = _docker_files(host)
    files = [*cas, *(p for pair in pairs for p in pair)]
    stamps = []
    for path in files:
        stamp: tuple = (str(path),)
        with contextlib.suppress(OSError):
            status = path.stat()
            stamp = (str(path), status.st_mtime_ns, status.st_size)
        stamps.append(stamp)
    return host, tuple(stamps), settings

