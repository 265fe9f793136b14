"""Compact per-subject verdicts: coloured on a terminal, plain in pipes (click strips styles)."""

from __future__ import annotations

import click

from ..rules.finding import Finding, Severity
from ..scan import ScanResult
from ..sizes import human_size
from .untrusted import for_terminal

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _finding_lines(finding: Finding, show_location: bool) -> list[str]:
    label = click.style(f"{finding.severity.label:<7}", fg=_COLOURS[finding.severity], bold=True)
    where = ""
    if show_location and finding.line is not None:
        where = f"{for_terminal(finding.file)}:{finding.line}: "
    lines = [f"  {label} {click.style(finding.rule, bold=True)}  {where}{for_terminal(finding.message)}"]
    if finding.fix:
        lines.append(f"  {'':7} {'':6}  {click.style('fix:', fg='green')} {for_terminal(finding.fix)}")
    return lines


def image_summary(result: ScanResult) -> str:
    image = result.image
    if image is None:
        return ""
    estimated = " (estimated)" if image.size_estimated else ""
    user = image.user if image.user else '"" (root)'
    parts = [f"user {user}", f"{human_size(image.unpacked_size)} unpacked{estimated}",
             f"{len(image.layers)} layers", image.platform]
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


def render(results: list[ScanResult], fail_on: Severity | None, *, show_location: bool = False) -> str:
    out: list[str] = []
    for result in results:
        out.append(click.style(for_terminal(result.subject), bold=True) + "  " + verdict(result, fail_on))
        summary = image_summary(result)
        if summary:
            out.append(summary)
        for finding in result.findings:
            out.extend(_finding_lines(finding, show_location))
        if result.budget is not None and result.image is not None:
            b = result.budget
            out.append(
                f"  budget: pull ≈ {b.pull_seconds:.0f} s (needs {b.needed_timeout_seconds:.0f} s "
                f"with margin; create_container_timeout {b.model.create_timeout_s} s), "
                f"{human_size(b.unpacked_bytes)} of {human_size(b.room_bytes)} guest room"
            )
        for note in result.notes:
            out.append(f"  {click.style('note:', fg='cyan')} {for_terminal(note)}")
        if result.suppressed:
            out.append(f"  ({len(result.suppressed)} suppressed)")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n" if out else ""
