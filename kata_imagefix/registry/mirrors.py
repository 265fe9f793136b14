"""Where the nodes really pull from: containerd's `config_path` (hosts.toml per registry), the
containers-registries.conf(5) v2 mirrors, `--registry-mirror FROM=TO`.

An air-gapped cluster pulls `docker.io/library/nginx:1.27` from `mirror.corp:5000`;
the audit must read the image there too, or every image is "unreadable". Each
mirror is tried in the order the configuration gives, then the registry itself
(containerd falls back to its `server` the same way); the reference reported
stays the one the manifest names.

containerd (docs/hosts.md): `<config_path>/<registry host>/hosts.toml` holds an
optional `server` (the upstream) and `[host."https://mirror:5000"]` tables with
`capabilities` (a host without "resolve" cannot turn a tag into a digest, one
without "pull" serves nothing), `ca`, `client` and `skip_verify` (applied to that
host's connections through registry/tls.py; relative paths are relative to the
hosts.toml's folder, as containerd reads them); `_default/hosts.toml` applies to
registries without a folder of their own.
https://github.com/containerd/containerd/blob/main/docs/hosts.md

registries.conf v2: `[[registry]]` with `prefix` (default: `location`),
`location`, `insecure`, `mirror-by-digest-only` and `[[registry.mirror]]` entries
with `location`, `insecure`, `pull-from-mirror` (all, digest-only, tag-only); the
longest matching prefix wins, and its part of the reference is replaced by the
mirror's location.
https://github.com/containers/image/blob/main/docs/containers-registries.conf.5.md
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ImagefixError
from .tls import HostTLS


@dataclass(frozen=True)
class Mirror:
    """Reads of references under `prefix` may go to `location` (host[:port][/namespace]) instead."""

    prefix: str  # e.g. "docker.io" or "docker.io/library"
    location: str
    insecure: bool = False  # plain HTTP allowed (http:// in hosts.toml, insecure = true)
    tls: HostTLS | None = None  # its own trust (hosts.toml ca, client, skip_verify)
    tags: bool = True  # may resolve tags (containerd "resolve", registries.conf not digest-only)
    digests: bool = True  # may serve by digest (containerd "pull", registries.conf not tag-only)
    source: str = ""  # the file (or flag) it came from, for messages

    @property
    def host(self) -> str:
        return self.location.split("/", 1)[0]


@dataclass
class MirrorConfig:
    mirrors: list[Mirror] = field(default_factory=list)
    upstream: dict[str, str] = field(default_factory=dict)  # prefix -> location (registries.conf, server)

    def candidates(self, reference: str) -> list[tuple[str, Mirror | None]]:
        """(reference to read, the mirror it goes to or None for the registry itself), in order. The
        reference is normalised (docker.io/library/nginx:1.27)."""
        by_digest = "@" in reference
        matching = [m for m in self.mirrors if _under(reference, m.prefix)]
        if matching:  # the longest prefix, as registries.conf; the order given within it
            longest = max(len(m.prefix) for m in matching)
            matching = [m for m in matching if len(m.prefix) == longest]
        out: list[tuple[str, Mirror | None]] = [
            (m.location + reference[len(m.prefix):], m) for m in matching
            if (m.digests if by_digest else m.tags)]
        upstream = [(p, loc) for p, loc in self.upstream.items() if _under(reference, p)]
        if upstream:
            prefix, location = max(upstream, key=lambda item: len(item[0]))
            out.append((location + reference[len(prefix):], None))
        else:
            out.append((reference, None))
        return out

    @property
    def insecure_hosts(self) -> tuple[str, ...]:
        return tuple(sorted({m.host for m in self.mirrors if m.insecure}))

    @property
    def trust(self) -> tuple[tuple[str, HostTLS], ...]:
        """(host, its trust settings) for every mirror that has its own, for RegistryOptions.tls."""
        return tuple(sorted({(m.host, m.tls) for m in self.mirrors if m.tls is not None}, key=lambda i: i[0]))


def _under(reference: str, prefix: str) -> bool:
    return reference == prefix or reference.startswith((prefix + "/", prefix + ":", prefix + "@"))


def load(paths: tuple[str, ...] | list[str], flags: tuple[str, ...] | list[str]) -> MirrorConfig:
    """`--registry-config DIR|FILE` (a containerd hosts folder, one hosts.toml, or registries.conf)
    and `--registry-mirror FROM=TO`, flags first."""
    config = MirrorConfig()
    for flag in flags:
        source, sep, target = flag.partition("=")
        if not sep or not source or not target or "://" in source:
            raise ImagefixError(f"--registry-mirror takes FROM=TO (e.g. docker.io=mirror.corp:5000), "
                                f"not {flag!r}")
        scheme, location = _split_url(target, f"--registry-mirror {flag}")
        config.mirrors.append(Mirror(_normal_prefix(source), location, insecure=scheme == "http",
                                     source="--registry-mirror"))
    for text in paths:
        path = Path(text)
        if path.is_dir():
            _hosts_dir(path, config)
        elif path.is_file() and path.name == "hosts.toml":
            _hosts_file(path, _registry_of(path.parent.name), config)
        elif path.is_file():
            _registries_conf(path, config)
        else:
            raise ImagefixError(f"--registry-config {text}: no such file or folder")
    return config


def _toml(path: Path) -> dict:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImagefixError(f"{path}: cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImagefixError(f"{path}: not valid TOML: {exc}") from None


def _registry_of(folder: str) -> str:
    """containerd's folder name: the registry host (`docker.io`, `mirror:5000`) or `_default`."""
    return "" if folder == "_default" else _normal_prefix(folder)


