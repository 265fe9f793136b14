"""Compact per-subject verdicts: coloured on a terminal, plain in pipes (click strips styles).

On a terminal a finding's message and fix wrap to its width under their own column; in a pipe
each stays on one line (grep and CI logs see whole messages).
"""

from __future__ import annotations

import click

from ..rules.finding import Finding, Severity
from ..rules.result import ScanResult
from ..sizes import human_size
from .untrusted import for_terminal

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


INDENT = 18  # "  warning KIF201  ": where a message starts


def terminal_width() -> int | None:
    """Columns of the terminal stdout is, or None in a pipe (nothing wraps there)."""
    import shutil
    import sys

    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return max(shutil.get_terminal_size().columns, 40)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def wrapped(first: str, text: str, width: int | None, indent: int = INDENT) -> list[str]:
    """`first` (styled, `indent` columns wide) then text, wrapped to width under itself."""
    if width is None or indent + len(text) <= width:
        return [first + text]
    import textwrap

    pieces = textwrap.wrap(text, max(width - indent, 20), break_on_hyphens=False) or [""]
    return [first + pieces[0], *(" " * indent + piece for piece in pieces[1:])]


def _finding_lines(finding: Finding, show_location: bool, width: int | None = None) -> list[str]:
    label = click.style(f"{finding.severity.label:<7}", fg=_COLOURS[finding.severity], bold=True)
    where = ""
    if show_location and finding.line is not None:
        where = f"{for_terminal(finding.file)}:{finding.line}: "
    rule = click.style(f"{finding.rule:<6}", bold=True)
    lines = wrapped(f"  {label} {rule}  ", where + for_terminal(finding.message), width)
    if finding.fix:
        lines += wrapped(f"  {'':7} {'':6}  {click.style('fix:', fg='green')} ", for_terminal(finding.fix),
                         width, INDENT + 5)
    return lines


def image_summary(result: ScanResult) -> str:
    image = result.image
    if image is None:
        return ""
    estimated = " (estimated)" if image.size_estimated else ""
    user = image.user if image.user else '"" (root)'
    parts = [f"user {user}", f"{human_size(image.unpacked_size)} unpacked{estimated}",
             plural(len(image.layers), "layer"), image.platform]
    if image.compressed_size:
        parts.insert(2, f"{human_size(image.compressed_size)} compressed")
    return "  " + for_terminal(" · ".join(parts))  # the user and platform come from the image


def verdict(result: ScanResult, fail_on: Severity | None) -> str:
    counts = {s: sum(1 for f in result.findings if f.severity is s) for s in Severity}
    summary = ", ".join(f"{n} {s.label}{'s' if n != 1 else ''}"
                        for s, n in sorted(counts.items(), reverse=True) if n) or "no findings"
    failing = fail_on is not None and any(f.severity >= fail_on for f in result.findings)
    if failing:
        mark = click.style("✗ FAIL", fg="red", bold=True)
    else:
        mark = click.style("✓ ok", fg="green", bold=True)
    return f"{mark}  {summary}"


def budget_line(b) -> str:
    fits = "fits" if b.fits_memory else "does NOT fit"
    timeout = (f"create_container_timeout {b.model.create_timeout_s} s" if b.fits_create_timeout
               else f"above create_container_timeout {b.model.create_timeout_s} s: set "
                    f"{b.recommended_timeout_seconds} s")
    return (f"budget ({b.size_said} size): pull ≈ {b.pull_seconds:.0f} s "
            f"(needs {b.needed_timeout_seconds:.0f} s with margin; "
            f"{timeout}), {human_size(b.unpacked_bytes)} of {human_size(b.room_bytes)} guest room: {fits}")


def render(results: list[ScanResult], fail_on: Severity | None, *, show_location: bool = False) -> str:
    width = terminal_width()
    out: list[str] = []
    for result in results:
        out.append(click.style(for_terminal(result.subject), bold=True) + "  " + verdict(result, fail_on))
        summary = image_summary(result)
        if summary:
            out += wrapped("  ", summary[2:], width, 4)
        for finding in result.findings:
            out.extend(_finding_lines(finding, show_location, width))
        if result.budget is not None and result.image is not None:
            out += wrapped("  ", budget_line(result.budget), width, 4)
        for note in result.notes:
            out += wrapped(f"  {click.style('note:', fg='cyan')} ", for_terminal(note), width, 8)
        if result.suppressed:
            out.append(f"  ({len(result.suppressed)} suppressed)")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n" if out else ""
