"""Progress on a terminal (rich): the reporter and stepper the CLI installs for the core's events."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any


def enable_on_terminal(wanted: bool) -> None:
    """Show progress bars and engine steps when asked for and stderr is a terminal; quiet in pipes and
    for JSON."""
    from ..image import progress

    progress.set_reporter(terminal_bar if wanted and sys.stderr.isatty() else None)
    steps_on_terminal(wanted)


def steps_on_terminal(wanted: bool) -> None:
    """Show the engine's steps (build steps, push statuses) dimmed on stderr when asked for and stderr is
    a terminal."""
    from ..image import progress

    progress.set_stepper(_terminal_step if wanted and sys.stderr.isatty() else None)


@functools.cache
def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _terminal_step(text: str, replace: bool) -> None:
    _stderr_console().print(f"[dim]{text}[/dim]", end="\r" if replace else "\n")


def notes_on_stderr() -> None:
    """The core's notes go to stderr, one line each, in every format (stdout stays the report)."""
    from ..image import progress

    progress.set_listener(_note)


def _note(text: str) -> None:
    import click

    from .untrusted import for_terminal

    click.echo(f"imagefix: note: {for_terminal(text)}", err=True)


NARROW = 60  # below this the speed and the time left go: the description and the bar keep some room


def columns(width: int) -> list:
    """Description and bar share what the figures leave: the line fits the terminal, never wraps."""
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.table import Column

    figures = [DownloadColumn()] + ([] if width < NARROW else [TransferSpeedColumn(), TimeRemainingColumn()])
    return [TextColumn("{task.description}", table_column=Column(ratio=2, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=1)), *figures]


@contextlib.contextmanager
def terminal_bar(description: str, total: int | None, console=None) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import Progress

    console = console or Console(stderr=True)
    with Progress(*columns(console.width), console=console, transient=True, expand=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
