"""The registry client's error: one line for the user, and the HTTP status when there was one."""

from __future__ import annotations

from ..errors import ImagefixError


class RegistryError(ImagefixError):
    """A request failed. `status` is the registry's HTTP status (None for a connection or protocol
    fault): callers tell 404 from 401/403/5xx by it, never by the message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(RegistryError):
    """HTTP 404: no such manifest, tag or blob."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, status)


def reason(exc: BaseException) -> str:
    """A socket or protocol error as a short phrase for one line."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split("\n")[0][:200]
