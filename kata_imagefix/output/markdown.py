"""Findings as a markdown table, for a pull request comment or a CI step summary."""

from __future__ import annotations

from ..rules.result import ScanResult
from .untrusted import for_markdown

_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def _cell(text: object) -> str:
    return for_markdown(text)  # subjects, messages and fixes quote image data: never markup or HTML


def render(results: list[ScanResult]) -> str:
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
