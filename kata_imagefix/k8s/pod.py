"""What a pod needs to run an image on Kata: runtimeClass, numeric user, annotations - and why.

Never `runAsNonRoot: true` alone for a named-user image: the kubelet cannot
verify a non-numeric user and refuses the pod (docs/users.md); imagefix sets
the numeric runAsUser/runAsGroup instead.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..image.reference import parse_docker_reference
from ..kata.budget import BudgetModel
from ..sizes import human_size
from ..users import UserKind, UserSpec, resolve_user

TIMEOUT_ANNOTATION = "io.katacontainers.config.runtime.create_container_timeout"
MEMORY_ANNOTATION = "io.katacontainers.config.hypervisor.default_memory"
WORKLOAD_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}


# Runtime classes whose shipped Go configs list default_memory in enable_annotations (Kata 4.1);
# on any other class the Go runtime refuses a pod carrying the annotation (docs/kata-config.md).
MEMORY_ANNOTATION_CLASSES = ("kata-qemu-tdx", "kata-qemu-snp", "kata-qemu-se", "kata-qemu-coco-dev",
                             "kata-qemu-nvidia-gpu-tdx", "kata-qemu-nvidia-gpu-snp", "kata-remote")


@dataclass(frozen=True)
class ClassValues:
    """What a runtime class gives a pod without annotations, and whether it takes default_memory."""

    timeout_s: int
    memory_mib: int
    memory_annotation: bool
    source: str  # "the defaults" or the config file read


def class_values(runtime_class: str, model: BudgetModel, config: Any = None) -> ClassValues:
    """From the node's Kata config when given (main file + drop-ins), else the budget defaults."""
    if config is not None:
        hypervisor = config.effective((*config.hypervisor_table(), "enable_annotations"), [])[0] or []
        return ClassValues(int(config.timeout[0]), int(config.memory[0]),
                           "default_memory" in hypervisor, config.main.path)
    return ClassValues(model.create_timeout_s, model.guest_memory_mib,
                       runtime_class in MEMORY_ANNOTATION_CLASSES, "the defaults")


@dataclass
class PodNeeds:
    image_name: str  # as manifests spell it
    runtime_class: str
    run_as_user: int | None
    run_as_group: int | None
    user_why: str
    fs_group: int | None
    timeout_s: int  # what the image needs
    timeout_why: str
    memory_mib: int
    memory_why: str
    in_force: ClassValues
    notes: list[str] = field(default_factory=list)

    def annotations(self, existing: dict[str, Any] | None = None) -> dict[str, str]:
        """The annotations to write: only those that raise the value in force (an annotation the
        manifest has, else the class's), and default_memory only where the class enables it."""
        existing = existing or {}
        out = {}
        in_force = self.in_force
        for key, needed, class_value, allowed in (
                (TIMEOUT_ANNOTATION, self.timeout_s, in_force.timeout_s, True),
                (MEMORY_ANNOTATION, self.memory_mib, in_force.memory_mib, in_force.memory_annotation)):
            current = _int_or_none(existing.get(key))
            if allowed and needed > (current if current is not None else class_value):
                out[key] = str(needed)
        return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def pod_needs(image: Image, model: BudgetModel, *, image_name: str, runtime_class: str,
              fs_group: int | None, config: Any = None) -> PodNeeds:
    spec = UserSpec.parse(image.user)
    uid = gid = None
    if spec.kind is UserKind.ROOT:
        why = "the image runs as root: no lookup needed; set runAsUser if the workload need not be root"
    else:
        resolution = resolve_user(spec, image.read_file)
        if spec.kind in (UserKind.NAMED, UserKind.INVALID) and not resolution.ok:
            raise ImagefixError(
                f"{image.reference}: runs as user {spec.raw!r} whose uid/gid cannot be found "
                f"({resolution.problem}); a pod cannot fix that - rebuild with a numeric USER"
            )
        uid, gid = resolution.uid, resolution.gid
        if spec.kind is UserKind.NAMED:
            why = (f"USER {spec.raw} made numeric (from the image's /etc/passwd): under guest pull the "
                   "host cannot look names up")
        elif spec.kind is UserKind.NUMERIC_NO_GROUP:
            why = (f"USER {spec.raw} with its group from the image's /etc/passwd: without runAsGroup the "
                   "process would get gid 0 under guest pull")
        else:
            why = f"USER {spec.raw}, stated explicitly"
    in_force = class_values(runtime_class, model, config)
    estimate = model.estimate(image.unpacked_size)
    timeout = estimate.recommended_timeout_seconds
    timeout_why = (f"guest pull + unpack of {human_size(image.unpacked_size)} needs "
                   f"~{estimate.needed_timeout_seconds:.0f} s with margin (at {model.pull_rate_mb_s:g} MB/s)")
    memory = estimate.recommended_memory_mib
    memory_why = (f"the unpacked image ({human_size(image.unpacked_size)}) lives in a tmpfs of "
                  f"{model.tmpfs_fraction:.0%} of guest memory, beside the workload")
    needs = PodNeeds(image_name, runtime_class, uid, gid, why, fs_group, timeout, timeout_why, memory,
                     memory_why, in_force)
    wanted = needs.annotations()
    if wanted:
        needs.notes.append('the annotations need containerd to pass them through: pod_annotations = '
                           '["io.katacontainers.*"] (kata-deploy sets it)')
    if memory > in_force.memory_mib and not in_force.memory_annotation:
        needs.notes.append(f"the guest needs {memory} MiB but {runtime_class} does not enable the "
                           "default_memory annotation (the Go runtime would refuse the pod): raise the "
                           "pod's memory limits (TDX sizes the guest as default_memory + limits) or "
                           "default_memory in the runtime class's config")
    if timeout > in_force.timeout_s and timeout > model.kubelet_timeout_s:
        needs.notes.append(f"{timeout} s is above the kubelet's runtimeRequestTimeout "
                           f"({model.kubelet_timeout_s} s by default): raise it, or the kubelet gives up "
                           "first")
    if not wanted:
        needs.notes.append(f"no annotation needed: {in_force.timeout_s} s and {in_force.memory_mib} MiB "
                           f"({in_force.source}) already suffice")
    return needs


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


