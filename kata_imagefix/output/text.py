"""Text for a terminal: findings as compact per-subject verdicts, the size report, what `fix` did.

Coloured on a terminal, plain in pipes (click strips styles). On a terminal a
finding's message and fix wrap to its width under their own column; in a pipe
each stays on one line (grep and CI logs see whole messages).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import click

from ..rules.finding import Finding, Severity
from ..rules.result import ScanResult
from ..sizes import human_size
from .untrusted import for_terminal
from .words import COLOURS, plural

if TYPE_CHECKING:
    from ..fix.run import FixOutcome
    from ..model.budget import BudgetEstimate
    from ..report.model import Report
    from . import Rendered, RenderOptions

def render(data: Rendered, options: RenderOptions) -> str:
    if isinstance(data, list):
        if options.key == "workloads":  # k8s check: totals, then each cause once
            from . import k8s_report

            return k8s_report.render_text(data, options.fail_on, options.totals, options.errors)
        return findings_text(data, options.fail_on, show_location=options.show_location)
    from ..report.model import Report

    if isinstance(data, Report):
        return report_text(data, options.to_terminal)
    return "".join(line + "\n" for line in fix_lines(data))


INDENT = 18  # "  warning KIF201  ": where a message starts
PIPE_WIDTH = 120  # the size report's width in a pipe; on a terminal, the terminal's


def terminal_width() -> int | None:
    """Columns of the terminal stdout is, or None in a pipe (nothing wraps there)."""
    import sys

    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    import shutil  # a terminal only: shutil brings bz2 and lzma, which a pipe (a CI job) never needs

    return max(shutil.get_terminal_size().columns, 40)


def wrapped(first: str, text: str, width: int | None, indent: int = INDENT) -> list[str]:
    """`first` (styled, `indent` columns wide) then text, wrapped to width under itself."""
    if width is None or indent + len(text) <= width:
        return [first + text]
    import textwrap

    pieces = textwrap.wrap(text, max(width - indent, 20), break_on_hyphens=False) or [""]
    return [first + pieces[0], *(" " * indent + piece for piece in pieces[1:])]


def _finding_lines(finding: Finding, show_location: bool, width: int | None = None) -> list[str]:
    label = click.style(f"{finding.severity.label:<7}", fg=COLOURS[finding.severity], bold=True)
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


def budget_line(b: BudgetEstimate) -> str:
    fits = "fits" if b.fits_memory else "does NOT fit"
    timeout = (f"create_container_timeout {b.model.create_timeout_s} s" if b.fits_create_timeout
               else f"above create_container_timeout {b.model.create_timeout_s} s: set "
                    f"{b.recommended_timeout_seconds} s")
    return (f"budget ({b.size_said} size): pull ≈ {b.pull_seconds:.0f} s "
            f"(needs {b.needed_timeout_seconds:.0f} s with margin; "
            f"{timeout}), {human_size(b.unpacked_bytes)} of {human_size(b.room_bytes)} guest room: {fits}")


def findings_text(results: list[ScanResult], fail_on: Severity | None, *, show_location: bool = False) -> str:
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


def report_text(report: Report, to_terminal: bool = True) -> str:
    """The size report as a rich table, wrapped to the terminal (or PIPE_WIDTH)."""
    from rich.console import Console

    from .report_lines import comparison, headline
    from .report_lines import verdict as report_verdict
    from .report_table import layer_table

    buffer = io.StringIO()
    width = (terminal_width() if to_terminal else None) or PIPE_WIDTH
    # markup off: a layer's created_by or a file name holding [/] or [link=...] is text, not rich markup
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, markup=False,
                      emoji=False, highlight=False)
    console.print(for_terminal(headline(report)), style="bold")
    table, left_out = layer_table(report.layers, width)
    console.print(table)
    if left_out:
        console.print(f"(left out at {width} columns: {', '.join(left_out)}; a wider terminal or "
                      "--format json has them)")
    base = report.base
    console.print(for_terminal(
        f"base: {base['reference']} ({plural(base['layers'], 'layer')}, {human_size(report.base_bytes)}; "
        f"found by {base['found_by']})"
        if base["reference"]
        else f"base: {base['notes'][-1]}"
    ))
    if report.baseline is not None:
        b = report.baseline
        changed = {True: "changed", False: "unchanged", None: "unknown"}[b.base_changed]
        console.print(for_terminal(
            f"baseline {b.reference}: {human_size(b.unpacked)}; {plural(len(b.added), 'layer')} added, "
            f"{b.removed} removed; base {changed}; {comparison(report)}"
        ))
    if report.files is not None:
        f = report.files
        console.print(
            f"files ({report.walk}): {f.file_count} visible; waste {human_size(f.waste_bytes)} "
            f"in {len(f.waste)} hidden copies"
        )
        for title, rows in (
            ("largest files", [(p, s) for p, s, _ in f.files]),
            ("largest directories", f.directories),
            (
                "waste",
                [
                    (f"{w.path} ({w.how} in layer {w.hidden_by})", w.bytes)
                    for w in f.waste[: len(f.files) or 10]
                ],
            ),
        ):
            if rows:
                console.print(f"  {title}:")
                for path, size in rows:
                    console.print(f"    {human_size(size):>10}  /{for_terminal(path)}")
    console.print(for_terminal(report_verdict(report)), style="bold")  # a gate's note names the references
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())  # no padding at the ends


def fix_lines(outcome: FixOutcome) -> list[str]:
    """What `imagefix fix` did, a line each."""
    if outcome.kind == "in-registry":
        done = outcome.registry
        lines = [f"{item['platform']}: {item['change']}" for item in done.platforms]
        lines.append(f"pushed {done.target}@{done.digest} (config and manifests only; the "
                     f"{len(done.platforms[0]['layers'])} layers were reused, verified by a registry scan)")
        return lines
    if outcome.kind == "dockerfile":
        return [f"wrote {outcome.written}: {outcome.plan.change}", *(f"note: {n}" for n in outcome.notes)]
    local, plan = outcome.local, outcome.plan
    checked = local.verification
    how = (f"id in a container says {checked.uid}:{checked.gid}" if checked.ran
           else "config checked (no `id` in the image to run)")
    user = checked.config_user or '""'
    lines = [f"built {local.tag} ({local.image_id[:19]}): {plan.change}",
             f"verified in the engine (as docker run sees it): config user {user}; {how}; no KIF101; Env, "
             "WorkingDir, Entrypoint, Cmd, ports, volumes and labels as in the source"]
    for name, before, after in local.rows:
        if name == "unpacked size":
            before, after = human_size(before), human_size(after)
        lines.append(f"  {name:14} {before!s:>12} -> {after}")
    if local.added:
        lines.append(f"added by the runtime base (allowed): {', '.join(local.added)}")
    lines += [f"note: {note}" for note in outcome.notes]
    if local.pushed_digest:
        lines.append(f"pushed {local.tag}@{local.pushed_digest}")
    return lines
