"""Kubernetes manifests in (files, folders, stdin; YAML or JSON; Lists), workloads and containers out.

Each container carries the file and 1-based line of its `image:` so findings
(and SARIF) point into the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ImagefixError
from .pod import WORKLOAD_PATHS, _pod_spec, _pod_template, split_documents, workloads

SUFFIXES = (".yaml", ".yml", ".json")
MAX_MANIFESTS = 128 * 2**20  # one manifest file or stdin


@dataclass
class Container:
    name: str
    image: str
    line: int | None  # 1-based line of `image:`
    init: bool
    security: dict[str, Any]  # the container's securityContext
    memory_limit: int | None  # bytes


@dataclass
class Workload:
    file: str
    kind: str
    namespace: str
    name: str
    runtime_class: str | None
    annotations: dict[str, str]
    security: dict[str, Any]  # the pod's securityContext
    containers: list[Container] = field(default_factory=list)
    raw_annotations: dict[str, Any] = field(default_factory=dict)  # as the manifest types them (KIF410)

    @property
    def title(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


def manifest_paths(args: tuple[str, ...] | list[str]) -> list[str]:
    """Files as given, folders searched for *.yaml, *.yml, *.json (sorted), '-' for stdin."""
    out: list[str] = []
    for arg in args:
        path = Path(arg)
        if arg == "-" or path.is_file() or (path.exists() and not path.is_dir()):
            out.append(arg)  # a FIFO or device is refused where it is read, in its own words
        elif path.is_dir():
            out += sorted(str(p) for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            raise ImagefixError(f"{arg}: no such file or folder")
    return out


def read_manifest(path: str) -> tuple[str, str]:
    """(name, text) of a manifest file, or of stdin for '-'."""
    from ..fileio import decode_text, read_input

    name = "<stdin>" if path == "-" else path
    data = read_input(path, "manifest", MAX_MANIFESTS)
    return name, decode_text(data, name, "a Kubernetes manifest")


def load_workloads(path: str) -> list[Workload]:
    return workloads_in(*read_manifest(path))


def workloads_in(name: str, text: str) -> list[Workload]:
    return list(iter_workloads(name, text))


def iter_workloads(name: str, text: str) -> Iterator[Workload]:
    """Document by document, so that a caller can start on the first while the rest are read.
    libyaml (C) reads each document; the `image:` lines come from its nodes' marks. The round-trip
    parser is ~40x slower and only needed where a document is edited (`k8s fix`)."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    offset = 0
    for chunk in split_documents(text):
        loader = loader_class(chunk)
        try:
            node = loader.get_single_node()
            doc = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{offset + mark.line + 1}" if mark is not None else ""
            first = str(exc).strip().splitlines()[0]
            raise ImagefixError(f"{name}{line}: not valid YAML or JSON: {first}") from None
        finally:
            loader.dispose()
        lines: dict[int, int] = {}
        if node is not None:
            _image_lines(node, doc, lines, offset)
        for item in workloads(doc):
            yield _workload(item, name, offset, lines)
        offset += chunk.count("\n")


def _image_lines(node: Any, data: Any, out: dict[int, int], offset: int,
                 seen: set[int] | None = None) -> None:
    """id(container mapping) -> 1-based line of its `image:` value, walking nodes beside the data.
    An alias is the node it names: each node is walked once (nine aliases of nine aliases of ... made
    a walk of 9**9 steps)."""
    import yaml

    seen = set() if seen is None else seen
    stack = [(node, data)]
    while stack:
        node, data = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode) and isinstance(data, dict):
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                if key.value == "image":
                    out[id(data)] = offset + value.start_mark.line + 1
                if key.value in data and isinstance(value, (yaml.MappingNode, yaml.SequenceNode)):
                    stack.append((value, data[key.value]))
        elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
            stack.extend((item_node, item) for item_node, item in zip(node.value, data, strict=False)
                         if isinstance(item_node, (yaml.MappingNode, yaml.SequenceNode)))


def _workload(item: Any, file: str, offset: int, lines: dict[int, int] | None = None) -> Workload:
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    template = _pod_template(item)
    pod_meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    annotations = pod_meta.get("annotations") if isinstance(pod_meta.get("annotations"), dict) else {}
    spec = _pod_spec(item)
    security = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    runtime_class = spec.get("runtimeClassName")
    workload = Workload(file, str(item.get("kind")), str(metadata.get("namespace") or "default"),
                        str(metadata.get("name") or "?"),
                        runtime_class if isinstance(runtime_class, str) else None,
                        {str(k): str(v) for k, v in annotations.items()}, dict(security))
    workload.raw_annotations = {str(k): v for k, v in annotations.items()}
    for key, init in (("initContainers", True), ("containers", False)):
        listed = spec.get(key)
        for container in listed if isinstance(listed, list) else []:
            if not isinstance(container, dict):
                continue
            image = container.get("image")
            if not isinstance(image, str) or not image:
                raise ImagefixError(f"{file}: {workload.title} container {container.get('name', '?')!r} "
                                    "has no image")
            line = offset + container.lc.value("image")[0] + 1 if hasattr(container, "lc") \
                else (lines or {}).get(id(container))
            context = container.get("securityContext")
            workload.containers.append(Container(
                str(container.get("name") or "?"), image, line, init,
                dict(context) if isinstance(context, dict) else {}, _memory_limit(container)))
    return workload


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9,
          "T": 10**12, "k": 10**3, "m": 10**-3}


def _memory_limit(container: dict) -> int | None:
    """resources.limits.memory in bytes (Kubernetes quantity syntax), or None."""
    resources = container.get("resources")
    limits = resources.get("limits") if isinstance(resources, dict) else None
    value = limits.get("memory") if isinstance(limits, dict) else None
    if value is None:
        return None
    text = str(value).strip()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * _UNITS[unit])
            except ValueError:
                return None
    try:
        return int(float(text))
    except ValueError:
        return None


__all__ = ["WORKLOAD_PATHS", "Container", "Workload", "load_workloads", "manifest_paths"]
