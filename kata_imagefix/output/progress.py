"""Progress bars for long work: shown on a terminal only (quiet in pipes and with --format json)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

enabled = False  # the CLI turns this on for text output on a terminal


def showing() -> bool:
    return enabled and sys.stderr.isatty()


@contextlib.contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields advance(n_bytes); a no-op unless enabled and stderr is a terminal."""
    if not showing():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


class CountingReader:
    """Wraps a stream and reports bytes read (for progress).

    It offers skip() only when the stream has one: tarstream then hands skips
    down uncopied, and otherwise reads through as it would without the wrapper.
    """

    def __init__(self, stream, advance: Callable[[int], None]) -> None:
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
