"""The size report as text (rich), markdown (pull requests, CI summaries) and HTML (one page)."""

from __future__ import annotations

import io
from typing import Any

from ..report.model import Report, to_dict
from ..sizes import human_size
from .untrusted import for_markdown, for_markdown_code, for_terminal

BASE_COLOUR, APP_COLOUR, WASTE_COLOUR = "#4e79a7", "#f28e2b", "#e15759"


def headline(report: Report) -> str:
    if report.baseline is not None:
        b = report.baseline
        sign = "+" if b.delta >= 0 else "-"
        return (
            f"{report.reference}: {sign}{human_size(abs(b.delta))} ({b.delta_pct:+.1f}%) against "
            f"{b.reference}, now {human_size(report.unpacked)}"
        )
    estimated = " (estimated)" if report.estimated else ""
    layers = len(report.layers)
    return f"{report.reference}: {human_size(report.unpacked)} unpacked{estimated} in {layers} layers"


def verdict(report: Report) -> str:
    crossed = [f"{g.name} ({g.actual} > {g.limit})" for g in report.gates if g.crossed]
    budget = report.budget
    fits = "fits" if budget.fits_memory else "does NOT fit"
    timing = (
        f"guest pull needs ~{budget.needed_timeout_seconds:.0f} s "
        f"(create_container_timeout {budget.model.create_timeout_s} s"
        + ("" if budget.fits_create_timeout else f": set {budget.recommended_timeout_seconds} s")
        + ")"
    )
    if crossed:
        return f"FAIL: {', '.join(crossed)}; {timing}; {fits} the guest"
    return f"PASS: {timing}; the image {fits} the guest ({human_size(budget.room_bytes)} room)"


def render_text(report: Report) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    # markup off: a layer's created_by or a file name holding [/] or [link=...] is text, not rich markup
    console = Console(file=buffer, width=120, force_terminal=False, color_system=None, markup=False,
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
        ("", "left"),
    ):
        table.add_column(column, justify=justify)
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
        f"base: {base['reference']} ({base['layers']} layers, {human_size(report.base_bytes)}; "
        f"found by {base['found_by']})"
        if base["reference"]
        else f"base: {base['notes'][-1]}"
    ))
    if report.baseline is not None:
        b = report.baseline
        changed = {True: "changed", False: "unchanged", None: "unknown"}[b.base_changed]
        console.print(for_terminal(
            f"baseline {b.reference}: {human_size(b.unpacked)}; {len(b.added)} layers added, "
            f"{b.removed} removed; base {changed}"
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
    console.print(verdict(report), style="bold")
    return buffer.getvalue()


def render_markdown(report: Report) -> str:
    lines = [
        f"### {for_markdown(headline(report))}",
        "",
        f"**{verdict(report)}**",
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
            f"{len(b.added)} layers added, {b.removed} removed.",
        ]
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
            f"| {g.name} | {g.limit} | {g.actual} | {'❌' if g.crossed else '✅'} |" for g in report.gates
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
        human_size=human_size,
        version=__version__,
    )


def render(report: Report, fmt: str) -> str:
    """The report in one of output.REPORT_FORMATS."""
    if fmt == "json":
        import json

        from ..report.model import to_dict

        return json.dumps(to_dict(report), indent=2) + "\n"
    return {"markdown": render_markdown, "html": render_html}.get(fmt, render_text)(report)
