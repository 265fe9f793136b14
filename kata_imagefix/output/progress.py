"""Progress bars on a terminal (rich): the reporter the CLI installs for the core's progress events."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


def enable_on_terminal(wanted: bool) -> None:
    """Show progress bars when asked for and stderr is a terminal; quiet in pipes and for JSON."""
    from ..image import progress

    progress.set_reporter(terminal_bar if wanted and sys.stderr.isatty() else None)


@contextlib.contextmanager
def terminal_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
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
