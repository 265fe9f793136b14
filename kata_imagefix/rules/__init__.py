"""All rules, registered on import. `all_rules()` is the catalogue in id order."""

from typing import Any

from . import (  # noqa: F401 - imported to register the rules
    kif101_named_user,
    kif102_numeric_no_group,
    kif103_root,
    kif104_unresolvable_user,
    kif105_invalid_user,
    kif106_unknown_user,
    kif107_pod_identity,
    kif201_large_layer,
    kif202_image_budget,
    kif203_pull_timeout,
    kif204_kubelet_timeout,
    kif301_misplaced_timeout,
    kif302_invalid_toml,
    kif303_budget_too_low,
    kif304_missing_go_timeout,
    kif305_two_hypervisors,
    kif401_pod_named_user,
    kif402_pod_lost_group,
    kif403_pod_run_as_non_root,
    kif405_pod_timeout,
    kif406_pod_tmpfs,
    kif407_pod_unreadable_image,
    kif408_pod_lost_groups,
    kif409_pod_genpolicy,
    kif410_pod_annotation_value,
    kif420_pod_invalid_id,
)
from .base import CATALOGUE, ImageSubject, Rule, Target, UserSubject


def all_rules() -> list[Rule[Any]]:
    return [CATALOGUE[key] for key in sorted(CATALOGUE)]


__all__ = ["CATALOGUE", "ImageSubject", "Rule", "Target", "UserSubject", "all_rules"]