def _hosts_dir(folder: Path, config: MirrorConfig) -> None:
    files = sorted(folder.glob("*/hosts.toml"))
    if not files:
        raise ImagefixError(f"--registry-config {folder}: no <registry>/hosts.toml in it (containerd's "
                            "config_path layout)")
    default = [f for f in files if f.parent.name == "_default"]
    for path in [f for f in files if f.parent.name != "_default"] + default:
        _hosts_file(path, _registry_of(path.parent.name), config)


def _hosts_file(path: Path, registry: str, config: MirrorConfig) -> None:
    data = _toml(path)
    hosts = data.get("host") or {}
    if not isinstance(hosts, dict):
        raise ImagefixError(f"{path}: host must be a table of [host.\"URL\"] tables")
    if registry == "":  # _default: for every registry without its own folder; expressed per reference
        registry = "*"
    for url, table in hosts.items():
        if not isinstance(table, dict):
            raise ImagefixError(f"{path}: [host.{url!r}] must be a table")
        where = f"{path}: [host.\"{url}\"]"
        scheme, location = _split_url(url, where)
        capabilities = table.get("capabilities", ["pull", "resolve", "push"])
        if not isinstance(capabilities, list):
            raise ImagefixError(f"{where}: capabilities must be a list")
        config.mirrors.append(Mirror(registry, location, insecure=scheme == "http",
                                     tls=_host_tls(table, path.parent, where),
                                     tags="resolve" in capabilities, digests="pull" in capabilities,
                                     source=str(path)))
    server = data.get("server")
    if isinstance(server, str) and registry != "*":
        _, location = _split_url(server, f"{path}: server")
        if location != registry and not (registry == "docker.io" and location == "registry-1.docker.io"):
            config.upstream[registry] = location


