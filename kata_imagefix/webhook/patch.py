"""A fix plan (k8s/fixplan.py) as an RFC 6902 JSONPatch against the object the API server sent: a Pod,
or a controller whose pod template is fixed (the paths of k8s/walk.py's WORKLOAD_PATHS).

Only `add` and `replace` operations, at paths that exist or whose parent is
added in the same patch; values the pod sets are never touched (the plan
never changes them; a key already present with the same value is skipped).
"""

from __future__ import annotations

import copy
from typing import Any

from ..k8s.fixplan import FixPlan
from ..k8s.walk import WORKLOAD_PATHS


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` as `~0`, `/` as `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def spec_path(obj: dict[str, Any]) -> str:
    """The pointer of the pod spec: /spec for a Pod, /spec/template/spec for a Deployment, ..."""
    return "/" + "/".join(WORKLOAD_PATHS[str(obj.get("kind"))])


def container_paths(obj: dict[str, Any]) -> list[str]:
    """The pointer of every container, init containers first - the order of Workload.containers."""
    base = spec_path(obj)
    spec = _at(obj, base)
    spec = spec if isinstance(spec, dict) else {}
    out = []
    for key in ("initContainers", "containers"):
        listed = spec.get(key)
        for index, container in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(container, dict):
                out.append(f"{base}/{key}/{index}")
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


def annotation_ops(obj: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """Annotations on the pod: the Pod's own, or its template's."""
    if not values:
        return []
    template = spec_path(obj).rpartition("/")[0]
    node = _at(obj, template) if template else obj
    if not isinstance((node or {}).get("metadata"), dict):
        return [{"op": "add", "path": f"{template}/metadata", "value": {"annotations": dict(values)}}]
    return values_ops(obj, f"{template}/metadata/annotations", values)


def plan_ops(obj: dict[str, Any], plan: FixPlan) -> list[dict[str, Any]]:
    """The JSONPatch that writes the plan into the object."""
    paths = container_paths(obj)
    ops: list[dict[str, Any]] = []
    for entry in plan.containers:
        ops += values_ops(obj, f"{paths[entry.index]}/securityContext", entry.values)
    ops += values_ops(obj, f"{spec_path(obj)}/securityContext", plan.pod_security)
    ops += annotation_ops(obj, plan.annotations)
    return ops


def applied(pod: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod with the patch applied (only the add/replace operations plan_ops writes)."""
    out = copy.deepcopy(pod)
    for op in ops:
        parent_path, _, last = op["path"].rpartition("/")
        parent = _at(out, parent_path) if parent_path else out
        parent[last.replace("~1", "/").replace("~0", "~")] = copy.deepcopy(op["value"])
    return out


__all__ = ["annotation_ops", "applied", "container_paths", "escape", "plan_ops", "spec_path", "values_ops"]
