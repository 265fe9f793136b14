"""The size report as text (rich), markdown (pull requests, CI summaries) and HTML (one page)."""

from __future__ import annotations

import io
from typing import Any

from ..report.model import Report, to_dict
from ..sizes import human_size
from .text import plural, terminal_width
from .untrusted import for_markdown, for_markdown_code, for_terminal

PIPE_WIDTH = 120  # the text report's width in a pipe; on a terminal, the terminal's

BASE_COLOUR, APP_COLOUR, WASTE_COLOUR = "#4e79a7", "#f28e2b", "#e15759"


def comparison(report: Report) -> str:
    """How the baseline was compared: exact on one basis, or estimated and why."""
    b = report.baseline
    if b is None:
        return ""
    if b.estimated:
        return f"ESTIMATED, not exact: {b.why}"
    if b.basis == "tar":
        return "exact: both sides' layer tar lengths (headers included)"
    return "exact: both sides' file bytes, as docker history counts them"


def headline(report: Report) -> str:
    if report.baseline is not None:
        b = report.baseline
        sign = "+" if b.delta >= 0 else "-"
        return (
            f"{report.reference}: {sign}{human_size(abs(b.delta))} ({b.delta_pct:+.1f}%"
            f"{', estimated' if b.estimated else ''}) against {b.reference}, "
            f"now {human_size(report.unpacked)}"
        )
    estimated = " (estimated)" if report.estimated else ""
    return (f"{report.reference}: {human_size(report.unpacked)} unpacked{estimated} in "
            f"{plural(len(report.layers), 'layer')}")


def verdict(report: Report) -> str:
    crossed = [f"{g.name} ({g.note})" if g.note else f"{g.name} ({g.actual} > {g.limit})"
               for g in report.gates if g.crossed]
    budget = report.budget
    fits = "fits" if budget.fits_memory else "does NOT fit"
    timing = (
        f"guest pull needs ~{budget.needed_timeout_seconds:.0f} s "
        f"(size {budget.size_said}; create_container_timeout {budget.model.create_timeout_s} s"
        + ("" if budget.fits_create_timeout else f": set {budget.recommended_timeout_seconds} s")
        + ")"
    )
    if crossed:
        return f"FAIL: {', '.join(crossed)}; {timing}; {fits} the guest"
    room = f"the image {fits} the guest ({human_size(budget.room_bytes)} room)"
    if not (budget.fits_create_timeout and budget.fits_memory):  # the gates pass, the pod would not start
        return f"WARNING: no gate crossed, but on Kata: {timing}; {room}"
    return f"PASS: {timing}; {room}"


def render_text(report: Report, to_terminal: bool = True) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    width = (terminal_width() if to_terminal else None) or PIPE_WIDTH
    # markup off: a layer's created_by or a file name holding [/] or [link=...] is text, not rich markup
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, markup=False,
                      emoji=False, highlight=False)
    console.print(for_terminal(headline(report)), style="bold")
    table = Table(show_edge=False, pad_edge=False)
    for column, justify in (
        ("#", "right"),
        ("layer", "left"),
        ("created by", "left"),
        ("unpacked", "right"),
        ("compressed", "right"),
        ("share", "right"),
        ("of the image", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "created by",
                         overflow="fold" if column == "created by" else "ellipsis")
    for row in report.layers:
        bar = "█" * max(1, round(row.share * 20)) if row.unpacked else ""
        table.add_row(
            str(row.index),
            row.digest[7:19] + (" base" if row.in_base else ""),
            for_terminal(row.created_by),
            human_size(row.unpacked) + ("~" if row.estimated else ""),
            human_size(row.compressed) if row.compressed is not None else "-",
            f"{row.share:.0%}",
            bar,
        )
    console.print(table)
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
    console.print(for_terminal(verdict(report)), style="bold")  # a gate's note names the references
    return buffer.getvalue()


def render_markdown(report: Report) -> str:
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


def chart(report: Report, width: int = 720, bar: int = 18) -> dict[str, Any]:
    """Geometry of the SVG: one stacked bar (base vs app) and one bar per layer."""
    total = max(report.unpacked, 1)
    x = 0.0
    stack = []
    for row in report.layers:
        w = row.unpacked / total * width
        stack.append(
            {
                "x": round(x, 2),
                "w": round(max(w, 0.5 if row.unpacked else 0), 2),
                "colour": BASE_COLOUR if row.in_base else APP_COLOUR,
                "label": f"layer {row.index}: {human_size(row.unpacked)}",
            }
        )
        x += w
    biggest = max((row.unpacked for row in report.layers), default=1) or 1
    rows = [
        {
            "y": 40 + i * (bar + 6),
            "w": round(max(row.unpacked / biggest * (width - 160), 1), 2),
            "colour": BASE_COLOUR if row.in_base else APP_COLOUR,
            "index": row.index,
            "size": human_size(row.unpacked),
        }
        for i, row in enumerate(report.layers)
    ]
    return {
        "width": width,
        "height": 40 + len(rows) * (bar + 6) + 10,
        "bar": bar,
        "stack": stack,
        "rows": rows,
        "base": BASE_COLOUR,
        "app": APP_COLOUR,
        "waste": WASTE_COLOUR,
    }


def render_html(report: Report) -> str:
    from .. import __version__
    from ..fix.render import environment

    template = environment().get_template("report.html.j2")
    return template.render(
        report=report,
        data=to_dict(report),
        chart=chart(report),
        headline=headline(report),
        verdict=verdict(report),
        comparison=comparison(report),
        human_size=human_size,
        version=__version__,
    )


def render(report: Report, fmt: str, *, to_terminal: bool = True) -> str:
    """The report in one of output.REPORT_FORMATS (text to a file is as wide as in a pipe)."""
    if fmt == "json":
        import json

        from .. import __version__
        from .json_out import SCHEMA_VERSION

        doc = {"tool": {"name": "imagefix", "version": __version__}, "schema_version": SCHEMA_VERSION,
               **to_dict(report)}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "text":
        return render_text(report, to_terminal)
    return {"markdown": render_markdown, "html": render_html}[fmt](report)
