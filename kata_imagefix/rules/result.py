"""What a run of the rules gives for one subject (an image, a file, a workload): the results every
command builds and every output format renders, below the runner (scan.py) and the commands."""

from __future__ import annotations

import msgspec

from ..image.model import Image
from ..model.budget import BudgetEstimate
from .finding import Finding


class ScanResult(msgspec.Struct):
    subject: str  # the reference or file as the user gave it
    findings: list[Finding] = msgspec.field(default_factory=list)
    suppressed: list[Finding] = msgspec.field(default_factory=list)
    image: Image | None = None
    budget: BudgetEstimate | None = None
    notes: list[str] = msgspec.field(default_factory=list)
    size_estimated: bool | None = None  # a workload's: whether any of its images' sizes is estimated
