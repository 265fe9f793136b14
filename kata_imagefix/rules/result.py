"""What a run of the rules gives for one subject (an image, a file, a workload): the results every
command builds and every output format renders, below the runner (scan.py) and the commands."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..image.model import Image
from ..model.budget import BudgetEstimate
from .finding import Finding


@dataclass
class ScanResult:
    subject: str  # the reference or file as the user gave it
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    image: Image | None = None
    budget: BudgetEstimate | None = None
    notes: list[str] = field(default_factory=list)
    size_estimated: bool | None = None  # a workload's: whether any of its images' sizes is estimated
