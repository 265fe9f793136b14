"""What a pod needs to run an image on Kata: runtimeClass, numeric user, annotations - and why.

Never `runAsNonRoot: true` alone for a named-user image: the kubelet cannot
verify a non-numeric user and refuses the pod (docs/users.md); imagefix sets
the numeric runAsUser/runAsGroup instead.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..image.reference import parse_docker_reference
from ..kata.annotations import KERNEL_PARAMS_ANNOTATION, MEMORY_ANNOTATION, TIMEOUT_ANNOTATION, number_or_none
from ..kata.classes import image_pull_timeout, with_image_pull_timeout
from ..model.budget import BudgetModel
from ..sizes import human_size
from ..users import UserKind, UserSpec
from ..users.identity import explicit_identity
from .walk import WORKLOAD_PATHS, matching_containers, pod_annotations, pod_spec, split_documents, workloads


# Runtime classes whose shipped configs enable the default_memory annotation (Kata 4.1, kata/classes.py);
# on any other class the Go runtime refuses a pod carrying it (docs/kata-config.md).
def _memory_annotation_classes() -> tuple[str, ...]:
    from ..kata.classes import SHIPPED

    return tuple(name for name, c in SHIPPED.items() if c.enables("default_memory"))


MEMORY_ANNOTATION_CLASSES = _memory_annotation_classes()


@dataclass(frozen=True)
class ClassValues:
    """What a runtime class gives a pod without annotations, and what it lets a pod annotate.

    `floor_*` is the least imagefix may write: the value in force when known, else the highest any
    shipped class has (an unknown class must never be given less than it ships)."""

    timeout_s: int
    memory_mib: int
    memory_annotation: bool
    source: str  # the config file read, the shipped class, or why the values are unknown
    known: bool = True
    floor_timeout_s: int = 0
    floor_memory_mib: int = 0
    kernel_params_annotation: bool = False
    image_pull_timeout_s: int = 1200  # agent.image_pull_timeout in force (the kernel_params)
    kernel_params: str = ""  # as the class's config has them (for a kernel_params annotation)
    runtime: str = "go"  # how annotation values are parsed (Go: the strictest, when unknown)

    @property
    def timeout_floor(self) -> int:
        return max(self.timeout_s, self.floor_timeout_s)

    @property
    def memory_floor(self) -> int:
        return max(self.memory_mib, self.floor_memory_mib)


def class_values(runtime_class: str, model: BudgetModel, config: Any = None) -> ClassValues:
    """From the node's Kata config when given (main file + drop-ins), else what the class ships
    (kata/classes.py), else - a class Kata does not ship - the budget model's values for judging,
    with floors so that nothing written could be below what a shipped class has.

    --create-timeout/--guest-memory, when set to other than their defaults, say what is in force."""
    from ..kata.annotations import annotation_enabled

    if config is not None:
        patterns = config.effective((*config.hypervisor_table(), "enable_annotations"), [])[0] or []
        params = config.kernel_params
        return ClassValues(int(config.timeout[0]), int(config.memory[0]),
                           annotation_enabled(patterns, "default_memory", config.runtime), config.main.path,
                           kernel_params_annotation=annotation_enabled(patterns, "kernel_params",
                                                                       config.runtime),
                           image_pull_timeout_s=image_pull_timeout(params), kernel_params=params,
                           runtime=config.runtime)
    try:
        return _without_config(runtime_class, model)
    except TypeError:  # a model that cannot be a key (an unhashable field): worked out every time
        return _without_config.__wrapped__(runtime_class, model)


@functools.lru_cache(maxsize=256)
def _without_config(runtime_class: str, model: BudgetModel) -> ClassValues:
    """class_values without a Kata config: the same for every pod of a class (the webhook asks per pod)."""
    from ..kata.classes import (
        DEFAULT_IMAGE_PULL_TIMEOUT,
        HIGHEST_MEMORY_MIB,
        HIGHEST_TIMEOUT_S,
        shipped_class,
    )

    timeout_set, memory_set = model.says("create_timeout_s"), model.says("guest_memory_mib")
    shipped = shipped_class(runtime_class)
    if shipped is not None:
        return ClassValues(model.create_timeout_s if timeout_set else shipped.timeout_s,
                           model.guest_memory_mib if memory_set else shipped.memory_mib,
                           shipped.enables("default_memory"), shipped.source,
                           kernel_params_annotation=shipped.enables("kernel_params"),
                           image_pull_timeout_s=DEFAULT_IMAGE_PULL_TIMEOUT, runtime=shipped.runtime)
    return ClassValues(model.create_timeout_s, model.guest_memory_mib, False,
                       f"runtime class {runtime_class or '(none)'} is not one Kata 4.1 ships: its values "
                       "are unknown (pass --kata-config CLASS=FILE)", known=False,
                       floor_timeout_s=0 if timeout_set else HIGHEST_TIMEOUT_S,
                       floor_memory_mib=0 if memory_set else HIGHEST_MEMORY_MIB,
                       image_pull_timeout_s=DEFAULT_IMAGE_PULL_TIMEOUT)


def unknown_class_note(in_force: ClassValues, runtime_class: str, needed_s: int) -> str | None:
    """What to say when an unknown class keeps imagefix from writing a timeout the image needs."""
    if in_force.known or needed_s <= in_force.timeout_s or needed_s > in_force.timeout_floor:
        return None
    return (f"{runtime_class or 'this runtime class'} is not a class Kata 4.1 ships, so its values are "
            f"unknown: imagefix writes no create_container_timeout below {in_force.timeout_floor} s (a "
            f"shipped class has that much); pass --kata-config {runtime_class or 'CLASS'}=FILE (the "
            f"node's config) or --create-timeout S (the value in force) to size it to the {needed_s} s "
            "needed")


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
                     bool(explicit.pod), timeout, timeout_why, memory, memory_why, in_force)
    wanted = needs.annotations()
    if wanted:
        needs.notes.append('the annotations need containerd to pass them through: pod_annotations = '
                           '["io.katacontainers.*"] (kata-deploy sets it)')
    if memory > in_force.memory_mib and not in_force.memory_annotation:
        enables = ("does not enable" if in_force.known else "is not a class Kata 4.1 ships: imagefix "
                   "cannot tell whether it enables")
        needs.notes.append(f"the guest needs {memory} MiB but {runtime_class} {enables} the "
                           "default_memory annotation (the Go runtime would refuse the pod): raise the "
                           "pod's memory limits (TDX sizes the guest as default_memory + limits) or "
                           "default_memory in the runtime class's config")
    needs.notes += limit_notes(needs, model)
    if not wanted and timeout <= in_force.timeout_s and memory <= in_force.memory_mib:
        needs.notes.append(f"no annotation needed: {in_force.timeout_s} s and {in_force.memory_mib} MiB "
                           f"({in_force.source}) already suffice")
    return needs


def limit_notes(needs: PodNeeds, model: BudgetModel) -> list[str]:
    """The other limits on the way: an unknown class's floor, the in-guest pull limit, the kubelet."""
    notes = []
    in_force, timeout = needs.in_force, needs.timeout_s
    unknown = unknown_class_note(in_force, needs.runtime_class, timeout)
    if unknown:
        notes.append(unknown)
    limit = needs.pull_limit()
    if timeout > limit and not in_force.kernel_params_annotation:
        notes.append(f"{timeout} s is above the guest's own pull limit, agent.image_pull_timeout = "
                     f"{limit} s, and {needs.runtime_class} does not enable the kernel_params annotation: "
                     f"add agent.image_pull_timeout={timeout} to kernel_params in the class's config "
                     "(`imagefix kata patch CONFIG --drop-in ... --create-container-timeout "
                     f"{timeout}` does both)")
    if timeout > model.kubelet_timeout_s:
        notes.append(f"the image needs {timeout} s, above the kubelet's runtimeRequestTimeout "
                     f"({model.kubelet_timeout_s} s; --kubelet-timeout): set runtimeRequestTimeout: "
                     f"{max(timeout, 600)}s in the kubelet configuration (Kata's docs: at least 600 s "
                     "for confidential containers), or the kubelet gives up first")
    return notes


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _dump(data: Any, yaml=None) -> str:
    stream = io.StringIO()
    (yaml or _yaml()).dump(data, stream)
    return stream.getvalue()


