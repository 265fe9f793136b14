"""What the Kata config rules look at: the config with its drop-ins, and the images' budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..kata import MEMORY_KEY, TIMEOUT_KEY  # noqa: F401 - the rules read them from here
from .base import CATALOGUE
from .finding import Finding

if TYPE_CHECKING:
    from ..kata.config import KataConfig
    from ..model.budget import BudgetEstimate



@dataclass
class KataSubject:
    config: KataConfig
    estimates: list[tuple[str, BudgetEstimate]] = field(default_factory=list)  # (image ref, estimate)

    def finding(self, rule_id: str, message: str, fix: str | None, file: str, line: int | None,
                **data: Any) -> Finding:
        return Finding(rule_id, CATALOGUE[rule_id].severity, message, fix, file, line, data=data)
