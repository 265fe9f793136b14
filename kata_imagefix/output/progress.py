"""Progress bars on a terminal (rich): the reporter the CLI installs for the core's progress events."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


def enable_on_terminal(wanted: bool) -> None:
    """Show progress bars when asked for and stderr is a terminal; quiet in pipes and for JSON."""
    from ..image import progress

    progress.set_reporter(terminal_bar if wanted and sys.stderr.isatty() else None)


def notes_on_stderr() -> None:
    """The core's notes go to stderr, one line each, in every format (stdout stays the report)."""
    from ..image import progress

    progress.set_listener(_note)


def _note(text: str) -> None:
    import click

    from .untrusted import for_terminal

    click.echo(f"imagefix: note: {for_terminal(text)}", err=True)


def columns() -> list:
    """Description and bar share what the figures leave: the line fits the terminal, never wraps."""
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.table import Column

    return [TextColumn("{task.description}", table_column=Column(ratio=2, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=1)), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn()]


@contextlib.contextmanager
def terminal_bar(description: str, total: int | None, console=None) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*columns(), console=console or Console(stderr=True), transient=True,
                  expand=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