def _security_context(needs: PodNeeds):
    from ruamel.yaml.comments import CommentedMap

    context = CommentedMap()
    if needs.run_as_user is not None:
        context["runAsUser"] = needs.run_as_user
        context.yaml_add_eol_comment(needs.user_why, "runAsUser")
    if needs.run_as_group is not None:
        context["runAsGroup"] = needs.run_as_group
    return context


def _annotate(annotations, needs: PodNeeds, existing: dict[str, Any] | None = None) -> None:
    why = {TIMEOUT_ANNOTATION: needs.timeout_why, MEMORY_ANNOTATION: needs.memory_why}
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
    if needs.fs_group is not None:
        spec["securityContext"] = CommentedMap(fsGroup=needs.fs_group)
        spec["securityContext"].yaml_add_eol_comment("--fs-group: volumes writable by this group",
                                                     "fsGroup")
    container = CommentedMap(name=container_name(needs.image_name), image=needs.image_name)
    context = _security_context(needs)
    if context:
        container["securityContext"] = context
    spec["containers"] = [container]
    pod["spec"] = spec
    lines = [f"# {header}"] + [f"# note: {note}" for note in needs.notes]
    return "\n".join(lines) + "\n" + _dump(pod)


# --- patching manifests ------------------------------------------------------------------------

_SEPARATOR = re.compile(r"^---[ \t]*(?:#[^\r\n]*)?\r?$", re.M)  # CRLF files: `---\r`


def split_documents(text: str) -> list[str]:
    """Documents with their separators kept, so joining them gives the text back byte for byte."""
    parts: list[str] = []
    start = 0
    for match in _SEPARATOR.finditer(text):
        if match.start() > start or parts:
            parts.append(text[start : match.start()])
        start = match.start()
    parts.append(text[start:])
    return parts


def same_image(a: str, b: str) -> bool:
    try:
        ra, rb = parse_docker_reference(a), parse_docker_reference(b)
    except ImagefixError:
        return a == b
    if ra.repository != rb.repository:
        return False
    if ra.digest and rb.digest:
        return ra.digest == rb.digest
    return (ra.tag or "latest") == (rb.tag or "latest")


def _pod_spec(doc: Any) -> Any:
    kind = doc.get("kind") if isinstance(doc, dict) else None
    path = WORKLOAD_PATHS.get(kind) if isinstance(kind, str) else None
    if path is None:
        return None
    node = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def workloads(doc: Any) -> list[Any]:
    """The workload objects of one document: itself, or the items of a List / *List."""
    if not isinstance(doc, dict):
        return []
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        return [item for item in doc["items"] if _pod_spec(item) is not None]
    return [doc] if _pod_spec(doc) is not None else []


def _pod_template(workload: Any) -> Any:
    """The mapping that holds the pod's metadata and spec (the Pod itself, or its template)."""
    node = workload
    for key in WORKLOAD_PATHS[workload["kind"]][:-1]:
        node = node[key]
    return node


def pod_annotations(workload: Any, where: str) -> dict[str, Any]:
    """The annotations on the pod (template) of a workload, checked to be a mapping."""
    metadata = _pod_template(workload).get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ImagefixError(f"{where}: metadata must be a mapping, not {type(metadata).__name__}")
    annotations = (metadata or {}).get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ImagefixError(f"{where}: metadata.annotations must be a mapping, not "
                            f"{type(annotations).__name__}")
    return dict(annotations or {})


def matching_containers(spec: Any, image_name: str) -> list[Any]:
    """Containers and init containers that run the image."""
    out = []
    for key in ("initContainers", "containers"):
        listed = spec.get(key)
        for container in listed if isinstance(listed, list) else []:
            if isinstance(container, dict) and same_image(str(container.get("image", "")), image_name):
                out.append(container)
    return out


def kustomize_patches(text: str, needs: PodNeeds) -> str:
    """Strategic-merge patches, one per workload that runs the image."""
    from ruamel.yaml.comments import CommentedMap

    docs = []
    for doc in (d for chunk in split_documents(text) for d in workloads(_yaml().load(chunk))):
        spec = _pod_spec(doc)
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
        pod_spec = CommentedMap(runtimeClassName=needs.runtime_class)
        if needs.fs_group is not None:
            pod_spec["securityContext"] = CommentedMap(fsGroup=needs.fs_group)
        pod_spec["containers"] = []
        for container in containers:
            entry = CommentedMap(name=container.get("name"))
            context = _security_context(needs)
            if context:
                entry["securityContext"] = context
            pod_spec["containers"].append(entry)
        template = CommentedMap(metadata=CommentedMap(annotations=CommentedMap()), spec=pod_spec)
        _annotate(template["metadata"]["annotations"], needs, pod_annotations(doc, "the manifest"))
        node = patch
        path = WORKLOAD_PATHS[doc["kind"]]
        if doc["kind"] == "Pod":
            patch["metadata"]["annotations"] = template["metadata"]["annotations"]
            patch["spec"] = pod_spec
        else:
            for key in path[:-2]:
                node[key] = CommentedMap()
                node = node[key]
            node[path[-2]] = template
        docs.append(_dump(patch))
    if not docs:
        raise ImagefixError(f"no Pod/Deployment/StatefulSet/Job/CronJob container uses {needs.image_name}")
    return "---\n".join(docs)
