"""Write into manifests what Kata workloads need, line by line: `k8s fix`, and `k8s pod REF --patch`.

For each container: the explicit identity the kubelet, containerd under guest
pull and Kata's genpolicy agree on (identity.py) - runAsUser and runAsGroup in
the container, the image's supplementary groups in the pod's
supplementalGroups - from the image's own /etc/passwd and /etc/group. A value
the manifest sets is never changed.
For the pod, the create-container timeout annotation when its largest image
needs more than is in force (raised, never lowered). Ids are never invented:
what cannot be resolved is left alone and reported.

`k8s fix` takes the Kata workloads and every image they run. A migration
(`--patch`) takes the workloads that run one image, whatever their class, and
also moves them to its runtime class with what `pod_needs` says (annotations,
fsGroup). Documents out of scope are only checked by libyaml (~0.05 ms each)
and stay byte for byte; the round-trip parser (~1 ms) reads the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..kata.budget import BudgetModel
from .audit import AuditOptions, is_kata
from .fixplan import FixPlan, ImageFor, plan_users, plan_workload
from .manifests import Workload, _workload
from .pod import (
    PodNeeds,
    _pod_spec,
    _pod_template,
    _yaml,
    annotation_reasons,
    matching_containers,
    pod_annotations,
    same_image,
    split_documents,
    workloads,
)
from .yamledit import DocumentEditor, Insert, indent_step

# Why each value is written (the end-of-line comment): the identity the image means, made explicit.
WHY = {
    "runAsUser": "the image's uid, explicit: containerd cannot look names up and genpolicy refuses "
                 "implicit ids under guest pull (imagefix)",
    "runAsGroup": "the image's group: the kubelet drops it and under guest pull the process would run "
                  "with gid 0 (imagefix)",
    "supplementalGroups": "the image's /etc/group groups: lost under guest pull otherwise (imagefix)",
}


@dataclass
class FixedManifest:
    name: str
    pieces: list[str]  # the documents, fixed; joined they are the manifest (written piece by piece)
    changed: bool
    changes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class Migration:
    """`k8s pod REF --patch`: the workloads running one image move to a Kata runtime class."""

    needs: PodNeeds
    image: Image


def fix_manifest(name: str, text: str, images: dict[str, tuple[Any, str | None]], options: AuditOptions,
                 model: BudgetModel, migration: Migration | None = None) -> FixedManifest:
    pieces: list[str] = []
    changes: list[str] = []
    changed = False
    loader = None
    offset = 0
    for number, chunk in enumerate(split_documents(text), start=1):
        if not _in_scope(_load(chunk, number), name, options, migration):
            pieces.append(chunk)
            offset += chunk.count("\n")
            continue
        loader = loader or _yaml()
        doc = _load(chunk, number, loader)
        editor = DocumentEditor(chunk, f"{name} document {number}")
        editor.step = indent_step(doc)
        for item in workloads(doc):
            workload = _workload(item, name, offset)
            if migration is not None:
                if matching_containers(_pod_spec(item), migration.needs.image_name):
                    changes += _migrate_workload(editor, item, workload, migration)
            elif is_kata(workload, options):
                changes += _fix_workload(editor, item, workload, images, options, model)
        piece = editor.apply()
        changed = changed or piece != chunk
        pieces.append(piece)
        offset += chunk.count("\n")
    return FixedManifest(name, pieces, changed, changes)


def _load(chunk: str, number: int, round_trip: Any = None) -> Any:
    """A document by libyaml (a check), or by the round-trip loader where it is edited; one error line."""
    import yaml
    from ruamel.yaml.error import YAMLError

    try:
        if round_trip is None:
            return yaml.load(chunk, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return round_trip.load(chunk)
    except (yaml.YAMLError, YAMLError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ImagefixError(f"document {number} is not valid YAML: {first}") from None


def _in_scope(doc: Any, name: str, options: AuditOptions, migration: Migration | None) -> bool:
    if migration is not None:
        image_name = migration.needs.image_name
        return any(matching_containers(_pod_spec(item), image_name) for item in workloads(doc))
    return any(is_kata(_workload(item, name, 0), options) for item in workloads(doc))


def _fix_workload(editor: DocumentEditor, item: Any, workload: Workload, images: dict,
                  options: AuditOptions, model: BudgetModel) -> list[str]:
    plan = plan_workload(workload, lambda ref: images.get(ref, (None, None))[0], options, model)
    apply_plan(editor, item, plan)
    return plan.changes


def _migrate_workload(editor: DocumentEditor, item: Any, workload: Workload,
                      migration: Migration) -> list[str]:
    """The runtime class, the annotations that raise what is in force, fsGroup; then the users of the
    containers that run the image, as `k8s fix` writes them."""
    needs = migration.needs
    spec = _pod_spec(item)
    editor.editable(spec, "the pod spec")
    if "runtimeClassName" not in spec:
        editor.insert(spec, Insert({"runtimeClassName": needs.runtime_class}, before=next(iter(spec), None)))
    elif spec["runtimeClassName"] != needs.runtime_class:
        editor.set_scalar(spec, "runtimeClassName", needs.runtime_class)
    wanted = needs.annotations(pod_annotations(item, editor.where))
    if wanted:
        why = annotation_reasons(needs)
        ensure_values(editor, _pod_template(item), ["metadata", "annotations"], wanted,
                      {k: why[k] for k in wanted}, before="spec")
    # the identity itself (runAsUser/runAsGroup, supplementalGroups) exactly as `k8s fix` writes it
    _fix_users(editor, item, workload,
               lambda ref: migration.image if same_image(ref, needs.image_name) else None,
               {"fsGroup": needs.fs_group} if needs.fs_group is not None else {})
    names = [c.name for c in workload.containers if same_image(c.image, needs.image_name)]
    return [f"{workload.kind}/{workload.name}: {', '.join(names)}"]


def _fix_users(editor: DocumentEditor, item: Any, workload: Workload, image_for: ImageFor,
               pod_values: dict[str, Any] | None = None) -> list[str]:
    """The explicit identity of every container that runs a readable image (fixplan.py), written in one
    edit per securityContext with `pod_values` (the fsGroup a migration adds)."""
    plan = plan_users(workload, image_for, pod_values)
    apply_plan(editor, item, plan)
    return plan.changes


def apply_plan(editor: DocumentEditor, item: Any, plan: FixPlan) -> None:
    """The plan as line edits: each container's securityContext, the pod's, then the annotations."""
    spec = _pod_spec(item)
    raw_containers = [c for key in ("initContainers", "containers") if isinstance(spec.get(key), list)
                      for c in spec[key] if isinstance(c, dict)]
    for entry in plan.containers:
        ensure_values(editor, raw_containers[entry.index], ["securityContext"], entry.values,
                      {key: WHY[key] for key in entry.values if key in WHY},
                      what=f"the securityContext of container {entry.name}")
    if plan.pod_security:
        ensure_values(editor, spec, ["securityContext"], plan.pod_security,
                      {k: WHY[k] for k in plan.pod_security if k in WHY}, what="the pod's securityContext")
    if plan.annotations:
        ensure_values(editor, _pod_template(item), ["metadata", "annotations"], plan.annotations,
                      plan.annotation_why, before="spec")


def ensure_values(editor: DocumentEditor, parent: Any, path: list[str], values: dict[str, Any],
                  comments: dict[str, str], *, before: str | None = None, what: str = "") -> None:
    """Set `values` in the mapping at `path` under `parent`, creating what is missing; existing
    scalars that differ are replaced on their line."""
    node = parent
    for depth, key in enumerate(path):
        editor.editable(node, what or key)
        child = node.get(key) if isinstance(node, dict) else None
        rest = path[depth + 1:]
        nested: dict[str, Any] = dict(values)
        for name in reversed(rest):
            nested = {name: nested}
        if child is None or (isinstance(child, dict) and not len(child)):
            if key in node:
                editor.fill_empty(node, key, Insert(nested, comments))
            else:
                editor.insert(node, Insert({key: nested}, comments, before=before if depth == 0 else None))
            return
        if not isinstance(child, dict):
            raise ImagefixError(f"{editor.where}: {key} at line {node.lc.key(key)[0] + 1} is not a mapping")
        node = child
    editor.editable(node, what or (path[-1] if path else "mapping"))
    new = {}
    for key, value in values.items():
        if key not in node:
            new[key] = value
        elif node[key] != value:
            editor.set_scalar(node, key, value)
    if new:
        editor.insert(node, Insert(new, comments))


__all__ = ["WHY", "FixedManifest", "Migration", "fix_manifest"]
