"""`kata check` for one configuration: the KIF3xx rules over what Kata loads, and its effective values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..kata.config import KataConfig, load_config
from ..model.budget import BudgetModel
from ..rules.kata_subject import KataSubject
from ..rules.result import ScanResult
from ..scan import RuleSelection, run_rules


def check_config(path: str, runtime: str | None, selection: RuleSelection,
                 model_for: Callable[[KataConfig], BudgetModel],
                 estimate: Callable[[BudgetModel], list[tuple[str, Any]]]) -> ScanResult:
    """One configuration through the KIF3xx rules, with the effective values as a note."""
    config = load_config(path, runtime)
    subject = KataSubject(config, estimate(model_for(config)))
    kept, suppressed = run_rules(subject, "kata", selection)
    result = ScanResult(path, kept, suppressed)
    dropins = f"; drop-ins: {', '.join(d.path for d in config.dropins)}" if config.dropins else ""
    result.notes.append(f"runtime: {config.runtime} ({config.runtime_reason}); "
                        f"effective create_container_timeout {config.timeout[0]} s, "
                        f"default_memory {config.memory[0]} MiB, agent.image_pull_timeout "
                        f"{config.image_pull_timeout} s{dropins}")
    return result
