"""Write into manifests what Kata workloads need, line by line: `k8s fix`, and `k8s pod REF --patch`.

For each container: a numeric runAsUser/runAsGroup from its image's own
/etc/passwd and /etc/group where containerd would otherwise look a name up,
the group where a uid alone would run with gid 0, the user where a group alone
would be refused; a runAsUser the manifest sets is kept (containerd uses it).
For the pod, the create-container timeout annotation when its largest image
needs more than is in force (raised, never lowered). Ids are never invented:
what cannot be resolved is left alone and reported.

`k8s fix` takes the Kata workloads and every image they run. A migration
(`--patch`) takes the workloads that run one image, whatever their class, and
also moves them to its runtime class with what `pod_needs` says (annotations,
fsGroup). Documents out of scope, or that need nothing, are only read by
libyaml (~0.05 ms each) and stay byte for byte; yamlpos (libyaml's nodes with
their positions) reads those an edit is wanted in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..kata.budget import BudgetModel
from ..users import UserKind, UserSpec, resolve_user
from .audit import AuditOptions, _subject, is_kata
from .manifests import Workload, _workload, yaml_error
from .pod import (
    MEMORY_ANNOTATION,
    TIMEOUT_ANNOTATION,
    PodNeeds,
    _pod_spec,
    _pod_template,
    matching_containers,
    pod_annotations,
    same_image,
    split_documents,
    workloads,
)
from .yamledit import DocumentEditor, Insert, indent_step

WHY_USER = "numeric: under guest pull containerd cannot look names up on the host (imagefix)"
WHY_GROUP = "the image's primary group: without it the process runs with gid 0 (imagefix)"
WHY_LONE_GROUP = "the image's uid: containerd refuses a runAsGroup without a runAsUser (imagefix)"


@dataclass
class FixedManifest:
    name: str
    pieces: list[str]  # the documents, fixed; joined they are the manifest (written piece by piece)
    changed: bool
    changes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "file:line: why", one per workload left as it was
    edited: list[tuple[int, int]] = field(default_factory=list)  # [first, last) original lines, changed docs
    edited_pieces: set[int] = field(default_factory=set)  # indexes into `pieces` of the changed documents

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def edited_only(self) -> str:
        """The fixed manifest with every unchanged document blanked (its lines kept as empty lines): what
        an audit of the changes needs to read, at the lines the edited documents have in `text`."""
        return "".join(piece if index in self.edited_pieces else "\n" * piece.count("\n")
                       for index, piece in enumerate(self.pieces))

    def was_edited(self, line: int | None) -> bool:
        """Whether the original line (a workload's) lies in a document that was changed."""
        return line is None or any(first <= line < last for first, last in self.edited)


@dataclass(frozen=True)
class Migration:
    """`k8s pod REF --patch`: the workloads running one image move to a Kata runtime class."""

    needs: PodNeeds
    image: Image


def fix_manifest(name: str, text: str, images: dict[str, tuple[Any, str | None]], options: AuditOptions,
                 model: BudgetModel, migration: Migration | None = None) -> FixedManifest:
    """The manifest with its Kata workloads fixed. A workload that cannot be edited (an anchor, a
    duplicate key) is left as it was and named in `refused`; a document that is not valid YAML is left
    as it is (the audit reports it). A migration (`--patch`) stops at the first of either instead."""
    pieces: list[str] = []
    changes: list[str] = []
    refused: list[str] = []
    changed = False
    loader = None
    offset = 0
    edited: list[tuple[int, int]] = []
    edited_pieces: set[int] = set()
    for chunk in split_documents(text):
        try:
            in_scope = _wants_edit(_load(chunk, name, offset), name, options, migration, images, model)
        except ImagefixError:
            if migration is not None:
                raise
            in_scope = False
        if not in_scope:
            pieces.append(chunk)
            offset += chunk.count("\n")
            continue
        loader = loader or _round_trip()
        doc = _load(chunk, name, offset, loader)
        editor = DocumentEditor(chunk, name, offset)
        editor.step = indent_step(doc)
        duplicate = duplicate_key(chunk)
        for item in workloads(doc):
            mark = editor.mark()
            try:
                workload = _workload(item, name, offset)
                if migration is not None:
                    if matching_containers(_pod_spec(item), migration.needs.image_name):
                        changes_here = _migrate_workload(editor, item, workload, migration)
                    else:
                        changes_here = []
                elif is_kata(workload, options):
                    changes_here = _fix_workload(editor, item, workload, images, options, model)
                else:
                    changes_here = []
                if duplicate is not None and editor.mark() != mark:
                    raise ImagefixError(f"{editor.where(duplicate[1])}: {duplicate[0]} is written twice "
                                        f"(also line {offset + duplicate[2] + 1}): YAML tools disagree on "
                                        "which one counts (k8s check reads the last); keep one, then run "
                                        "again")
                changes += changes_here
            except ImagefixError as exc:
                if migration is not None:
                    raise
                editor.rollback(mark)
                refused.append(str(exc))
        piece = editor.apply()
        if piece != chunk:
            changed = True
            edited.append((offset + 1, offset + chunk.count("\n") + 2))
            edited_pieces.add(len(pieces))
        pieces.append(piece)
        offset += chunk.count("\n")
    return FixedManifest(name, pieces, changed, changes, refused, edited, edited_pieces)


def _round_trip() -> Any:
    """The loader of documents to edit: data that knows where each key is written (yamlpos, on libyaml).
    Duplicate keys are found (and refused) by `duplicate_key` with their lines."""
    from . import yamlpos

    return yamlpos


def _load(chunk: str, name: str, offset: int, round_trip: Any = None) -> Any:
    """A document by libyaml (a check), or with its positions where it is edited; one error line."""
    import yaml
    from ruamel.yaml.error import YAMLError

    try:
        if round_trip is None:
            return yaml.load(chunk, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return round_trip.load(chunk)
    except (yaml.YAMLError, YAMLError) as exc:
        line, message = yaml_error(exc, offset)
        raise ImagefixError(f"{name}:{line}: not valid YAML: {message}" if line else
                            f"{name}: not valid YAML: {message}") from None


def duplicate_key(chunk: str) -> tuple[str, int, int] | None:
    """The first key written twice in one mapping, with both 0-based lines (libyaml's nodes), or None.
    Parsers disagree on which one wins (PyYAML the last, ruamel.yaml the first, strict ones refuse)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(chunk)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        return key.value, seen[key.value], key.start_mark.line
                    seen[key.value] = key.start_mark.line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return None


def _wants_edit(doc: Any, name: str, options: AuditOptions, migration: Migration | None,
                images: dict, model: BudgetModel) -> bool:
    """Whether this document is to be edited: `k8s fix` runs its decisions on libyaml's data with a
    probe for an editor - the first edit it asks for says yes (the documents that need nothing are
    kept as they are, without building their positions)."""
    if migration is not None:
        image_name = migration.needs.image_name
        return any(matching_containers(_pod_spec(item), image_name) for item in workloads(doc))
    for item in workloads(doc):
        try:
            workload = _workload(item, name, 0)
        except ImagefixError:  # a patch fragment: not a pod, left as it is
            continue
        if not is_kata(workload, options):
            continue
        try:
            _fix_workload(_Probe(), item, workload, images, options, model)  # type: ignore[arg-type]
        except (_WouldEdit, ImagefixError, AttributeError):  # an edit, or a refusal to name with its line
            return True
    return False


class _WouldEdit(Exception):
    pass


class _Probe:
    """Stands in for DocumentEditor on plain data: checks nothing, stops at the first edit."""

    step = 2

    def editable(self, node: Any, what: str) -> None:
        pass

    def own(self, mapping: Any, key: str, what: str) -> None:
        pass

    def where(self, line: int) -> str:
        return ""

    def set_scalar(self, *args: Any, **kw: Any) -> None:
        raise _WouldEdit

    insert = fill_empty = set_scalar


def _fix_workload(editor: DocumentEditor, item: Any, workload: Workload, images: dict,
                  options: AuditOptions, model: BudgetModel) -> list[str]:
    changes = _fix_users(editor, item, workload, lambda ref: images.get(ref, (None, None))[0])
    subject = _subject(workload, [], model, options)
    read = [images.get(c.image, (None, None))[0] for c in workload.containers]
    sizes = [image.unpacked_size for image in read if image is not None]
    if sizes:
        estimate = subject.model.estimate(max(sizes))
        if not estimate.fits_create_timeout:
            seconds = estimate.recommended_timeout_seconds
            why = f"guest pull + unpack needs ~{estimate.needed_timeout_seconds:.0f} s with margin (imagefix)"
            ensure_values(editor, _pod_template(item), ["metadata", "annotations"],
                          {TIMEOUT_ANNOTATION: str(seconds)}, {TIMEOUT_ANNOTATION: why}, before="spec")
            changes.append(f"{workload.title}: timeout {subject.model.create_timeout_s} -> {seconds} s")
    return changes


def _migrate_workload(editor: DocumentEditor, item: Any, workload: Workload,
                      migration: Migration) -> list[str]:
    """The runtime class, the annotations that raise what is in force, fsGroup; then the users of the
    containers that run the image, as `k8s fix` writes them."""
    needs = migration.needs
    spec = _pod_spec(item)
    editor.editable(spec, "the pod spec")
    editor.own(spec, "runtimeClassName", "the pod spec")
    if "runtimeClassName" not in spec:
        editor.insert(spec, Insert({"runtimeClassName": needs.runtime_class}, before=next(iter(spec), None)))
    elif spec["runtimeClassName"] != needs.runtime_class:
        editor.set_scalar(spec, "runtimeClassName", needs.runtime_class)
    wanted = needs.annotations(pod_annotations(item, editor.where(_pod_template(item).lc.line)))
    if wanted:
        why = {TIMEOUT_ANNOTATION: needs.timeout_why, MEMORY_ANNOTATION: needs.memory_why}
        ensure_values(editor, _pod_template(item), ["metadata", "annotations"], wanted,
                      {k: why[k] for k in wanted}, before="spec")
    if needs.fs_group is not None:
        ensure_values(editor, spec, ["securityContext"], {"fsGroup": needs.fs_group}, {})
    _fix_users(editor, item, workload,
               lambda ref: migration.image if same_image(ref, needs.image_name) else None)
    names = [c.name for c in workload.containers if same_image(c.image, needs.image_name)]
    return [f"{workload.kind}/{workload.name}: {', '.join(names)}"]


def _fix_users(editor: DocumentEditor, item: Any, workload: Workload,
               image_for: Callable[[str], Image | None]) -> list[str]:
    changes: list[str] = []
    spec = _pod_spec(item)
    raw_containers = [c for key in ("initContainers", "containers") if isinstance(spec.get(key), list)
                      for c in spec[key] if isinstance(c, dict)]
    for raw, container in zip(raw_containers, workload.containers, strict=True):
        image = image_for(container.image)
        if image is None:
            continue
        values, why = user_values(container.security, workload.security, image)
        if values:
            comments = {"runAsGroup" if why == WHY_GROUP else "runAsUser": why}
            ensure_values(editor, raw, ["securityContext"], values, comments,
                          what=f"the securityContext of container {container.name}")
            shown = ", ".join(f"{k}: {v}" for k, v in values.items())
            changes.append(f"{workload.title} {container.name}: {shown}")
    return changes


def user_values(container: dict, pod: dict, image: Any) -> tuple[dict[str, int], str]:
    """What to write in the container's securityContext so containerd needs no lookup, and why; ({}, "")
    when nothing is needed or the ids cannot be found (never invented)."""
    def setting(key: str) -> int | None:
        value = container.get(key) if container.get(key) is not None else pod.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    uid, gid = setting("runAsUser"), setting("runAsGroup")
    spec = UserSpec.parse(image.user)
    if uid is not None:
        if gid is None:
            primary = resolve_user(UserSpec.parse(str(uid)), image.read_file)
            if primary.gid_from_passwd and primary.gid not in (None, 0):
                return {"runAsGroup": primary.gid}, WHY_GROUP
        return {}, ""
    named = spec.kind in (UserKind.NAMED, UserKind.INVALID)
    if not (named or gid is not None or spec.kind is UserKind.NUMERIC_NO_GROUP):
        return {}, ""
    resolution = resolve_user(spec, image.read_file)
    if not resolution.ok:
        return {}, ""
    if gid is not None:
        return {"runAsUser": resolution.uid}, WHY_USER if named else WHY_LONE_GROUP
    if not named and (not resolution.gid_from_passwd or resolution.gid == 0):
        return {}, ""  # a uid alone whose group is 0 anyway: nothing differs under guest pull
    return {"runAsUser": resolution.uid, "runAsGroup": resolution.gid}, WHY_USER if named else WHY_GROUP


def ensure_values(editor: DocumentEditor, parent: Any, path: list[str], values: dict[str, Any],
                  comments: dict[str, str], *, before: str | None = None, what: str = "") -> None:
    """Set `values` in the mapping at `path` under `parent`, creating what is missing; existing
    scalars that differ are replaced on their line."""
    node = parent
    for depth, key in enumerate(path):
        editor.editable(node, what or key)
        editor.own(node, key, what or key)
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
            raise ImagefixError(f"{editor.where(node.lc.key(key)[0])}: {key} is not a mapping")
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


__all__ = ["FixedManifest", "Migration", "fix_manifest", "user_values"]
