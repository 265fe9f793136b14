"""A Kubernetes workload and its containers as the pod rules, `k8s check`, `k8s fix` and the webhook see
them: read by k8s/manifests.py, judged by rules/pod_subject.py (a model below both, so the rules need
nothing of k8s/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    generate_name: str | None = None  # metadata.generateName, when there is no name
    line: int | None = None  # 1-based line where the object starts
    raw_annotations: dict[str, Any] = field(default_factory=dict)  # as the manifest types them (KIF410)

    @property
    def title(self) -> str:
        name = self.name if self.name != "?" or not self.generate_name else f"{self.generate_name}*"
        return f"{self.namespace}/{self.kind}/{name}"
