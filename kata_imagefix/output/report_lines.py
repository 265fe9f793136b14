"""The size report's sentences every format shows: the headline, the verdict, how the baseline compared."""

from __future__ import annotations

from ..report.model import Report
from ..sizes import human_size
from .words import plural


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
    # the gates asked for and held, so a PASS says what it passed (`--budget 800MB`: 162.0 MB ≤ 800.0 MB)
    held = "".join(f"{g.name} ({g.note if g.note else f'{g.actual} ≤ {g.limit}'}); " for g in report.gates)
    if not (budget.fits_create_timeout and budget.fits_memory):  # the gates pass, the pod would not start
        return f"WARNING: no gate crossed, but on Kata: {held}{timing}; {room}"
    return f"PASS: {held}{timing}; {room}"
