"""GNU-style `FILE:LINE: severity: RULE message`, one finding a line (editors and CI annotators)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rules.result import ScanResult
    from . import RenderOptions
from .untrusted import for_terminal


def chunks(results: Iterable[ScanResult], options: RenderOptions) -> Iterator[str]:
    """One line a finding, as the results come."""
    for result in results:
        for finding in result.findings:
            where = finding.file or result.subject
            if finding.line is not None:
                where += f":{finding.line}"
            fix = f" (fix: {finding.fix})" if finding.fix else ""
            line = f"{where}: {finding.severity.label}: {finding.rule} {finding.message}{fix}"
            yield for_terminal(line) + "\n"
