"""Wording the formats share."""

from __future__ import annotations

from ..rules.finding import Severity

COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}  # of a severity


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def no_kata_workload(where: str, skipped: int) -> str:
    """The note of a `k8s check` that found nothing to audit in `where`: what it skipped and how to widen."""
    if not skipped:
        return f"no Kata workload in {where} (and no other workload: nothing to audit)"
    return (f"no Kata workload in {where} ({plural(skipped, 'other workload')} skipped; --all audits every "
            "pod, --runtime-class names the classes)")
