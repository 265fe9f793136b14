"""`imagefix k8s fix`: write into manifests what Kata workloads need, line by line.

For each container of a Kata workload: a numeric runAsUser/runAsGroup from
its image's own /etc/passwd and /etc/group where containerd would otherwise
look a name up, the group where a uid alone would run with gid 0, the user
where a group alone would be refused; for the pod, the create-container
timeout annotation when its largest image needs more than is in force (raised,
never lowered). Ids are never invented: what cannot be resolved is left alone
and reported. Documents without a change stay byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..kata.budget import BudgetModel
from ..users import UserKind, UserSpec, resolve_user
from .audit import AuditOptions, _subject, is_kata
from .manifests import Workload, _workload
from .pod import (
    TIMEOUT_ANNOTATION,
    _ensure,
    _pod_spec,
    _pod_template,
    _yaml,
    indent_step,
    split_documents,
    workloads,
)
from .yamledit import DocumentEditor

WHY_USER = "numeric: under guest pull containerd cannot look names up on the host (imagefix)"
WHY_GROUP = "the image's primary group: without it the process runs with gid 0 (imagefix)"


@dataclass
class FixedManifest:
    name: str
    original: str
    text: str
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original


def fix_manifest(name: str, text: str, images: dict[str, tuple[Any, str | None]], options: AuditOptions,
                 model: BudgetModel) -> FixedManifest:
    out: list[str] = []
    changes: list[str] = []
    loader = _yaml()
    offset = 0
    for number, chunk in enumerate(split_documents(text), start=1):
        doc = loader.load(chunk)
        editor = DocumentEditor(chunk, f"{name} document {number}")
        editor.step = indent_step(doc)
        for item in workloads(doc):
            workload = _workload(item, name, offset)
            if is_kata(workload, options):
                changes += _fix_workload(editor, item, workload, images, options, model)
        out.append(editor.apply())
        offset += chunk.count("\n")
    return FixedManifest(name, text, "".join(out), changes)


def _fix_workload(editor: DocumentEditor, item: Any, workload: Workload, images: dict,
                  options: AuditOptions, model: BudgetModel) -> list[str]:
    changes: list[str] = []
    spec = _pod_spec(item)
    pod_security = workload.security
    raw_containers = [c for key in ("initContainers", "containers") if isinstance(spec.get(key), list)
                      for c in spec[key] if isinstance(c, dict)]
    for raw, container in zip(raw_containers, workload.containers, strict=True):
        image, _error = images.get(container.image, (None, None))
        if image is None:
            continue
        values = _user_values(container.security, pod_security, image)
        if values:
            comments = {"runAsUser": WHY_USER} if "runAsUser" in values else {"runAsGroup": WHY_GROUP}
            _ensure(editor, raw, ["securityContext"], values, comments,
                    what=f"container {container.name}'s securityContext")
            shown = ", ".join(f"{k}: {v}" for k, v in values.items())
            changes.append(f"{workload.title} {container.name}: {shown}")
    subject = _subject(workload, [], model, options)
    read = [images.get(c.image, (None, None))[0] for c in workload.containers]
    sizes = [image.unpacked_size for image in read if image is not None]
    if sizes:
        estimate = subject.model.estimate(max(sizes))
        if not estimate.fits_create_timeout:
            seconds = estimate.recommended_timeout_seconds
            why = f"guest pull + unpack needs ~{estimate.needed_timeout_seconds:.0f} s with margin (imagefix)"
            _ensure(editor, _pod_template(item), ["metadata", "annotations"],
                    {TIMEOUT_ANNOTATION: str(seconds)}, {TIMEOUT_ANNOTATION: why}, before="spec")
            changes.append(f"{workload.title}: timeout {subject.model.create_timeout_s} -> {seconds} s")
    return changes


def _user_values(container: dict, pod: dict, image: Any) -> dict[str, int]:
    """What to write in the container's securityContext so containerd needs no lookup; {} when nothing
    is needed or the ids cannot be found (never invented)."""
    def setting(key: str) -> int | None:
        value = container.get(key) if container.get(key) is not None else pod.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    uid, gid = setting("runAsUser"), setting("runAsGroup")
    spec = UserSpec.parse(image.user)
    if uid is None:
        if spec.kind in (UserKind.NAMED, UserKind.INVALID) or gid is not None or (
                spec.kind is UserKind.NUMERIC_NO_GROUP):
            resolution = resolve_user(spec, image.read_file)
            if not resolution.ok:
                return {}
            if spec.kind is UserKind.NUMERIC_NO_GROUP and gid is None and (
                    not resolution.gid_from_passwd or resolution.gid == 0):
                return {}  # gid 0 with or without guest pull: nothing differs
            values = {"runAsUser": resolution.uid}
            if gid is None:
                values["runAsGroup"] = resolution.gid
            return values
        return {}
    if gid is None:
        primary = resolve_user(UserSpec.parse(str(uid)), image.read_file)
        if primary.gid_from_passwd and primary.gid not in (None, 0):
            return {"runAsGroup": primary.gid}
    return {}


__all__ = ["FixedManifest", "fix_manifest"]
