"""The output formats: one module per format, each with `render(data, options) -> str`, or, for
findings it can write as they come, `chunks(results, options)` yielding the text in pieces.

`data` is what a command reports: the findings of a run (a list of ScanResult),
a size report (report.model.Report) or what `imagefix fix` did (fix.run.FixOutcome);
a format says in FORMATS which of them it renders. Every command builds its
`--format` choice from this table, so a new format is one entry here and one
module beside this file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from ..fix.run import FixOutcome
    from ..report.model import Report
    from ..rules.finding import Severity
    from ..scan import ScanResult

    Rendered = list[ScanResult] | Report | FixOutcome

Kind = Literal["findings", "report", "fix"]


class RenderOptions(msgspec.Struct, frozen=True):
    """How to render, the same for every format; each reads what applies to it."""

    fail_on: Severity | None = None  # findings at or above it fail a subject
    profile: str = "kata-tdx"
    errors: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (where, message): failed inputs
    key: str = "images"  # what the results are: images, files or workloads (k8s check: the grouped report)
    show_location: bool = False  # text: FILE:LINE before a message
    totals: dict[str, Any] | None = None  # k8s check: what was audited and skipped
    limit: int | None = None  # k8s check markdown: characters (None: a PR comment's, 0: no limit)
    to_terminal: bool = True  # text: as wide as the terminal (else as wide as in a pipe)


class Format(msgspec.Struct, frozen=True):
    name: str
    module: str  # the module beside this file that renders it
    what: str  # for --help
    kinds: frozenset[Kind] = frozenset({"findings"})

    def render(self, data: Rendered, options: RenderOptions) -> str:
        module = import_module(f"{__name__}.{self.module}")
        if not hasattr(module, "chunks"):
            text: str = module.render(data, options)
            return text
        if not isinstance(data, list):
            raise TypeError(f"{self.name} renders findings, not {type(data).__name__}")
        return "".join(module.chunks(data, options))

    def chunks(self, results: Iterable[ScanResult], options: RenderOptions) -> Iterator[str]:
        """Findings rendered in pieces as the results come, where the format can (sarif, gnu, gitlab);
        else the whole text once they are all in."""
        module = import_module(f"{__name__}.{self.module}")
        if hasattr(module, "chunks"):
            yield from module.chunks(results, options)
        else:
            yield self.render(list(results), options)


_ALL: frozenset[Kind] = frozenset({"findings", "report", "fix"})
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("text", "text", "for a terminal (grouped, with fixes)", _ALL),
    Format("json", "json_out", "stable JSON: findings arrays, errors, summary", _ALL),
    Format("sarif", "sarif", "SARIF 2.1.0 for code scanning"),
    Format("gnu", "gnu", "FILE:LINE: severity: RULE message, for editors and annotators"),
    Format("gitlab", "gitlab", "GitLab code quality report (Code Climate JSON)"),
    Format("codeclimate", "gitlab", "the same as gitlab"),
    Format("markdown", "markdown", "a table for a pull request comment", frozenset({"findings", "report"})),
    Format("html", "html", "one HTML page", frozenset({"report"})),
)}

FINDING_FORMATS: dict[str, Format] = {n: f for n, f in FORMATS.items() if "findings" in f.kinds}
REPORT_FORMATS = tuple(n for n, f in FORMATS.items() if "report" in f.kinds)  # the size report's
FIX_FORMATS = tuple(n for n, f in FORMATS.items() if "fix" in f.kinds)  # what `imagefix fix` did


def render(fmt: str, data: Rendered, options: RenderOptions | None = None) -> str:
    """`data` in the format named `fmt`."""
    return FORMATS[fmt].render(data, options or RenderOptions())
