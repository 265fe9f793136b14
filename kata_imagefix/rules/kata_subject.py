"""What the Kata config rules look at: the config with its drop-ins, and the images' budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..kata import MEMORY_KEY, TIMEOUT_KEY  # noqa: F401 - the rules read them from here
from .finding import Draft

if TYPE_CHECKING:
    from ..kata.config import KataConfig
    from ..model.budget import BudgetEstimate

@dataclass
class KataSubject:
    config: KataConfig
    estimates: list[tuple[str, BudgetEstimate]] = field(default_factory=list)  # (image ref, estimate)

    def finding(self, message: str, fix: str | None, file: str, line: int | None, **data: Any) -> Draft:
        """A finding at a line of one of the config's files."""
        return Draft(message, fix, file, line, data=data)
