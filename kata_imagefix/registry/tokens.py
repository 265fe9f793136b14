"""Answering a registry's 401: Basic credentials, or a bearer token from its token service (cached
in the session by realm, service, scope and user, so fifty images of one repository ask once).
https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ImagefixError
from .errors import RegistryError
from .session import Session
from .wire import load_json

if TYPE_CHECKING:  # auth.py (Docker's config.json, credential helpers) loads at the first 401
    from .auth import Challenge, Credentials

# (scheme, host, path with query, headers, where) -> (status, body), one GET elsewhere (the realm)
Getter = Callable[[str, str, str, dict[str, str], str], tuple[int, bytes]]
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Authenticator:
    """One client's credentials and the Authorization header it sends."""

    def __init__(self, host: str, explicit: Credentials | None, session: Session) -> None:
        self.host, self.explicit, self.session = host, explicit, session
        self._credentials: Credentials | bool | None = False  # False: not looked up yet
        self.header: str | None = None

    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            from .auth import credentials_for

            self._credentials = credentials_for(self.host, self.explicit)
        return self._credentials  # type: ignore[return-value]

    def share(self, other: Authenticator) -> None:
        """Another thread's client of the same host starts where this one is."""
        other._credentials, other.header = self._credentials, self.header

    def answer(self, challenge: Challenge | None, scope: str, plain_ok: Callable[[str], bool],
               get: Getter) -> bool:
        """Answer a 401; False when there is nothing more to try."""
        if challenge is None:
            return False
        creds = self.credentials()
        if challenge.scheme == "basic":
            if creds is None or self.header == creds.basic():
                return False
            self.header = creds.basic()
            return True
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return False
        realm = challenge.params["realm"]
        service = challenge.params.get("service", "")
        scope = challenge.params.get("scope", scope)
        key = (realm, service, scope, creds.username if creds else None)
        with self.session.lock:
            cached = self.session.tokens.get(key)
        if cached and self.header != f"Bearer {cached}":
            self.header = f"Bearer {cached}"
            return True
        token = self._fetch(realm, service, scope, creds, plain_ok, get)
        with self.session.lock:
            self.session.tokens[key] = token
        if self.header == f"Bearer {token}":
            return False
        self.header = f"Bearer {token}"
        return True

    def _fetch(self, realm: str, service: str, scope: str, creds: Credentials | None,
               plain_ok: Callable[[str], bool], get: Getter) -> str:
        parsed = urllib.parse.urlsplit(realm)
        plain = parsed.scheme == "http"
        if parsed.scheme not in ("https", "http") or (plain and not plain_ok(parsed.netloc)):
            raise RegistryError(f"{self.host}: refusing token realm {parsed.scheme}://{parsed.netloc}: "
                                "credentials go over plain HTTP only to loopback or an --insecure-registry "
                                "host")
        own = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)  # the realm's own query stays
        query = urllib.parse.urlencode(own + [(k, v) for k, v in (("service", service), ("scope", scope))
                                              if v])
        path = (parsed.path or "/") + ("?" + query if query else "")
        headers = {"Authorization": creds.basic()} if creds is not None else {}
        where = f"{self.host}: token service {parsed.netloc}"
        status, body = get(parsed.scheme, parsed.netloc, path, headers, where)
        if status in (401, 403):
            who = f"as {creds.username}" if creds else "anonymously"
            raise RegistryError(f"{self.host}: authentication {who} was refused by {parsed.netloc}", status)
        if status != 200:
            raise RegistryError(f"{self.host}: token service {parsed.netloc} answered HTTP {status}", status)
        return token_of(body, where)


def token_of(body: bytes, where: str) -> str:
    """The token of a token service's answer (`token`, or OAuth2's `access_token`): an object holding a
    string that can go into a header as it is (RFC 6750 b64token characters)."""
    try:
        data = load_json(body, where)
    except ImagefixError:
        data = None
    token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"{where} sent no token")
    if not _TOKEN.fullmatch(token):
        raise RegistryError(f"{where} sent a token with characters a header cannot carry (refused)")
    return token
