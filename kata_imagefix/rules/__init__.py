"""The rules, by the kind of subject they check. `all_rules()` is the catalogue in id order.

A rule registers itself when its module is imported. The modules are imported by target, when a run
first asks for that target's rules: an image scan loads the user and image rules, not the Kata
config's or the pod's (nor what those import), and importing `rules.finding` or `rules.result` loads
no rule at all.
"""

from importlib import import_module
from typing import Any

from .base import CATALOGUE, ImageSubject, Rule, Target, UserSubject

# every kifNNN_*.py module, under the target its rules check (tests/test_architecture.py holds this
# table to the files and to each rule's own target)
MODULES: dict[Target, tuple[str, ...]] = {
    Target.USER: ("kif101_named_user", "kif102_numeric_no_group", "kif103_root", "kif104_unresolvable_user",
                  "kif105_invalid_user", "kif106_unknown_user", "kif107_pod_identity"),
    Target.IMAGE: ("kif201_large_layer", "kif202_image_budget", "kif203_pull_timeout",
                   "kif204_kubelet_timeout"),
    Target.KATA: ("kif301_misplaced_timeout", "kif302_invalid_toml", "kif303_budget_too_low",
                  "kif304_missing_go_timeout", "kif305_two_hypervisors"),
    Target.POD: ("kif401_pod_named_user", "kif402_pod_lost_group", "kif403_pod_run_as_non_root",
                 "kif405_pod_timeout", "kif406_pod_tmpfs", "kif407_pod_unreadable_image",
                 "kif408_pod_lost_groups", "kif409_pod_genpolicy", "kif410_pod_annotation_value",
                 "kif420_pod_invalid_id"),
}
_loaded: set[Target] = set()


def _load(target: Target) -> None:
    if target not in _loaded:
        for module in MODULES[target]:
            import_module(f"{__name__}.{module}")
        _loaded.add(target)


def rules_for(target: str) -> list[Rule[Any]]:
    """The rules that check one kind of subject, in id order (only their modules are imported)."""
    kind = Target(target)
    _load(kind)
    return [CATALOGUE[key] for key in sorted(CATALOGUE) if CATALOGUE[key].target == kind]


def catalogue() -> dict[str, Rule[Any]]:
    """Every rule by id (all rule modules imported): for listing, --select/--ignore and titles."""
    for target in Target:
        _load(target)
    return CATALOGUE


def all_rules() -> list[Rule[Any]]:
    rules = catalogue()
    return [rules[key] for key in sorted(rules)]


__all__ = ["ImageSubject", "Rule", "Target", "UserSubject", "all_rules", "catalogue", "rules_for"]