def _host_tls(table: dict, folder: Path, where: str) -> HostTLS | None:
    """A host table's `ca` (a path or a list), `client` (a path, a [cert, key] pair, or a list of
    either) and `skip_verify`, as containerd reads them; None when it has none."""
    def path_of(value: object, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise ImagefixError(f"{where}: {what} must be a path")
        return str(folder / value)  # an absolute value stays as it is

    ca = table.get("ca")
    cas = tuple(path_of(c, "ca") for c in (ca if isinstance(ca, list) else [ca] if ca is not None else []))
    client = table.get("client")
    entries = [] if client is None else [client] if isinstance(client, str) else client
    if not isinstance(entries, list):
        raise ImagefixError(f"{where}: client must be a path, a [certificate, key] pair or a list of them")
    if len(entries) == 2 and all(isinstance(e, str) for e in entries) and isinstance(client, list):
        entries = [entries]  # client = ["cert", "key"]: one pair
    clients: list[tuple[str, str | None]] = []
    for entry in entries:
        if isinstance(entry, str):
            clients.append((path_of(entry, "client"), None))
        elif isinstance(entry, list) and len(entry) in (1, 2):
            key = entry[1] if len(entry) == 2 and entry[1] else None
            clients.append((path_of(entry[0], "client"), path_of(key, "client key") if key else None))
        else:
            raise ImagefixError(f"{where}: client must be a path, a [certificate, key] pair or a list of "
                                "them")
    skip = table.get("skip_verify", False)
    if not isinstance(skip, bool):
        raise ImagefixError(f"{where}: skip_verify must be true or false")
    if not (cas or clients or skip):
        return None
    return HostTLS(cas, tuple(clients), skip, source=where)


def _registries_conf(path: Path, config: MirrorConfig) -> None:
    data = _toml(path)
    entries = data.get("registry") or []
    if not isinstance(entries, list):
        raise ImagefixError(f"{path}: registry must be an array of [[registry]] tables")
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: [[registry]] {number}"
        if not isinstance(entry, dict):
            raise ImagefixError(f"{where} must be a table")
        location = entry.get("location")
        prefix = entry.get("prefix") or location
        if not isinstance(prefix, str) or not prefix:
            raise ImagefixError(f"{where}: needs a prefix or a location")
        if prefix.startswith("*."):
            continue  # wildcard subdomains: not a reference prefix this audit can rewrite
        prefix = _normal_prefix(prefix)
        digest_only = entry.get("mirror-by-digest-only") is True
        for mirror in entry.get("mirror") or []:
            if not isinstance(mirror, dict) or not isinstance(mirror.get("location"), str):
                raise ImagefixError(f"{where}: each [[registry.mirror]] needs a location")
            pull_from = mirror.get("pull-from-mirror", "all")
            config.mirrors.append(Mirror(
                prefix, mirror["location"].rstrip("/"), insecure=mirror.get("insecure") is True,
                tags=not digest_only and pull_from in ("all", "tag-only"),
                digests=pull_from in ("all", "digest-only"), source=str(path)))
        if isinstance(location, str) and location and _normal_prefix(location) != prefix:
            config.upstream[prefix] = location.rstrip("/")


def _split_url(url: str, where: str) -> tuple[str, str]:
    """(scheme, host[:port][/namespace]) of a mirror URL; https when none is given."""
    if "://" not in url:
        return "https", url.rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ImagefixError(f"{where}: {url!r} is not an http(s) URL")
    path = parsed.path.rstrip("/")
    if path not in ("", "/v2"):
        raise ImagefixError(f"{where}: a mirror under a path ({path}) is not supported; name the host")
    return parsed.scheme, parsed.netloc


def _normal_prefix(prefix: str) -> str:
    prefix = prefix.rstrip("/")
    return "docker.io" if prefix in ("index.docker.io", "registry-1.docker.io") else prefix


def resolve_default(config: MirrorConfig, domain: str) -> MirrorConfig:
    """The `_default` hosts (prefix '*') applied to one registry without a folder of its own."""
    if not any(m.prefix == "*" for m in config.mirrors):
        return config
    own = any(m.prefix == domain for m in config.mirrors)
    mirrors = [m for m in config.mirrors if m.prefix != "*"]
    if not own:
        mirrors += [replace(m, prefix=domain) for m in config.mirrors if m.prefix == "*"]
    return MirrorConfig(mirrors, config.upstream)
