"""One formatter per format, all fed the same ScanResult list; FINDING_FORMATS is the one table of them.

Every command that reports findings builds its `--format` choice from this
table, so a new format is one entry here and one module beside this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class FindingFormat:
    name: str
    module: str  # the module beside this file that renders it
    what: str  # for --help

    def render(self, results: list, *, fail_on: Any, profile: str, errors: list, key: str,
               show_location: bool, totals: dict | None = None, limit: int | None = None) -> str:
        """`totals` (k8s check: what was audited and skipped) switch text and markdown to the grouped
        report of output/k8s_report.py; JSON carries them beside the workloads."""
        if key == "workloads" and self.name in ("text", "markdown"):
            from . import k8s_report

            if self.name == "text":
                return k8s_report.render_text(results, fail_on, totals, errors)
            return k8s_report.render_markdown(results, totals, errors,
                                              k8s_report.MARKDOWN_LIMIT if limit is None else limit or None)
        renderer: Callable[..., str] = import_module(f"{__name__}.{self.module}").render
        if self.name == "json":
            return renderer(results, fail_on, profile=profile, errors=errors, key=key, totals=totals)
        if self.name == "text":
            return renderer(results, fail_on, show_location=show_location)
        return renderer(results)


FINDING_FORMATS: dict[str, FindingFormat] = {f.name: f for f in (
    FindingFormat("text", "text", "for a terminal (grouped, with fixes)"),
    FindingFormat("json", "json_out", "stable JSON: findings arrays, errors, summary"),
    FindingFormat("sarif", "sarif", "SARIF 2.1.0 for code scanning"),
    FindingFormat("gnu", "gnu", "FILE:LINE: severity: RULE message, for editors and annotators"),
    FindingFormat("gitlab", "gitlab", "GitLab code quality report (Code Climate JSON)"),
    FindingFormat("codeclimate", "gitlab", "the same as gitlab"),
    FindingFormat("markdown", "markdown", "a table for a pull request comment"),
)}

# The size report's formats (output/report_formats.py renders each).
REPORT_FORMATS = ("text", "json", "markdown", "html")
