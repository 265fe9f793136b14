"""Progress events of long image work (export, layer reads) and notes about it, for whatever UI listens.

The core never draws or prints anything: it reports bytes through
`byte_progress`, notes ("scanning the first 64 platforms") through `notice`
and where the engine's work is (a build step, a layer's push status) through
`step`; the command line installs a reporter and a stepper (output/progress.py)
when a terminal is watching, and a listener for notes - the way dive's core
reports through its event bus.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Advance = Callable[[int], None]
Reporter = Callable[[str, "int | None"], contextlib.AbstractContextManager[Advance]]

Listener = Callable[[str], None]
Stepper = Callable[[str, bool], None]  # (text, the next line replaces it)

_reporter: Reporter | None = None
_listener: Listener | None = None
_stepper: Stepper | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Install (or remove, with None) the UI that shows progress."""
    global _reporter
    _reporter = reporter


def set_listener(listener: Listener | None) -> None:
    """Install (or remove, with None) what receives notes for the user."""
    global _listener
    _listener = listener


def set_stepper(stepper: Stepper | None) -> None:
    """Install (or remove, with None) the UI that shows the engine's steps."""
    global _stepper
    _stepper = stepper


def step(text: str, *, replace: bool = False) -> None:
    """Where long engine work is, for a watching terminal (`replace`: the next step overwrites this
    line); dropped when nobody shows steps."""
    if _stepper is not None:
        _stepper(text, replace)


def notice(text: str) -> None:
    """A note for the user about the work (not an error: the result stands); dropped when nobody listens."""
    if _listener is not None:
        _listener(text)


def showing() -> bool:
    return _reporter is not None


@contextlib.contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Advance]:
    """Yields advance(n_bytes); a no-op unless a reporter is installed."""
    if _reporter is None:
        yield lambda _n: None
        return
    with _reporter(description, total) as advance:
        yield advance


class CountingReader:
    """Wraps a stream and reports bytes read (for progress).

    It offers skip() only when the stream has one: tarstream then hands skips
    down uncopied, and otherwise reads through as it would without the wrapper.
    """

    def __init__(self, stream, advance: Advance) -> None:
        self.stream, self.advance = stream, advance
        if hasattr(stream, "skip"):
            self.skip = self._skip

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.advance(len(data))
        return data

    def _skip(self, size: int) -> int:
        done = self.stream.skip(size)
        self.advance(done)
        return done
