"""Identity judgements kept with the image they judge.

resolve_identity and explicit_identity are pure functions of the image's
USER, its account files and the two securityContexts; the webhook and a
fleet audit ask them the same question for every pod of a workload, and
explicit_identity asks genpolicy up to six times per answer. So an answer is
kept in the Image (`Image.judged`, which lives and goes with the image's
facts, keyed by manifest digest in the webhook) under the other arguments as
JSON. Arguments JSON cannot say exactly (a YAML date, a non-string key) are
not kept: they are judged every time, as before.

The answers are shared: read them, never change them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

MAX_PER_IMAGE = 4096  # distinct securityContext pairs per image; the oldest goes first
Result = TypeVar("Result")
_MISSING = object()


def per_image(func: Callable[..., Result]) -> Callable[..., Result]:
    """`func(image_user, read_file, container, pod, **kw)`, kept in read_file's Image when it is one."""

    @functools.wraps(func)
    def judged(image_user: str, read_file: Any, container: dict[str, Any] | None, pod: dict[str, Any] | None,
               **kw: Any) -> Result:
        memo = getattr(getattr(read_file, "__self__", None), "judged", None)
        if not isinstance(memo, dict):
            return func(image_user, read_file, container, pod, **kw)
        try:
            key = (func.__name__, image_user, json.dumps(container, sort_keys=True),
                   json.dumps(pod, sort_keys=True), json.dumps(kw, sort_keys=True))
        except (TypeError, ValueError):
            return func(image_user, read_file, container, pod, **kw)
        found = memo.get(key, _MISSING)
        if found is _MISSING:
            found = func(image_user, read_file, container, pod, **kw)
            while len(memo) >= MAX_PER_IMAGE:
                try:
                    memo.pop(next(iter(memo)), None)
                except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
                    break
            memo[key] = found
        return found  # type: ignore[return-value]

    return judged


__all__ = ["MAX_PER_IMAGE", "per_image"]
