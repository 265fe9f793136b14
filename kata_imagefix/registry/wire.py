"""Bytes from outside, checked where they enter: JSON as the specs allow it, and content digests.

The registry client (token answers, Docker's config.json, digests in URLs) and `image/` (image
documents) both check their input here; it sits in registry/ because image/ may import the client,
never the reverse.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ImagefixError

MAX_DEPTH = 64  # real image documents nest 5 levels; 100,000 would exhaust the stack


def load_json(data: bytes | str, where: str, *, keep_pairs: bool = False) -> Any:
    """JSON as the specs allow it: UTF-8, no NaN/Infinity, no absurd nesting. With `keep_pairs`,
    objects also keep every (key, value) in order, duplicates included (`go_decoded` needs them)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ImagefixError(f"{where}: not UTF-8 JSON") from None
    if _too_deep(data):
        raise ImagefixError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_constant=_no_constant,
                          object_pairs_hook=_Object if keep_pairs else None)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ImagefixError(f"{where}: not valid JSON ({str(exc)[:120]})") from None


class _Object(dict):
    """A JSON object that remembers its members as written, duplicates included."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _too_deep(text: str) -> bool:
    """A cheap bracket count (strings may hold brackets: then this over-counts, which only matters
    for documents that are hostile anyway)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


_CONTENT_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")


def checked_digest(digest: object, where: str) -> str:
    """A digest as the OCI image spec writes one (sha256/sha512, lower-case hex of the right length),
    checked before it becomes a path or a URL."""
    if not isinstance(digest, str) or not _CONTENT_DIGEST.match(digest):
        raise ImagefixError(f"{where}: invalid digest {str(digest)[:80]!r}")
    return digest
