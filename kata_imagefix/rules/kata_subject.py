"""What the Kata config rules look at: the config with its drop-ins, and the images' budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..budget import BudgetEstimate
from ..kata import KataConfig
from ..model import Finding
from .base import REGISTRY


@dataclass
class KataSubject:
    config: KataConfig
    estimates: list[tuple[str, BudgetEstimate]] = field(default_factory=list)  # (image ref, estimate)

    def finding(self, rule_id: str, message: str, fix: str | None, file: str, line: int | None,
                **data: Any) -> Finding:
        return Finding(rule_id, REGISTRY[rule_id].severity, message, fix, file, line, data=data)
