"""`k8s check` (and `merge` of its shards) for people: totals first, then each cause once, worst first.

A fleet has few causes and many containers: one unreachable registry is one
finding listing the containers that name it, not a line per container. The
per-workload detail stays in JSON (and SARIF). The markdown fits a pull-request
comment (GitHub stops at 65,536 characters): whatever does not fit is summarised
in one line, and `--output FILE` writes the whole report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..rules.finding import Finding, Severity
from ..rules.result import ScanResult
from .untrusted import for_markdown, for_markdown_code, for_terminal
from .words import plural

MARKDOWN_LIMIT = 65_536  # characters of a GitHub comment
SHOWN_PLACES = 20  # containers listed under a cause in text; the rest are counted
MARKDOWN_PLACES = 5  # ... and in a markdown table's cell
_CONTAINER = re.compile(r"^container '[^']*':? ")


@dataclass
class Cause:
    """Findings that say the same thing about different containers."""

    rule: str
    severity: Severity
    message: str  # without the container's name
    fix: str | None
    places: list[tuple[str, str, str]] = field(default_factory=list)  # (workload, container, file:line)


def causes(results: Iterable[ScanResult]) -> list[Cause]:
    """Findings grouped by rule, message (the container's name taken out) and fix; worst first, then the
    causes that hit most containers."""
    return [cause for cause, _ in tally(results, None, places=None).ordered()]


def _where(finding: Finding) -> str:
    if finding.file and finding.line:
        return f"{finding.file}:{finding.line}"
    return finding.file or ""


def by_rule(results: Iterable[ScanResult]) -> dict[tuple[str, str], int]:
    """(rule, severity) -> findings, most first."""
    counts: dict[tuple[str, str], int] = {}
    for result in results:
        for finding in result.findings:
            key = (finding.rule, finding.severity.label)
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def totals_line(results: list[ScanResult] | int, totals: dict[str, Any] | None, errors: list) -> str:
    totals = totals or {}
    containers = totals.get("containers")
    images = totals.get("image_refs")
    unreadable = totals.get("unreadable_refs") or []
    audited = results if isinstance(results, int) else len(results)
    parts = [f"{plural(audited, 'workload')} audited"]
    if containers is not None:
        parts.append(plural(containers, "container"))
    if images is not None:
        parts.append(plural(len(images), "image") + (f" ({len(unreadable)} unreadable)" * bool(unreadable)))
    if errors:
        parts.append(plural(len(errors), "input error"))
    skipped = sum((totals.get("skipped") or {}).values())
    if skipped:
        parts.append(f"{skipped} skipped")
    if totals.get("shard"):
        parts.append(f"shard {totals['shard']}")
    return ", ".join(parts)


def severity_line(results: list[ScanResult]) -> str:
    return _severities({s: sum(1 for r in results for f in r.findings if f.severity is s) for s in Severity})


def _severities(counts: dict[Severity, int]) -> str:
    return ", ".join(plural(n, s.label) if s is not Severity.INFO else f"{n} info"
                     for s, n in sorted(counts.items(), reverse=True) if n) or "no findings"


@dataclass
class Tally:
    """What the text report says of the results, folded one result at a time: the counts, and of each
    cause its count and the first SHOWN_PLACES places (a 100,000-workload run's results are never held)."""

    workloads: int = 0
    severities: dict[Severity, int] = field(default_factory=dict)
    rules: dict[tuple[str, str], int] = field(default_factory=dict)
    causes: dict[tuple, tuple[Cause, list[int]]] = field(default_factory=dict)  # key -> (cause, [count])
    failing: bool = False
    places: int | None = SHOWN_PLACES  # kept of each cause (None: all)

    def ordered(self) -> list[tuple[Cause, int]]:
        """(cause, containers) worst first, then the causes that hit most containers."""
        found = sorted(self.causes.values(),
                       key=lambda c: (-c[0].severity, -c[1][0], c[0].rule, c[0].message))
        return [(cause, count) for cause, (count,) in found]

    def add(self, result: ScanResult, fail_on: Severity | None) -> None:
        self.workloads += 1
        for finding in result.findings:
            self.severities[finding.severity] = self.severities.get(finding.severity, 0) + 1
            rule = (finding.rule, finding.severity.label)
            self.rules[rule] = self.rules.get(rule, 0) + 1
            message = _CONTAINER.sub("", finding.message, count=1)
            key = (finding.rule, finding.severity, message, finding.fix)
            cause, count = self.causes.setdefault(
                key, (Cause(finding.rule, finding.severity, message, finding.fix), [0]))
            count[0] += 1
            if self.places is None or len(cause.places) < self.places:
                cause.places.append((result.subject, str((finding.data or {}).get("container", "")),
                                     _where(finding)))
            self.failing = self.failing or (fail_on is not None and finding.severity >= fail_on)


def tally(results: Iterable[ScanResult], fail_on: Severity | None, *,
          places: int | None = SHOWN_PLACES) -> Tally:
    out = Tally(places=places)
    for result in results:
        out.add(result, fail_on)
    return out


def render_text(results: list[ScanResult] | Tally, fail_on: Severity | None, totals: dict[str, Any] | None,
                errors: list) -> str:
    import click

    from .words import COLOURS

    counted = results if isinstance(results, Tally) else tally(results, fail_on)
    title = click.style("imagefix k8s check", bold=True)
    out = [f"{title}: {for_terminal(totals_line(counted.workloads, totals, errors))}"]
    out.append(f"findings: {_severities(counted.severities)}")
    rules = dict(sorted(counted.rules.items(), key=lambda item: (-item[1], item[0])))
    if rules:
        out.append("by rule: " + ", ".join(f"{rule} {label} x{n}" for (rule, label), n in rules.items()))
    for cause, count in counted.ordered():
        label = click.style(f"{cause.severity.label:<7}", fg=COLOURS[cause.severity], bold=True)
        out += ["", f"{label} {click.style(cause.rule, bold=True)}  {for_terminal(cause.message)}"
                    + (f"  ({plural(count, 'container')})" if count > 1 else "")]
        if cause.fix:
            out.append(f"        {click.style('fix:', fg='green')} {for_terminal(cause.fix)}")
        for workload, container, where in cause.places[:SHOWN_PLACES]:
            out.append(for_terminal(f"        {where}: {workload}" + (f" {container}" if container else "")))
        if count > SHOWN_PLACES:
            out.append(f"        ... and {count - SHOWN_PLACES} more (--format json lists each)")
    skipped = (totals or {}).get("skipped") or {}
    if skipped or errors:
        out.append("")
    if skipped:
        out.append(for_terminal("skipped: " + ", ".join(f"{plural(n, 'workload')} {reason}"
                                                        for reason, n in skipped.items())))
    for note in (totals or {}).get("notes") or []:
        out.append(f"  {click.style('note:', fg='cyan')} {for_terminal(note)}")
    for where, message in errors:
        out.append(f"  {click.style('error:', fg='red')} {for_terminal(f'{where}: {message}')}")
    mark = click.style("✗ FAIL", fg="red", bold=True) if counted.failing or errors else \
        click.style("✓ ok", fg="green", bold=True)
    out += ["", f"{mark}  {_severities(counted.severities)}"]
    return "\n".join(out) + "\n"


_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def _cell(text: object) -> str:
    return for_markdown(text)  # messages quote image and manifest data: never markup or HTML


def render_markdown(results: list[ScanResult] | Tally, totals: dict[str, Any] | None, errors: list,
                    limit: int | None = MARKDOWN_LIMIT) -> str:
    """Totals, the causes worst first as a table; within `limit` characters, the rest in one line."""
    counted = results if isinstance(results, Tally) else tally(results, None, places=MARKDOWN_PLACES)
    totals_text = _cell(totals_line(counted.workloads, totals, errors))
    head = [f"**imagefix k8s check**: {totals_text}; {_severities(counted.severities)}", ""]
    rules = dict(sorted(counted.rules.items(), key=lambda item: (-item[1], item[0])))
    if rules:
        head += ["| rule | severity | findings |", "|---|---|---|"]
        head += [f"| {rule} | {label} | {n} |" for (rule, label), n in rules.items()]
        head.append("")
    tail = []
    skipped = (totals or {}).get("skipped") or {}
    if skipped:
        tail.append("Skipped: " + ", ".join(f"{plural(n, 'workload')} {_cell(reason)}"
                                            for reason, n in skipped.items()) + ".")
    for where, message in errors:
        tail.append(f"- ❌ input error: `{for_markdown_code(where)}`: {_cell(message)}")
    found = counted.ordered()
    if not found:
        return "\n".join([*head, "No findings.", "", *tail]) + "\n"
    rows = ["| | rule | cause | containers | where | fix |", "|---|---|---|---|---|---|"]
    budget = None if limit is None else limit - len("\n".join(head + tail)) - 400
    used = sum(len(r) + 1 for r in rows)
    shown = 0
    for cause, count in found:
        where = "<br>".join(f"`{for_markdown_code(w)}` {_cell(workload)} {_cell(c)}".rstrip()
                            for workload, c, w in cause.places[:MARKDOWN_PLACES])
        if count > MARKDOWN_PLACES:
            where += f"<br>... {count - MARKDOWN_PLACES} more"
        row = (f"| {_ICON[cause.severity.label]} | {cause.rule} | {_cell(cause.message)} | {count} | "
               f"{where} | {_cell(cause.fix or '')} |")
        if budget is not None and used + len(row) + 1 > budget:
            break
        rows.append(row)
        used += len(row) + 1
        shown += 1
    rest = found[shown:]
    if rest:
        hidden = sum(count for _, count in rest)
        worst = max(c.severity for c, _ in rest).label
        more = f"{plural(len(rest), 'more cause')} ({plural(hidden, 'finding')}, the worst {worst})"
        verb = "does" if len(rest) == 1 else "do"
        rows += ["", f"... {more} {verb} not fit in a comment: `--output FILE` writes the whole report."]
    return "\n".join([*head, *rows, "", *tail]).rstrip("\n") + "\n"


def render_json_stream(results: Iterable[ScanResult], fail_on: Severity | None, profile: str,
                       finish: Callable[[], tuple[list, dict[str, Any] | None]]) -> Iterator[str]:
    """The JSON report of json_out.render (key "workloads"), byte for byte, written one workload at a
    time: a 100,000-workload report is never one document in memory. `finish` is called once the
    results are consumed, for what follows them (the errors and the totals)."""
    from .. import __version__
    from .json_out import SCHEMA_VERSION, result_dict

    head = json.dumps({"tool": {"name": "imagefix", "version": __version__}, "schema_version": SCHEMA_VERSION,
                       "profile": profile, "fail_on": fail_on.label if fail_on else "never"}, indent=2)
    yield head[:-2] + ',\n  "workloads": ['
    counts = {s.label: 0 for s in Severity}
    separator = "\n    "
    for result in results:
        for finding in result.findings:
            counts[finding.severity.label] += 1
        item = json.dumps(result_dict(result, fail_on, "workload"), indent=2)
        yield separator + item.replace("\n", "\n    ")
        separator = ",\n    "
    errors, totals = finish()
    tail: dict[str, Any] = {"errors": [{"reference": ref, "error": msg} for ref, msg in errors],
                            "summary": counts}
    if totals is not None:
        tail["totals"] = totals
    yield ("]" if separator == "\n    " else "\n  ]") + "," + json.dumps(tail, indent=2)[1:] + "\n"
