"""Markdown for a pull request comment or a CI step summary: findings as a table, the size report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rules.result import ScanResult
from ..sizes import human_size
from .untrusted import for_markdown, for_markdown_code
from .words import plural

if TYPE_CHECKING:
    from ..report.model import Report
    from . import Rendered, RenderOptions

_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def _cell(text: object) -> str:
    return for_markdown(text)  # subjects, messages and fixes quote image data: never markup or HTML


def render(data: Rendered, options: RenderOptions) -> str:
    if isinstance(data, list):
        if options.key == "workloads":  # k8s check: totals, then each cause once, within a comment
            from . import k8s_report

            limit = k8s_report.MARKDOWN_LIMIT if options.limit is None else options.limit or None
            return k8s_report.render_markdown(data, options.totals, options.errors, limit)
        return findings_markdown(data)
    from ..report.model import Report

    if not isinstance(data, Report):
        raise TypeError(f"markdown renders findings or a size report, not {type(data).__name__}")
    return report_markdown(data)


def findings_markdown(results: list[ScanResult]) -> str:
    findings = [(r, f) for r in results for f in r.findings]
    counts = {label: sum(1 for _, f in findings if f.severity.label == label) for label in _ICON}
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    lines = [f"**imagefix**: {len(results)} checked, {summary}", ""]
    if not findings:
        return "\n".join([*lines, "No findings.", ""])
    lines += ["| | subject | where | rule | message | fix |", "|---|---|---|---|---|---|"]
    for result, finding in findings:
        where = f"{finding.file}:{finding.line}" if finding.file and finding.line else (finding.file or "")
        lines.append(f"| {_ICON[finding.severity.label]} | {_cell(result.subject)} | {_cell(where)} | "
                     f"{finding.rule} | {_cell(finding.message)} | {_cell(finding.fix or '')} |")
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    """The size report: verdict, layers, baseline, largest files and waste, gates."""
    from .report_lines import comparison, headline, verdict

    lines = [
        f"### {for_markdown(headline(report))}",
        "",
        f"**{for_markdown(verdict(report))}**",
        "",
        "| # | layer | created by | unpacked | compressed | share |",
        "|--:|---|---|--:|--:|--:|",
    ]
    for row in report.layers:
        created = for_markdown(row.created_by)  # image data: no HTML, markup or line break gets through
        lines.append(
            f"| {row.index} | `{row.digest[7:19]}`{' (base)' if row.in_base else ''} | {created} | "
            f"{human_size(row.unpacked)}{'~' if row.estimated else ''} | "
            f"{human_size(row.compressed) if row.compressed is not None else '-'} | {row.share:.0%} |"
        )
    if report.baseline is not None:
        b = report.baseline
        lines += [
            "",
            f"Baseline `{for_markdown_code(b.reference)}`: {human_size(b.unpacked)} -> "
            f"{human_size(report.unpacked)}; "
            f"{plural(len(b.added), 'layer')} added, {b.removed} removed; "
            f"{for_markdown(comparison(report))}.",
        ]
    if report.files is not None and report.files.files:
        lines += ["", f"Largest files ({report.files.file_count} visible):", "",
                  "| file | bytes | layer |", "|---|--:|--:|"]
        lines += [f"| /{for_markdown(path)} | {human_size(size)} | {layer} |"  # names from the image: inert
                  for path, size, layer in report.files.files]
    if report.files is not None and report.files.directories:
        lines += ["", "| directory | bytes |", "|---|--:|"]
        lines += [f"| /{for_markdown(path)} | {human_size(size)} |"
                  for path, size in report.files.directories]
    if report.files is not None and report.files.waste:
        lines += [
            "",
            f"Waste: **{human_size(report.files.waste_bytes)}** in files hidden by later layers.",
            "",
            "| file | bytes | how |",
            "|---|--:|---|",
        ]
        lines += [
            f"| `/{for_markdown_code(w.path)}` | {human_size(w.bytes)} | {w.how} in layer {w.hidden_by} |"
            for w in report.files.waste[:10]
        ]
    if report.gates:
        lines += ["", "| gate | limit | actual | |", "|---|--:|--:|---|"]
        lines += [
            f"| {g.name} | {g.limit} | {g.actual} | {'❌' if g.crossed else '✅'}"
            f"{' ' + for_markdown(g.note) if g.note else ''} |" for g in report.gates
        ]
    return "\n".join(lines) + "\n"
