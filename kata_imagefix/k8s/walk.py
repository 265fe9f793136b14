"""Walking manifests: documents split byte for byte, the workload kinds and where each keeps its pod,
the containers that run an image. Every k8s/ module and the webhook walk manifests through these."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..errors import ImagefixError
from ..image.reference import parse_docker_reference

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


@cache
def manifest_loader() -> Any:
    """The YAML loader every k8s/ module reads manifests with: libyaml's safe loader (PyYAML's when
    libyaml is not built in), with a timestamp kept as the string it is written as. Kubernetes reads
    a manifest as JSON, which has no dates (sigs.k8s.io/yaml turns YAML into JSON first), so
    `2001-12-14` is text there; and PyYAML's date constructor raised ValueError on `2001-13-45`."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("ManifestLoader", (base,), {})
    loader.add_constructor("tag:yaml.org,2002:timestamp", base.construct_yaml_str)
    for tag, construct in (("int", base.construct_yaml_int), ("float", base.construct_yaml_float)):
        loader.add_constructor(f"tag:yaml.org,2002:{tag}", _refusing(construct, tag))
    return loader


def _refusing(construct: Any, tag: str) -> Any:
    """`construct`, with a value its explicit tag cannot be (`!!int 0x`) refused as a YAML error (a
    line for the report, as a Kubernetes decoder refuses it), not raised as Python's ValueError."""
    def checked(loader: Any, node: Any) -> Any:
        import yaml

        try:
            return construct(loader, node)
        except (ValueError, TypeError):
            raise yaml.constructor.ConstructorError(
                None, None, f"{str(node.value)[:40]!r} is not a valid !!{tag}", node.start_mark) from None
    return checked


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


def pod_spec(doc: Any) -> Any:
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
        return [item for item in doc["items"] if pod_spec(item) is not None]
    return [doc] if pod_spec(doc) is not None else []


def pod_template(workload: Any) -> Any:
    """The mapping that holds the pod's metadata and spec (the Pod itself, or its template)."""
    node = workload
    for key in WORKLOAD_PATHS[workload["kind"]][:-1]:
        node = node[key]
    return node


def pod_annotations(workload: Any, where: str) -> dict[str, Any]:
    """The annotations on the pod (template) of a workload, checked to be a mapping."""
    metadata = pod_template(workload).get("metadata")
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
