"""Registry credentials and auth challenges.

Credentials, first match wins: --username/--password-stdin, then Docker's
config.json (`credHelpers`, `credsStore`, `auths`). Secrets live only in
these objects and in request headers; they never reach a message.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImagefixError
from .wire import load_json

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(username={self.username!r}, password=***)"

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="https://auth",service="registry",scope="repository:x:pull"`."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def _keys_for(host: str) -> list[str]:
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return list(DOCKER_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _helper(name: str, server: str) -> Credentials | None:
    import subprocess  # only for a credential helper: a registry scan without one never loads it

    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=30)
    except FileNotFoundError:
        raise ImagefixError(f"credential helper {program} (from {docker_config_path()}) is not installed") \
            from None
    except subprocess.TimeoutExpired:
        raise ImagefixError(f"credential helper {program} did not answer within 30 s") from None
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain": anonymous
    try:
        data = load_json(proc.stdout, program)
    except ImagefixError:
        raise ImagefixError(f"credential helper {program} answered something that is not JSON") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key, ""), str)
                                             for key in ("Username", "Secret")):
        raise ImagefixError(f"credential helper {program} answered JSON that is not an object with string "
                            "Username and Secret")
    return Credentials(data.get("Username", ""), data.get("Secret", ""))


MAX_DOCKER_CONFIG = 16 * 2**20


def _docker_config(path: Path) -> dict | None:
    """config.json in the shapes Docker writes (docker/cli configfile): an object whose `auths` maps
    to objects of strings, `credHelpers` to helper names, `credsStore` a name; anything else is named
    in one line, never a crash."""
    from ..fileio import read_regular

    if not path.exists():
        raise FileNotFoundError(path)
    try:
        raw = read_regular(path, MAX_DOCKER_CONFIG, "Docker credentials file")
    except ImagefixError as exc:
        raise ImagefixError(f"cannot read Docker credentials: {exc}") from None
    try:
        config = load_json(raw, str(path))
    except ImagefixError as exc:
        raise ImagefixError(f"cannot read Docker credentials from {exc}") from None
    if not isinstance(config, dict):
        raise ImagefixError(f"{path}: Docker credentials must be a JSON object")
    for key in ("auths", "credHelpers"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ImagefixError(f"{path}: `{key}` must be an object")
    if config.get("credsStore") is not None and not isinstance(config["credsStore"], str):
        raise ImagefixError(f"{path}: `credsStore` must be a helper name")
    for name, helper in (config.get("credHelpers") or {}).items():
        if not isinstance(helper, str):
            raise ImagefixError(f"{path}: credHelpers[{name!r}] must be a helper name")
    for name, entry in (config.get("auths") or {}).items():
        if not isinstance(entry, dict) or not all(isinstance(value, str) for key, value in entry.items()
                                                  if key in ("auth", "username", "password")):
            raise ImagefixError(f"{path}: auths[{name!r}] must be an object of strings")
    return config


def credentials_for(host: str, explicit: Credentials | None = None) -> Credentials | None:
    if explicit is not None:
        return explicit
    path = docker_config_path()
    try:
        config = _docker_config(path)
    except FileNotFoundError:
        return None
    if config is None:
        return None
    keys = _keys_for(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _helper(helpers[key], keys[0] if host.endswith("docker.io") else host)
    auths = config.get("auths") or {}
    if config.get("credsStore"):
        found = _helper(config["credsStore"], keys[0] if host.endswith("docker.io") else host)
        if found is not None:
            return found
    for key in keys:
        entry = auths.get(key)
        if entry and entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ImagefixError(f"{path}: the auth entry for {key} is not valid base64") from None
            return Credentials(user, password)
        if entry and entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    return None
