"""The size report as one HTML page (templates/report.html.j2) with an SVG of its layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..report.model import Report, to_dict
from ..sizes import human_size
from .report_lines import comparison, headline, verdict

if TYPE_CHECKING:
    from . import Rendered, RenderOptions

BASE_COLOUR, APP_COLOUR, WASTE_COLOUR = "#4e79a7", "#f28e2b", "#e15759"


def render(data: Rendered, options: RenderOptions) -> str:
    if not isinstance(data, Report):
        raise TypeError(f"html renders a size report, not {type(data).__name__}")
    return render_report(data)


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


def render_report(report: Report) -> str:
    from .. import __version__
    from ..templating import environment

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
