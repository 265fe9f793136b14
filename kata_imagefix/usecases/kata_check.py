"""`kata check`: each configuration Kata loads (a drop-in stands for the configurations it belongs to)
through the KIF3xx rules, with its effective values."""

from __future__ import annotations

from ..kata.config import load_config, main_configs
from ..rules.kata_subject import KataSubject
from ..rules.result import ScanResult
from ..scan import RuleSelection, run_rules
from .budgets import ImageSizes, KataBudget


def check_configs(paths: tuple[str, ...] | list[str], runtime: str | None, selection: RuleSelection,
                  budget: KataBudget, images: ImageSizes) -> list[ScanResult]:
    """One result per configuration the paths name (a config.d entry becomes its configurations)."""
    return [check_config(path, runtime, selection, budget, images) for path in main_configs(paths)]


def check_config(path: str, runtime: str | None, selection: RuleSelection, budget: KataBudget,
                 images: ImageSizes) -> ScanResult:
    """One configuration through the KIF3xx rules, with the effective values as a note."""
    config = load_config(path, runtime)
    subject = KataSubject(config, images.estimates(budget.for_config(config)))
    kept, suppressed = run_rules(subject, "kata", selection)
    result = ScanResult(path, kept, suppressed)
    dropins = f"; drop-ins: {', '.join(d.path for d in config.dropins)}" if config.dropins else ""
    result.notes.append(f"runtime: {config.runtime} ({config.runtime_reason}); "
                        f"effective create_container_timeout {config.timeout[0]} s, "
                        f"default_memory {config.memory[0]} MiB, agent.image_pull_timeout "
                        f"{config.image_pull_timeout} s{dropins}")
    return result
