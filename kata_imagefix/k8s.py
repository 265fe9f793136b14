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

from .budget import BudgetModel
from .errors import ImagefixError
from .model import Image
from .reference import parse_docker_reference
from .sizes import human_size
from .users import UserKind, UserSpec, resolve_user

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
}


@dataclass
class PodNeeds:
    image_name: str  # as manifests spell it
    runtime_class: str
    run_as_user: int | None
    run_as_group: int | None
    user_why: str
    fs_group: int | None
    timeout_s: int
    timeout_why: str
    memory_mib: int
    memory_why: str
    notes: list[str] = field(default_factory=list)

    def annotations(self) -> dict[str, str]:
        return {TIMEOUT_ANNOTATION: str(self.timeout_s), MEMORY_ANNOTATION: str(self.memory_mib)}


def pod_needs(image: Image, model: BudgetModel, *, image_name: str, runtime_class: str,
              fs_group: int | None) -> PodNeeds:
    spec = UserSpec.parse(image.user)
    uid = gid = None
    if spec.kind is UserKind.ROOT:
        why = "the image runs as root: no lookup needed; set runAsUser if the workload need not be root"
    else:
        resolution = resolve_user(spec, image.read_file)
        if spec.kind in (UserKind.NAMED, UserKind.INVALID) and not resolution.ok:
            raise ImagefixError(
                f"{image.reference}: runs as named user {spec.raw!r} whose uid/gid cannot be found "
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
    estimate = model.estimate(image.unpacked_size)
    timeout = max(model.create_timeout_s, estimate.recommended_timeout_seconds)
    timeout_why = (f"guest pull + unpack of {human_size(image.unpacked_size)} needs "
                   f"~{estimate.needed_timeout_seconds:.0f} s with margin (at {model.pull_rate_mb_s:g} MB/s)")
    memory = max(model.guest_memory_mib, estimate.recommended_memory_mib)
    memory_why = (f"the unpacked image ({human_size(image.unpacked_size)}) lives in a tmpfs of "
                  f"{model.tmpfs_fraction:.0%} of guest memory, beside the workload")
    notes = ['the annotations need containerd to pass them through: pod_annotations = '
             '["io.katacontainers.*"] (kata-deploy sets it)']
    if timeout > model.kubelet_timeout_s:
        notes.append(f"{timeout} s is above the kubelet's runtimeRequestTimeout ({model.kubelet_timeout_s} s "
                     "by default): raise it, or the kubelet gives up first")
    return PodNeeds(image_name, runtime_class, uid, gid, why, fs_group, timeout, timeout_why, memory,
                    memory_why, notes)


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


def _annotate(annotations, needs: PodNeeds) -> None:
    annotations[TIMEOUT_ANNOTATION] = _quoted(str(needs.timeout_s))
    annotations.yaml_add_eol_comment(needs.timeout_why, TIMEOUT_ANNOTATION)
    annotations[MEMORY_ANNOTATION] = _quoted(str(needs.memory_mib))
    annotations.yaml_add_eol_comment(needs.memory_why, MEMORY_ANNOTATION)


def container_name(image_name: str) -> str:
    base = image_name.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-")[:63] or "app"


def pod_yaml(needs: PodNeeds, header: str) -> str:
    from ruamel.yaml.comments import CommentedMap

    pod = CommentedMap()
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    metadata = CommentedMap(name=container_name(needs.image_name))
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

_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)


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
    path = WORKLOAD_PATHS.get(kind or "")
    node = doc
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _pod_metadata(doc: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap

    path = WORKLOAD_PATHS[doc["kind"]][:-1]
    node = doc
    for key in path:
        node = node[key]
    if node.get("metadata") is None:
        node.pop("metadata", None)
        node.insert(0, "metadata", CommentedMap())  # where people write it: before spec
    return node["metadata"]


def _sequence_indent(text: str) -> tuple[int, int, int]:
    """Keep the file's list style: `containers:\\n- name` or `containers:\\n  - name`."""
    match = re.search(r"^( *)[A-Za-z]+:\s*\n( *)- ", text, re.M)
    if match and len(match.group(2)) > len(match.group(1)):
        return 2, 4, 2
    return 2, 2, 0


def patch_manifest(text: str, needs: PodNeeds) -> tuple[str, list[str]]:
    """Apply the needs to every container running the image; other documents stay byte-identical."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    out: list[str] = []
    changed: list[str] = []
    for number, chunk in enumerate(split_documents(text), start=1):
        yaml = _yaml()
        try:
            doc = yaml.load(chunk)
        except YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ImagefixError(f"document {number} is not valid YAML: {first}") from None
        spec = _pod_spec(doc)
        containers = [c for c in (spec or {}).get("containers") or []
                      if isinstance(c, dict) and same_image(str(c.get("image", "")), needs.image_name)]
        if not containers:
            out.append(chunk)
            continue
        mapping, sequence, offset = _sequence_indent(chunk)
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        if "runtimeClassName" in spec:
            spec["runtimeClassName"] = needs.runtime_class
        else:
            spec.insert(0, "runtimeClassName", needs.runtime_class)
        metadata = _pod_metadata(doc)
        if metadata.get("annotations") is None:
            metadata["annotations"] = CommentedMap()
        _annotate(metadata["annotations"], needs)
        if needs.fs_group is not None:
            if spec.get("securityContext") is None:
                spec["securityContext"] = CommentedMap()
            spec["securityContext"]["fsGroup"] = needs.fs_group
        for container in containers:
            context = container.get("securityContext")
            if context is None:
                context = container["securityContext"] = CommentedMap()
            for key, value in _security_context(needs).items():
                context[key] = value
            if needs.run_as_user is not None:
                context.yaml_add_eol_comment(needs.user_why, "runAsUser")
        name = (doc.get("metadata") or {}).get("name", "?")
        changed.append(f"{doc['kind']}/{name}: {', '.join(str(c.get('name')) for c in containers)}")
        prefix = ""
        if chunk.startswith("---"):
            first_line_end = chunk.find("\n") + 1
            prefix = chunk[:first_line_end] if first_line_end else chunk + "\n"
        out.append(prefix + _dump(doc, yaml))
    if not changed:
        raise ImagefixError(f"no Pod/Deployment/StatefulSet/Job/CronJob container uses {needs.image_name}")
    return "".join(out), changed


def kustomize_patches(text: str, needs: PodNeeds) -> str:
    """Strategic-merge patches, one per workload that runs the image."""
    from ruamel.yaml.comments import CommentedMap

    docs = []
    for chunk in split_documents(text):
        doc = _yaml().load(chunk)
        spec = _pod_spec(doc)
        containers = [c for c in (spec or {}).get("containers") or []
                      if isinstance(c, dict) and same_image(str(c.get("image", "")), needs.image_name)]
        if not containers:
            continue
        patch = CommentedMap(apiVersion=doc["apiVersion"], kind=doc["kind"])
        patch["metadata"] = CommentedMap(name=doc["metadata"]["name"])
        if doc["metadata"].get("namespace"):
            patch["metadata"]["namespace"] = doc["metadata"]["namespace"]
        pod_spec = CommentedMap(runtimeClassName=needs.runtime_class)
        if needs.fs_group is not None:
            pod_spec["securityContext"] = CommentedMap(fsGroup=needs.fs_group)
        pod_spec["containers"] = []
        for container in containers:
            entry = CommentedMap(name=container["name"])
            context = _security_context(needs)
            if context:
                entry["securityContext"] = context
            pod_spec["containers"].append(entry)
        template = CommentedMap(metadata=CommentedMap(annotations=CommentedMap()), spec=pod_spec)
        _annotate(template["metadata"]["annotations"], needs)
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
