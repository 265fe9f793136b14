"""What a pod needs to run an image on Kata: runtimeClass, numeric user, annotations - and why.

Never `runAsNonRoot: true` alone for a named-user image: the kubelet cannot
verify a non-numeric user and refuses the pod (docs/users.md); imagefix sets
the numeric runAsUser/runAsGroup instead. The values a runtime class gives are
class_values.py's; the YAML written from this is pod_yaml.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..kata.annotations import KERNEL_PARAMS_ANNOTATION, MEMORY_ANNOTATION, TIMEOUT_ANNOTATION, number_or_none
from ..kata.classes import image_pull_timeout, with_image_pull_timeout
from ..model.budget import BudgetEstimate, BudgetModel
from ..sizes import human_size
from ..users import UserKind, UserSpec
from ..users.identity import explicit_identity
from .class_values import ClassValues, class_values, unknown_class_note


@dataclass
class PodNeeds:
    image_name: str  # as manifests spell it
    runtime_class: str
    run_as_user: int | None
    run_as_group: int | None
    user_why: str
    fs_group: int | None
    supplemental_groups: tuple[int, ...]  # the image's /etc/group groups, for the pod's supplementalGroups
    ids_for_pod: bool  # runAsUser/runAsGroup in the pod's securityContext (else the container's)
    timeout_s: int  # what the image needs
    timeout_why: str
    memory_mib: int
    memory_why: str
    in_force: ClassValues
    notes: list[str] = field(default_factory=list)
    estimate: BudgetEstimate | None = None  # what the timeout and memory come from (its size exact or not)

    @property
    def size_said(self) -> str:
        """`exact size` or `estimated size`: what every note deriving a time or memory says."""
        return f"{self.estimate.size_said if self.estimate is not None else 'estimated'} size"

    def annotations(self, existing: dict[str, Any] | None = None) -> dict[str, str]:
        """The annotations to write (see raised_annotations)."""
        return raised_annotations(self.in_force, existing or {}, self.timeout_s, self.memory_mib)

    def pull_limit(self, existing: dict[str, Any] | None = None) -> int:
        return pull_limit(self.in_force, existing or {})


def pull_limit(in_force: ClassValues, existing: dict[str, Any]) -> int:
    """agent.image_pull_timeout in force for a pod: the class's kernel_params, then the pod's
    kernel_params annotation where enabled (Kata replaces parameters of the same name with it)."""
    params = existing.get(KERNEL_PARAMS_ANNOTATION)
    extra = params if isinstance(params, str) and in_force.kernel_params_annotation else ""
    return image_pull_timeout(f"{in_force.kernel_params} {extra}")


def raised_annotations(in_force: ClassValues, existing: dict[str, Any], timeout_s: int,
                       memory_mib: int | None = None) -> dict[str, str]:
    """The annotations to write: only those that raise the value in force (an annotation the
    manifest has, as Kata parses it, else the class's - never below what the class could ship),
    default_memory only where the class enables it, and `agent.image_pull_timeout` in the
    kernel_params annotation (its other parameters kept) where the timeout passes the guest's limit."""
    out = {}
    timeout_now = number_or_none(existing.get(TIMEOUT_ANNOTATION), in_force.runtime)
    if timeout_s > (timeout_now if timeout_now is not None else in_force.timeout_floor):
        out[TIMEOUT_ANNOTATION] = str(timeout_s)
    memory_now = number_or_none(existing.get(MEMORY_ANNOTATION), in_force.runtime)
    if memory_mib is not None and in_force.memory_annotation and \
            memory_mib > (memory_now if memory_now is not None else in_force.memory_floor):
        out[MEMORY_ANNOTATION] = str(memory_mib)
    timeout_after = int(out.get(TIMEOUT_ANNOTATION) or timeout_now or in_force.timeout_s)
    if in_force.kernel_params_annotation and min(timeout_s, timeout_after) > pull_limit(in_force, existing):
        params = existing.get(KERNEL_PARAMS_ANNOTATION)
        out[KERNEL_PARAMS_ANNOTATION] = with_image_pull_timeout(params if isinstance(params, str) else "",
                                                                timeout_s)
    return out


def annotation_reasons(needs: PodNeeds) -> dict[str, str]:
    return {TIMEOUT_ANNOTATION: needs.timeout_why, MEMORY_ANNOTATION: needs.memory_why,
            KERNEL_PARAMS_ANNOTATION: PULL_LIMIT_WHY}


PULL_LIMIT_WHY = ("agent.image_pull_timeout bounds the pull inside the guest (1200 s by default);"
                  " the class's other kernel_params stay")


def _int_or_none(value: Any) -> int | None:
    """An annotation's number as the Go runtime parses it (None when it would refuse it)."""
    return number_or_none(value)


def pod_needs(image: Image, model: BudgetModel, *, image_name: str, runtime_class: str,
              fs_group: int | None, config: Any = None) -> PodNeeds:
    pod_security = {"fsGroup": fs_group} if fs_group is not None else {}
    explicit = explicit_identity(image.user or "", image.read_file, {}, pod_security, sole=True)
    spec = UserSpec.parse(image.user)
    if explicit.left is not None:
        raise ImagefixError(
            f"{image.reference}: runs as user {spec.raw!r} whose uid/gid cannot be found "
            f"({explicit.left}); a pod cannot fix that - rebuild with a numeric USER")
    ids = {**explicit.container, **explicit.pod}  # container level, or the pod's where that is cleaner
    uid, gid = ids.get("runAsUser"), ids.get("runAsGroup")
    if not explicit:
        why = "the image runs as root with no other group: nothing to make explicit"
    elif spec.kind is UserKind.NAMED:
        why = (f"USER {spec.raw} made numeric and explicit (the image's /etc/passwd and /etc/group): under "
               "guest pull the host cannot look names up, and genpolicy refuses implicit ids")
    else:
        why = (f"USER {spec.raw or '(none)'} as explicit ids (the image's /etc/passwd and /etc/group): the "
               "kubelet drops the image's group, guest pull loses the groups, genpolicy refuses implicit ids")
    in_force = class_values(runtime_class, model, config)
    estimate = model.estimate(image.unpacked_size, size_estimated=image.size_estimated)
    timeout = estimate.recommended_timeout_seconds
    timeout_why = (f"guest pull + unpack of {human_size(image.unpacked_size)} ({estimate.size_said}) needs "
                   f"~{estimate.needed_timeout_seconds:.0f} s with margin (at {model.pull_rate_mb_s:g} MB/s)")
    memory = estimate.recommended_memory_mib
    memory_why = (f"the unpacked image ({human_size(image.unpacked_size)}, {estimate.size_said}) lives in a "
                  "tmpfs of "
                  f"{model.tmpfs_fraction:.0%} of guest memory, beside the workload")
    needs = PodNeeds(image_name, runtime_class, uid, gid, why, fs_group, explicit.pod_groups,
                     bool(explicit.pod), timeout, timeout_why, memory, memory_why, in_force,
                     estimate=estimate)
    wanted = needs.annotations()
    if wanted:
        needs.notes.append('the annotations need containerd to pass them through: pod_annotations = '
                           '["io.katacontainers.*"] (kata-deploy sets it)')
    if memory > in_force.memory_mib and not in_force.memory_annotation:
        enables = ("does not enable" if in_force.known else "is not a class Kata 4.1 ships: imagefix "
                   "cannot tell whether it enables")
        needs.notes.append(f"the guest needs {memory} MiB (for {human_size(image.unpacked_size)} unpacked, "
                           f"{needs.size_said}) but {runtime_class} {enables} the "
                           "default_memory annotation (the Go runtime would refuse the pod): raise the "
                           "pod's memory limits (TDX sizes the guest as default_memory + limits) or "
                           "default_memory in the runtime class's config")
    needs.notes += limit_notes(needs, model)
    if not wanted and timeout <= in_force.timeout_s and memory <= in_force.memory_mib:
        needs.notes.append(f"no annotation needed: {in_force.timeout_s} s and {in_force.memory_mib} MiB "
                           f"({in_force.source}) already suffice for {human_size(image.unpacked_size)} "
                           f"unpacked ({needs.size_said})")
    return needs


def limit_notes(needs: PodNeeds, model: BudgetModel) -> list[str]:
    """The other limits on the way: an unknown class's floor, the in-guest pull limit, the kubelet."""
    notes = []
    in_force, timeout = needs.in_force, needs.timeout_s
    unknown = unknown_class_note(in_force, needs.runtime_class, timeout)
    if unknown:
        notes.append(f"{unknown} (from an {needs.size_said})")  # `an exact`, `an estimated`
    limit = needs.pull_limit()
    if timeout > limit and not in_force.kernel_params_annotation:
        notes.append(f"{timeout} s (from an {needs.size_said}) is above the guest's own pull limit, "
                     f"agent.image_pull_timeout = {limit} s, and {needs.runtime_class} does not enable the "
                     "kernel_params annotation: "
                     f"add agent.image_pull_timeout={timeout} to kernel_params in the class's config "
                     "(`imagefix kata patch CONFIG --drop-in ... --create-container-timeout "
                     f"{timeout}` does both)")
    if timeout > model.kubelet_timeout_s:
        notes.append(f"the image needs {timeout} s ({needs.size_said}), above the kubelet's "
                     f"runtimeRequestTimeout ({model.kubelet_timeout_s} s; --kubelet-timeout): set "
                     f"runtimeRequestTimeout: {max(timeout, 600)}s in the kubelet configuration (Kata's "
                     "docs: at least 600 s for confidential containers), or the kubelet gives up first")
    return notes
