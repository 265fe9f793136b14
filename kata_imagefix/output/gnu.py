"""GNU-style `FILE:LINE: severity: RULE message`, one finding a line (editors and CI annotators)."""

from __future__ import annotations

from ..rules.result import ScanResult
from .untrusted import for_terminal


def render(results: list[ScanResult]) -> str:
    lines = []
    for result in results:
        for finding in result.findings:
            where = finding.file or result.subject
            if finding.line is not None:
                where += f":{finding.line}"
            fix = f" (fix: {finding.fix})" if finding.fix else ""
            line = f"{where}: {finding.severity.label}: {finding.rule} {finding.message}{fix}"
            lines.append(for_terminal(line))
    return "".join(line + "\n" for line in lines)
