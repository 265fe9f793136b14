"""GitLab code quality (Code Climate) JSON: one array of issues, as GitLab's merge request widget reads it.

Fields per GitLab's documentation: description, check_name, fingerprint (stable
across runs), severity (info, minor, major, critical, blocker), location.path
and location.lines.begin. Image findings have no file: their path is the image
reference and the line 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..rules.finding import Severity
from .untrusted import for_terminal

if TYPE_CHECKING:
    from ..rules.result import ScanResult
    from . import RenderOptions

_SEVERITY = {Severity.INFO: "info", Severity.WARNING: "minor", Severity.ERROR: "major"}


def _issue(result: ScanResult, finding) -> dict:
    path = finding.file or result.subject
    line = finding.line or 1
    key = f"{finding.rule}|{path}|{line}|{finding.message}"
    fix = f" Fix: {finding.fix}" if finding.fix else ""
    return {
        "type": "issue",
        "description": for_terminal(f"{finding.rule}: {finding.message}{fix}"),  # shown as text
        "check_name": finding.rule,
        "categories": ["Bug Risk"],
        "fingerprint": hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest(),
        "severity": _SEVERITY[finding.severity],
        "location": {"path": path, "lines": {"begin": line}},
    }


def chunks(results: Iterable[ScanResult], options: RenderOptions) -> Iterator[str]:
    """The array in pieces, an issue as each finding comes: the text of `json.dumps(issues, indent=2)`."""
    first = True
    for result in results:
        for finding in result.findings:
            text = json.dumps(_issue(result, finding), indent=2).replace("\n", "\n  ")
            yield ("[\n  " if first else ",\n  ") + text
            first = False
    yield "[]\n" if first else "\n]\n"
