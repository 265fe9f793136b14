"""`imagefix merge`: the JSON results of several runs (shards of a fleet audit) as one report."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ImagefixError
from .app import main
from .options import emit_results, exit_code, format_option

KEYS = {"images": "reference", "files": "file", "workloads": "workload"}


@main.command()
@click.argument("results", metavar="RESULTS.json...", nargs=-1, required=True)
@format_option
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]), default="error",
              show_default=True)
def merge(results: tuple[str, ...], fmt: str, fail_on: str) -> None:
    """Combine JSON results (of scan, lint, kata check or k8s check shards) into one report.

    \b
    Example:
      imagefix merge shard-*.json --format markdown
    """
    from ..rules.finding import Severity

    key, entries, errors, profile = None, [], [], "kata-tdx"
    for path in results:
        doc_key, doc_entries, doc_errors, profile = _read(path)
        if key not in (None, doc_key):
            raise ImagefixError(f"{path}: holds {doc_key}, the others {key}: merge results of one command")
        key = doc_key
        entries += doc_entries
        errors += doc_errors
    threshold = None if fail_on == "never" else Severity.parse(fail_on)
    emit_results(entries, fmt, threshold, profile, errors, key=key or "images", show_location=True)
    raise SystemExit(exit_code(entries, threshold, errors))


def _read(path: str) -> tuple[str, list, list, str]:
    from ..fileio import read_input
    from ..image.documents import load_json, mapping, sequence, text
    from ..rules.finding import Finding, Severity
    from ..scan import ScanResult

    doc = mapping(load_json(read_input(path, "JSON result"), path), path)
    key = next((k for k in KEYS if k in doc), None)
    if key is None:
        raise ImagefixError(f"{path}: not an imagefix JSON result (no images, files or workloads)")
    out = []
    for number, entry in enumerate(sequence(doc[key], f"{path}: {key}")):
        entry = mapping(entry, f"{path}: {key}[{number}]")
        subject = text(entry.get(KEYS[key]), f"{path}: {key}[{number}].{KEYS[key]}")
        lists: dict[str, list[Finding]] = {"findings": [], "suppressed": []}
        for name in lists:
            for index, item in enumerate(sequence(entry.get(name), f"{path}: {key}[{number}].{name}",
                                                  optional=True)):
                where = f"{path}: {key}[{number}].{name}[{index}]"
                item = mapping(item, where)
                try:
                    severity = Severity.parse(str(item.get("severity")))
                except ValueError:
                    raise ImagefixError(f"{where}.severity is not error, warning or info") from None
                lists[name].append(Finding(text(item.get("rule"), f"{where}.rule"), severity,
                                           text(item.get("message"), f"{where}.message"),
                                           text(item.get("fix"), f"{where}.fix", optional=True),
                                           item.get("file"), item.get("line"), item.get("layer"),
                                           data=mapping(item.get("data"), f"{where}.data", optional=True)))
        result = ScanResult(subject, lists["findings"], lists["suppressed"])
        result.notes = [str(n) for n in sequence(entry.get("notes"), f"{path}: notes", optional=True)]
        out.append(result)
    errors: list[tuple[str, Any]] = [(str(e.get("reference")), str(e.get("error")))
                                     for e in sequence(doc.get("errors"), f"{path}: errors", optional=True)
                                     if isinstance(e, dict)]
    return key, out, errors, str(doc.get("profile") or "kata-tdx")
