"""What the Kata config rules look at: the config with its drop-ins, and the images' budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import Finding
from .base import REGISTRY

if TYPE_CHECKING:
    from ..budget import BudgetEstimate
    from ..kata import KataConfig

TIMEOUT_KEY = "create_container_timeout"  # the same names kata.py uses
MEMORY_KEY = "default_memory"


@dataclass
class KataSubject:
    config: KataConfig
    estimates: list[tuple[str, BudgetEstimate]] = field(default_factory=list)  # (image ref, estimate)

    def finding(self, rule_id: str, message: str, fix: str | None, file: str, line: int | None,
                **data: Any) -> Finding:
        return Finding(rule_id, REGISTRY[rule_id].severity, message, fix, file, line, data=data)
