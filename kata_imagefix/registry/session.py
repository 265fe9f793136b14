"""What the registry clients of one run share: kept-alive connections, each host's scheme, tokens,
and each host's trust settings - in one object, not module globals.

Why shared: a fleet audit opens one client per image (each with its own transfer
counts) without a TLS handshake or a token request per image.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterable

from .tls import HostTLS, tls_context, trust_key

MAX_IDLE = 64  # as many as --jobs allows: each worker keeps its own


class Session:
    def __init__(self, tls: Iterable[tuple[str, HostTLS]] = ()) -> None:
        self.tls: dict[str, HostTLS] = dict(tls)
        self.lock = threading.Lock()
        self.schemes: dict[str, str] = {}  # host -> "https" or "http" (plain only where allowed)
        self.tokens: dict[tuple, str] = {}  # (realm, service, scope, user) -> bearer token
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}

    def connect(self, scheme: str, host: str, timeout: float) -> http.client.HTTPConnection:
        """A new connection; https ones verify `host` as tls.py says for it (registry, token service,
        blob storage or mirror alike)."""
        if scheme == "https":
            context = tls_context(host, self.tls.get(host))
            return http.client.HTTPSConnection(host, timeout=timeout, context=context)
        return http.client.HTTPConnection(host, timeout=timeout)

    def pool_key(self, scheme: str, host: str, timeout: float) -> tuple:
        trust = trust_key(host, self.tls.get(host)) if scheme == "https" else None
        return scheme, host, timeout, trust

    def take_idle(self, key: tuple) -> http.client.HTTPConnection | None:
        with self.lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def keep_idle(self, key: tuple, conn: http.client.HTTPConnection) -> bool:
        """Park a connection whose last answer was read to the end; False when the pool is full."""
        with self.lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return True
        return False


_sessions: dict[tuple, Session] = {}
_sessions_lock = threading.Lock()


def session_for(tls: Iterable[tuple[str, HostTLS]] = ()) -> Session:
    """The run's session for these per-host trust settings (no settings: the default session)."""
    key = tuple(sorted(tls, key=lambda item: item[0]))
    with _sessions_lock:
        if key not in _sessions:
            _sessions[key] = Session(key)
        return _sessions[key]


def default_session() -> Session:
    return session_for(())