def _quoted(value: str):
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(value)


def _security_context(needs: PodNeeds, context=None):
    """runAsUser/runAsGroup (into `context` when given); empty where the ids belong to the pod."""
    from ruamel.yaml.comments import CommentedMap

    context = CommentedMap() if context is None else context
    if needs.run_as_user is not None:
        context["runAsUser"] = needs.run_as_user
        context.yaml_add_eol_comment(needs.user_why, "runAsUser")
    if needs.run_as_group is not None:
        context["runAsGroup"] = needs.run_as_group
    return context


def _pod_security_context(needs: PodNeeds, *, fs_group_comment: bool = False):
    """The pod-level part of the identity: fsGroup (asked for) and the image's supplementary groups."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    context = CommentedMap()
    if needs.ids_for_pod:
        _security_context(needs, context)
    if needs.fs_group is not None:
        context["fsGroup"] = needs.fs_group
        if fs_group_comment:
            context.yaml_add_eol_comment("--fs-group: volumes writable by this group", "fsGroup")
    if needs.supplemental_groups:
        groups = CommentedSeq(needs.supplemental_groups)
        groups.fa.set_flow_style()
        context["supplementalGroups"] = groups
        context.yaml_add_eol_comment("the image's /etc/group groups: lost under guest pull otherwise",
                                     "supplementalGroups")
    return context


def _annotate(annotations, needs: PodNeeds, existing: dict[str, Any] | None = None) -> None:
    why = annotation_reasons(needs)
    for key, value in needs.annotations(existing if existing is not None else dict(annotations)).items():
        annotations[key] = _quoted(value)
        annotations.yaml_add_eol_comment(why[key], key)


def manifest_name(parsed: Any, image: Image) -> str:
    """How manifests name the image: the reference itself for registry and engine images; for a
    layout or archive, its recorded name when that is a full reference (not just a tag)."""
    if parsed.kind.named:
        return parsed.target
    name = image.name or ""
    if "/" in name or ":" in name:
        try:
            parse_docker_reference(name)
            return name
        except ImagefixError:
            pass
    recorded = f" (it records only {name!r})" if name else ""
    raise ImagefixError(f"{parsed.original}: say how manifests name this image with --image-name NAME, "
                        f"e.g. --image-name spark:3.5.3{recorded}")


def container_name(image_name: str) -> str:
    base = image_name.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-")[:63] or "app"


def pod_yaml(needs: PodNeeds, header: str) -> str:
    from ruamel.yaml.comments import CommentedMap

    pod = CommentedMap()
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    metadata = CommentedMap(name=container_name(needs.image_name))
    if needs.annotations():
        metadata["annotations"] = CommentedMap()
        _annotate(metadata["annotations"], needs)
    pod["metadata"] = metadata
    spec = CommentedMap()
    spec["runtimeClassName"] = needs.runtime_class
    pod_context = _pod_security_context(needs, fs_group_comment=True)
    if pod_context:
        spec["securityContext"] = pod_context
    container = CommentedMap(name=container_name(needs.image_name), image=needs.image_name)
    context = _security_context(needs) if not needs.ids_for_pod else None
    if context:
        container["securityContext"] = context
    spec["containers"] = [container]
    pod["spec"] = spec
    lines = [f"# {header}"] + [f"# note: {note}" for note in needs.notes]
    return "\n".join(lines) + "\n" + _dump(pod)


def kustomize_patches(text: str, needs: PodNeeds) -> str:
    """Strategic-merge patches, one per workload that runs the image."""
    from ruamel.yaml.comments import CommentedMap

    docs = []
    for doc in (d for chunk in split_documents(text) for d in workloads(_yaml().load(chunk))):
        spec = pod_spec(doc)
        containers = matching_containers(spec, needs.image_name)
        if not containers:
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise ImagefixError(f"{doc['kind']} without metadata.name: a kustomize patch needs the name")
        patch = CommentedMap(apiVersion=doc.get("apiVersion", "v1"), kind=doc["kind"])
        patch["metadata"] = CommentedMap(name=metadata["name"])
        if metadata.get("namespace"):
            patch["metadata"]["namespace"] = metadata["namespace"]
        patch_spec = CommentedMap(runtimeClassName=needs.runtime_class)
        pod_context = _pod_security_context(needs)
        if pod_context:
            patch_spec["securityContext"] = pod_context
        patch_spec["containers"] = []
        for container in containers:
            entry = CommentedMap(name=container.get("name"))
            context = _security_context(needs) if not needs.ids_for_pod else None
            if context:
                entry["securityContext"] = context
            patch_spec["containers"].append(entry)
        annotations = CommentedMap()
        _annotate(annotations, needs, pod_annotations(doc, "the manifest"))
        template = CommentedMap(metadata=CommentedMap(annotations=annotations)) if annotations else \
            CommentedMap()  # no `annotations: {}` when nothing is raised
        template["spec"] = patch_spec
        node = patch
        path = WORKLOAD_PATHS[doc["kind"]]
        if doc["kind"] == "Pod":
            if annotations:
                patch["metadata"]["annotations"] = annotations
            patch["spec"] = patch_spec
        else:
            for key in path[:-2]:
                node[key] = CommentedMap()
                node = node[key]
            node[path[-2]] = template
        docs.append(_dump(patch))
    if not docs:
        raise ImagefixError(f"no Pod/Deployment/StatefulSet/Job/CronJob container uses {needs.image_name}")
    return "---\n".join(docs)
