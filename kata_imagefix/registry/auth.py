"""Registry credentials and auth challenges.

Credentials, first match wins: --username/--password-stdin, then Docker's
config.json (`credHelpers`, `credsStore`, `auths`). Secrets live only in
these objects and in request headers; they never reach a message.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImagefixError

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
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ImagefixError(f"credential helper {program} answered something that is not JSON") from None
    return Credentials(data.get("Username", ""), data.get("Secret", ""))


def credentials_for(host: str, explicit: Credentials | None = None) -> Credentials | None:
    if explicit is not None:
        return explicit
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise ImagefixError(f"cannot read Docker credentials from {path}") from None
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
