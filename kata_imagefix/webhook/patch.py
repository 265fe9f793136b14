"""A fix plan (k8s/fixplan.py) as an RFC 6902 JSONPatch against the Pod the API server sent.

Only `add` and `replace` operations, at paths that exist or whose parent is
added in the same patch; values the pod sets are never touched (the plan
never changes them; a key already present with the same value is skipped).
"""

from __future__ import annotations

import copy
from typing import Any

from ..k8s.fixplan import FixPlan


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` as `~0`, `/` as `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def container_paths(pod: dict[str, Any]) -> list[str]:
    """The pointer of every container, init containers first - the order of Workload.containers."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    out = []
    for key in ("initContainers", "containers"):
        listed = spec.get(key)
        for index, container in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(container, dict):
                out.append(f"/spec/{key}/{index}")
    return out


def _at(pod: dict[str, Any], path: str) -> Any:
    node: Any = pod
    for token in path.strip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node.get(token) if isinstance(node, dict) \
            else None
        if node is None:
            return None
    return node


def values_ops(pod: dict[str, Any], path: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Set `values` in the mapping at `path`: the whole mapping added when it is missing (or null),
    else each key added or replaced."""
    if not values:
        return []
    node = _at(pod, path)
    if not isinstance(node, dict):
        return [{"op": "add", "path": path, "value": dict(values)}]
    ops = []
    for key, value in values.items():
        if key not in node:
            ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": value})
        elif node[key] != value:
            ops.append({"op": "replace", "path": f"{path}/{escape(key)}", "value": value})
    return ops


def annotation_ops(pod: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    if not values:
        return []
    if not isinstance(pod.get("metadata"), dict):
        return [{"op": "add", "path": "/metadata", "value": {"annotations": dict(values)}}]
    return values_ops(pod, "/metadata/annotations", values)


def plan_ops(pod: dict[str, Any], plan: FixPlan) -> list[dict[str, Any]]:
    """The JSONPatch that writes the plan into the pod."""
    paths = container_paths(pod)
    ops: list[dict[str, Any]] = []
    for entry in plan.containers:
        ops += values_ops(pod, f"{paths[entry.index]}/securityContext", entry.values)
    ops += values_ops(pod, "/spec/securityContext", plan.pod_security)
    ops += annotation_ops(pod, plan.annotations)
    return ops


def applied(pod: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod with the patch applied (only the add/replace operations plan_ops writes)."""
    out = copy.deepcopy(pod)
    for op in ops:
        parent_path, _, last = op["path"].rpartition("/")
        parent = _at(out, parent_path) if parent_path else out
        parent[last.replace("~1", "/").replace("~0", "~")] = copy.deepcopy(op["value"])
    return out


__all__ = ["annotation_ops", "applied", "container_paths", "escape", "plan_ops", "values_ops"]
