"""What `k8s fix` writes into one Kata workload, as values - not yet as edits.

`k8s fix` turns a plan into line edits of the manifest (fixing.py); the
admission webhook turns the same plan into an RFC 6902 JSONPatch
(webhook/patch.py). One plan, so both write the same identity and the same
annotations:

- per container, the explicit identity (users/identity.py) of its image -
  runAsUser and runAsGroup in the container (or, for a pod of one container
  where that suits genpolicy, in the pod), never a value the pod sets;
- the image's supplementary groups unioned in the pod's supplementalGroups,
  only where the pod sets none (a set list is never changed: it is reported);
- the create-container timeout annotation (and the guest's pull limit in
  kernel_params) when the largest image needs more than is in force - raised,
  never lowered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..image.model import Image
from ..model.budget import BudgetModel
from ..model.workload import Workload
from ..users.identity import explicit_identity
from .audit import AuditOptions, pod_in_force, pod_subject
from .pod import KERNEL_PARAMS_ANNOTATION, PULL_LIMIT_WHY, TIMEOUT_ANNOTATION, raised_annotations

ImageFor = Callable[[str], Image | None]


@dataclass(frozen=True)
class ContainerValues:
    index: int  # among the workload's containers, init containers first (Workload.containers order)
    name: str
    values: dict[str, Any]


@dataclass
class FixPlan:
    containers: list[ContainerValues] = field(default_factory=list)
    pod_security: dict[str, Any] = field(default_factory=dict)  # for the pod's securityContext
    annotations: dict[str, str] = field(default_factory=dict)  # for the pod (template)'s annotations
    annotation_why: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)  # one line per change, for people
    left: list[str] = field(default_factory=list)  # what the plan could not write, and why

    def __bool__(self) -> bool:
        return bool(self.containers or self.pod_security or self.annotations)


def plan_users(workload: Workload, image_for: ImageFor, pod_values: dict[str, Any] | None = None) -> FixPlan:
    """The explicit identity of every container that runs a readable image; `pod_values` (the fsGroup a
    migration adds) go into the pod's securityContext with it."""
    plan = FixPlan()
    pod_values = dict(pod_values or {})
    pod_security = {**workload.security, **pod_values}
    groups: set[int] = set()
    sole = len(workload.containers) == 1
    for index, container in enumerate(workload.containers):
        image = image_for(container.image)
        if image is None:
            continue
        explicit = explicit_identity(image.user or "", image.read_file, container.security, pod_security,
                                     sole=sole)
        if explicit.left is not None:
            plan.left.append(f"{workload.title} {container.name}: {explicit.left}")
        groups.update(explicit.pod_groups)
        if explicit.pod:
            pod_values.update(explicit.pod)
            shown = ", ".join(f"{k}: {v}" for k, v in explicit.pod.items())
            plan.changes.append(f"{workload.title}: {shown} (for the pod: its only container, "
                                f"{container.name})")
        if explicit.container:
            plan.containers.append(ContainerValues(index, container.name, dict(explicit.container)))
            shown = ", ".join(f"{k}: {v}" for k, v in explicit.container.items())
            plan.changes.append(f"{workload.title} {container.name}: {shown}")
    if groups:
        if workload.security.get("supplementalGroups") is None:
            pod_values["supplementalGroups"] = sorted(groups)
            plan.changes.append(f"{workload.title}: supplementalGroups: {sorted(groups)}")
        else:  # a value the manifest sets is never changed: the re-audit names what it lacks
            line = (f"{workload.title}: supplementalGroups is set; it lacks {sorted(groups)} - left for you "
                    "to add")
            plan.changes.append(line)
            plan.left.append(line)
    plan.pod_security = pod_values
    return plan


def plan_workload(workload: Workload, image_for: ImageFor, options: AuditOptions,
                  model: BudgetModel) -> FixPlan:
    """`k8s fix` for one Kata workload: the identity, then the timeout annotations."""
    plan = plan_users(workload, image_for)
    subject = pod_subject(workload, [], model, options)
    present = [image for image in map(image_for, (c.image for c in workload.containers)) if image is not None]
    if not present:
        return plan
    largest = max(present, key=lambda image: image.unpacked_size)
    estimate = subject.model.estimate(largest.unpacked_size, size_estimated=largest.size_estimated)
    if estimate.fits_create_timeout and estimate.fits_pull_timeout:
        return plan
    seconds = estimate.recommended_timeout_seconds
    # only what raises the value in force; never below what the class could ship
    wanted = raised_annotations(pod_in_force(workload, model, options), workload.raw_annotations, seconds)
    why = {TIMEOUT_ANNOTATION: f"guest pull + unpack needs ~{estimate.needed_timeout_seconds:.0f} s "
                               f"with margin, size {estimate.size_said} (imagefix)",
           KERNEL_PARAMS_ANNOTATION: PULL_LIMIT_WHY}
    plan.annotations = wanted
    plan.annotation_why = {k: why[k] for k in wanted if k in why}
    if TIMEOUT_ANNOTATION in wanted:
        plan.changes.append(f"{workload.title}: timeout {subject.model.create_timeout_s} -> {seconds} s "
                            f"(from a size {estimate.size_said})")
    if KERNEL_PARAMS_ANNOTATION in wanted:
        plan.changes.append(f"{workload.title}: agent.image_pull_timeout "
                            f"{subject.model.image_pull_timeout_s} -> {seconds} s "
                            f"(kernel_params, from a size {estimate.size_said})")
    return plan


__all__ = ["ContainerValues", "FixPlan", "ImageFor", "plan_users", "plan_workload"]
