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
fsGroup). Documents out of scope, or that need nothing, are only read by
libyaml (~0.05 ms each) and stay byte for byte; yamlpos (libyaml's nodes with
their positions) reads those an edit is wanted in.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..diffing import spliced_diff
from ..errors import ImagefixError
from ..image.model import Image
from ..model.budget import BudgetModel
from .audit import AuditOptions, is_kata
from .fixplan import FixPlan, ImageFor, plan_users, plan_workload
from .manifests import Spans, Workload, item_spans, item_text, workload_of, yaml_error
from .pod import PodNeeds, annotation_reasons
from .walk import (
    manifest_loader,
    matching_containers,
    pod_annotations,
    pod_spec,
    pod_template,
    same_image,
    split_documents,
    workloads,
)
from .yamledit import DocumentEditor, Insert, indent_step, is_json, joined, spliced

# Why each value is written (the end-of-line comment): the identity the image means, made explicit.
WHY = {
    "runAsUser": "the image's uid, explicit: containerd cannot look names up and genpolicy refuses "
                 "implicit ids under guest pull (imagefix)",
    "runAsGroup": "the image's group: the kubelet drops it and under guest pull the process would run "
                  "with gid 0 (imagefix)",
    "supplementalGroups": "the image's /etc/group groups: lost under guest pull otherwise (imagefix)",
}


class FixedManifest:
    """A manifest and its edits: the original text, and in order what replaces which part of it. The
    fixed text is made piece by piece as it is written (`pieces`), and each changed document as it is
    audited again (`edited_documents`): a 100,000-item List is never held twice, and an insert every
    item shares (the same comment lines) is held once."""

    def __init__(self, name: str, original: str, fixes: list[WorkloadFix] | None = None) -> None:
        self.name = name
        self.fixes = fixes  # with `record`: each workload written, as values (--format json)
        self.original = original
        self.changes: list[str] = []
        self.refused: list[str] = []  # "file:line: why", one per workload left as it was
        self._starts, self._ends = array("q"), array("q")  # original[start:end] is replaced ...
        self._news: list[str] = []  # ... by this, in order, never overlapping
        self._shared: dict[str, str] = {}
        # per changed document: where its text begins and ends in `original`, its column (a List item's
        # text is padded to it), its first splice, its first and last original lines ([first, last))
        self._docs = array("q")

    @property
    def changed(self) -> bool:
        return bool(self._news)

    def __iter__(self) -> Iterator[str]:
        return self.pieces()

    def pieces(self) -> Iterator[str]:
        """The fixed manifest, piece by piece (joined, they are its text)."""
        return spliced(self.original, zip(self._starts, self._ends, self._news, strict=True))

    def edited_documents(self) -> Iterator[tuple[int, str]]:
        """(lines before it in the fixed manifest, text) of each changed document, a List item's text
        padded to its column (as `k8s check` reads it alone): what an audit of the changes reads."""
        starts, ends, news = self._starts, self._ends, self._news
        added = done = 0  # the lines the splices before the document added
        for begin, end, column, first, last, line in self._documents():
            for splice in range(done, first):
                added += news[splice].count("\n") - self.original.count("\n", starts[splice], ends[splice])
            done = first
            text = "".join(spliced(self.original, zip(starts[first:last], ends[first:last], news[first:last],
                                                      strict=True), begin, end))
            yield line - 1 + added, " " * column + text

    def diff(self, label: str) -> Iterator[str]:
        """The unified diff of the original to the fixed manifest (`a/label`, `b/label`), in pieces: made
        from the splices of each changed document (diffing.py), never from the two whole texts."""
        groups = ((begin, end, first, last) for begin, end, _, first, last, _ in self._documents())
        return spliced_diff(self.original, self._starts, self._ends, self._news, groups, f"a/{label}",
                            f"b/{label}")

    def _documents(self) -> Iterator[tuple[int, int, int, int, int, int]]:
        """(begin, end, column, first splice, the next document's first splice, first line) of each
        changed document."""
        docs, count = self._docs, len(self._docs)
        for index in range(0, count, 6):
            begin, end, column, first, line = docs[index:index + 5]
            yield begin, end, column, first, docs[index + 9] if index + 6 < count else len(self._news), line

    def was_edited(self, line: int | None) -> bool:
        """Whether the original line (a workload's) lies in a document that was changed."""
        if line is None:
            return True
        docs = self._docs
        low, high = 0, len(docs) // 6  # the last document that begins at or before the line
        while low < high:
            middle = (low + high) // 2
            if docs[middle * 6 + 4] <= line:
                low = middle + 1
            else:
                high = middle
        return low > 0 and line < docs[(low - 1) * 6 + 5]

    def add(self, begin: int, end: int, column: int, line: int, lines: int,
            splices: list[tuple[int, int, str]]) -> None:
        """A changed document: original[begin:end], at 1-based `line` and `lines` long, with the
        splices (indexes into `original`)."""
        self._docs.extend((begin, end, column, len(self._news), line, line + lines))
        for start, stop, new in splices:
            self._starts.append(start)
            self._ends.append(stop)
            self._news.append(self._shared.setdefault(new, new))


@dataclass(frozen=True)
class WorkloadFix:
    """One workload `k8s fix` wrote: its plan (the values), and each container's name and image."""

    title: str
    line: int | None
    containers: tuple[tuple[str, str], ...]  # (name, image) in Workload.containers order
    plan: FixPlan


@dataclass(frozen=True)
class Migration:
    """`k8s pod REF --patch`: the workloads running one image move to a Kata runtime class."""

    needs: PodNeeds
    image: Image


def fix_manifest(name: str, text: str, images: dict[str, tuple[Any, str | None]], options: AuditOptions,
                 model: BudgetModel, migration: Migration | None = None, *,
                 record: bool = False) -> FixedManifest:
    """The manifest with its Kata workloads fixed. A workload that cannot be edited (an anchor, a
    duplicate key) is left as it was and named in `refused`; a document that is not valid YAML is left
    as it is (the audit reports it). A migration (`--patch`) stops at the first of either instead.
    A List (as the audit reads it) is fixed item by item: never one node tree. With `record`,
    `fixes` keeps each workload written as values."""
    fixed = FixedManifest(name, text, fixes=[] if record else None)
    offset = position = 0
    for chunk in split_documents(text):
        spans = item_spans(chunk, manifest_loader())
        if spans is None:
            _add_document(fixed, chunk, position, offset, images, options, model, migration)
        else:
            _fix_list(fixed, chunk, spans, position, offset, images, options, model, migration)
        offset += chunk.count("\n")
        position += len(chunk)
    return fixed


def _add_document(fixed: FixedManifest, chunk: str, begin: int, offset: int, images: dict,
                  options: AuditOptions, model: BudgetModel, migration: Migration | None) -> None:
    """`chunk` fixed as one document: the text at `begin` of the manifest (at line `offset` + 1)."""
    edit = _document_edit(fixed, chunk, begin, offset, images, options, model, migration)
    if edit is not None:
        fixed.add(*edit)


Edit = tuple[int, int, int, int, int, list[tuple[int, int, str]]]  # FixedManifest.add's arguments


def _document_edit(fixed: FixedManifest, chunk: str, begin: int, offset: int, images: dict,
                   options: AuditOptions, model: BudgetModel, migration: Migration | None,
                   column: int = 0, json_style: bool | None = None) -> Edit | None:
    """The edit of `chunk` fixed as one document (None when nothing changes): the text at `begin` of
    the manifest (at line `offset` + 1), its first `column` characters padding (a List item's), not the
    manifest's."""
    splices = [(start, end, new) for start, end, new in
               _fix_document(chunk, fixed, offset, images, options, model, migration, json_style)
               if chunk[start:end] != new]
    if not splices or joined(chunk, splices) == chunk:
        return None
    if splices[0][0] < column:  # an edit in the padding
        piece = joined(chunk, splices)
        if piece[:column].strip():
            raise ImagefixError(f"{fixed.name}:{offset + 1}: an edit before the first key of a List item")
        splices = [(column, len(chunk), piece[column:])]
    shift = begin - column
    return (begin, begin + len(chunk) - column, column, offset + 1, _lines(chunk),
            [(start + shift, end + shift, new) for start, end, new in splices])


def _lines(text: str) -> int:
    """How many lines a document's text has content on: a List item's text ends where the next item
    begins (the indentation of its line), and that line is the next item's."""
    text = text.rstrip(" \t")
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _fix_list(fixed: FixedManifest, chunk: str, spans: Spans, position: int, offset: int, images: dict,
              options: AuditOptions, model: BudgetModel, migration: Migration | None) -> None:
    """Each item of a List (the document at `position` of the manifest) as a document of its own,
    its text padded to its column; the List's own text between them stays as it is. Items written on
    one line (`[{...}, {...}]`) are one group: where one of them changes, each of them is a changed
    document, audited again (FixedManifest.was_edited knows a workload by its line, as a List read
    whole is)."""
    json_style = is_json(chunk)  # a flow item of a YAML List stays YAML
    group: list[tuple[tuple[int, int, int, int], Edit | None]] = []
    last = -1  # the last line (0-based) of the group's items
    for span in spans:
        text = item_text(chunk, span)
        if span[2] > last:
            _add_group(fixed, chunk, group, position, offset)
            group = []
        group.append((span, _document_edit(fixed, text, position + span[0], offset + span[2], images, options,
                                           model, migration, span[3], json_style)))
        last = max(last, span[2] + _lines(text) - 1)
    _add_group(fixed, chunk, group, position, offset)


def _add_group(fixed: FixedManifest, chunk: str, group: list, position: int, offset: int) -> None:
    if not any(edit is not None for _, edit in group):
        return
    for span, edit in group:
        text = item_text(chunk, span)
        fixed.add(*edit if edit is not None else (position + span[0], position + span[1], span[3],
                                                  offset + span[2] + 1, _lines(text), []))


def _fix_document(chunk: str, fixed: FixedManifest, offset: int, images: dict, options: AuditOptions,
                  model: BudgetModel, migration: Migration | None,
                  json_style: bool | None = None) -> list[tuple[int, int, str]]:
    """The edits of one document's text (DocumentEditor.splices: none when nothing is to be written);
    its changes and refusals go into `fixed`."""
    name = fixed.name
    try:
        plans = _plans(_load(chunk, name, offset), name, options, migration, images, model)
    except ImagefixError:
        if migration is not None:
            raise
        plans = None
    if plans is None:
        return []
    doc = _load(chunk, name, offset, _round_trip())
    editor = DocumentEditor(chunk, name, offset)
    if json_style is not None:  # a List item: the List's style, not its own first character's
        editor.json = json_style
    duplicates = Duplicates(chunk, doc)
    for index, item in enumerate(workloads(doc)):
        mark = editor.mark()
        done: WorkloadFix | None = None
        # each workload's own: a List's item is fixed as it is when the List is read item by item
        editor.step = indent_step(item)
        duplicate = duplicates.of(item)
        try:
            workload = workload_of(item, name, offset)
            if migration is not None:
                if matching_containers(pod_spec(item), migration.needs.image_name):
                    changes_here = _migrate_workload(editor, item, workload, migration)
                else:
                    changes_here = []
            elif (plan := plans[index] if index < len(plans) else None) is not None:
                changes_here = _fix_workload(editor, item, plan)  # decided on libyaml's data
                done = WorkloadFix(workload.title, workload.line,
                                   tuple((c.name, c.image) for c in workload.containers), plan)
            else:
                changes_here = []
            if duplicate is not None and editor.mark() != mark:
                raise ImagefixError(f"{editor.where(duplicate[1])}: {duplicate[0]} is written twice "
                                    f"(also line {offset + duplicate[2] + 1}): YAML tools disagree on "
                                    "which one counts (k8s check reads the last); keep one, then run "
                                    "again")
            fixed.changes += changes_here
            if fixed.fixes is not None and done is not None and done.plan:
                fixed.fixes.append(done)
        except ImagefixError as exc:
            if migration is not None:
                raise
            editor.rollback(mark)
            fixed.refused.append(str(exc))
    return editor.splices()


def _round_trip() -> Any:
    """The loader of documents to edit: data that knows where each key is written (yamlpos, on libyaml).
    Duplicate keys are found (and refused) by `Duplicates` with their lines."""
    from . import yamlpos

    return yamlpos


def _load(chunk: str, name: str, offset: int, round_trip: Any = None) -> Any:
    """A document by libyaml (a check), or with its positions where it is edited; one error line."""
    import yaml
    from ruamel.yaml.error import YAMLError

    try:
        if round_trip is None:
            return yaml.load(chunk, Loader=manifest_loader())
        return round_trip.load(chunk)
    except (yaml.YAMLError, YAMLError) as exc:
        line, message = yaml_error(exc, offset)
        raise ImagefixError(f"{name}:{line}: not valid YAML: {message}" if line else
                            f"{name}: not valid YAML: {message}") from None


class Duplicates:
    """The first key written twice in one mapping of a workload, with both 0-based lines (libyaml's
    nodes), or None: in the workload's own tree, and for an item of a List also among the List's own
    keys - not in the List's other items or its metadata, so that a List read whole refuses what it
    refuses read item by item. Parsers disagree on which one wins (PyYAML the last, ruamel.yaml the
    first, strict ones refuse)."""

    def __init__(self, chunk: str, doc: Any) -> None:
        import yaml

        loader = manifest_loader()(chunk)
        try:
            self.root = loader.get_single_node()
        finally:
            loader.dispose()
        self.doc = doc
        self.items: list[Any] | None = None  # a List's: the nodes of its items, its own keys' duplicate
        self.own: tuple[str, int, int] | None = None
        self._index: dict[int, int] | None = None
        if isinstance(self.root, yaml.MappingNode) and doc is not None and any(
                item is not doc for item in workloads(doc)):
            self.own = _first_duplicate([self.root], deep=False)
            values = [value for key, value in self.root.value if isinstance(key, yaml.ScalarNode)
                      and key.value == "items" and isinstance(value, yaml.SequenceNode)]
            self.items = values[-1].value if values else []

    def of(self, item: Any) -> tuple[str, int, int] | None:
        if self.items is None:
            return _first_duplicate([self.root] if self.root is not None else [])
        if self.own is not None:
            return self.own
        if self._index is None:  # where each item is: found once, not once a workload
            self._index = {id(listed): index for index, listed in enumerate(self.doc["items"])}
        index = self._index[id(item)]
        return _first_duplicate(self.items[index:index + 1])


def _first_duplicate(nodes: list[Any], deep: bool = True) -> tuple[str, int, int] | None:
    import yaml

    stack = list(reversed(nodes))
    visited: set[int] = set()  # an alias is the node it names: each walked once (alias bombs)
    while stack:
        current = stack.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in seen:
                        return key.value, seen[key.value], key.start_mark.line
                    seen[key.value] = key.start_mark.line
                if deep:
                    stack.append(value)
        elif isinstance(current, yaml.SequenceNode) and deep:
            stack.extend(current.value)
    return None


def _plans(doc: Any, name: str, options: AuditOptions, migration: Migration | None, images: dict,
           model: BudgetModel) -> list[FixPlan | None] | None:
    """What `k8s fix` would write into each workload of the document, decided on libyaml's data (None
    for a workload out of scope); None when the document needs no edit at all, so it is kept as it is
    without building its positions. A migration edits every document that runs its image."""
    if migration is not None:
        image_name = migration.needs.image_name
        wanted = any(matching_containers(pod_spec(item), image_name) for item in workloads(doc))
        return [] if wanted else None
    plans: list[FixPlan | None] = []
    for item in workloads(doc):
        try:
            workload = workload_of(item, name, 0)
        except ImagefixError:  # a patch fragment: not a pod, left as it is
            plans.append(None)
            continue
        plans.append(plan_workload(workload, _image_for(images), options, model)
                     if is_kata(workload, options) else None)
    return plans if any(plans) else None


def _image_for(images: dict) -> ImageFor:
    return lambda ref: images.get(ref, (None, None))[0]


def _fix_workload(editor: DocumentEditor, item: Any, plan: FixPlan) -> list[str]:
    apply_plan(editor, item, plan)
    return plan.changes


def _migrate_workload(editor: DocumentEditor, item: Any, workload: Workload,
                      migration: Migration) -> list[str]:
    """The runtime class, the annotations that raise what is in force, fsGroup; then the users of the
    containers that run the image, as `k8s fix` writes them."""
    needs = migration.needs
    spec = pod_spec(item)
    editor.editable(spec, "the pod spec")
    editor.own(spec, "runtimeClassName", "the pod spec")
    if "runtimeClassName" not in spec:
        editor.insert(spec, Insert({"runtimeClassName": needs.runtime_class}, before=next(iter(spec), None)))
    elif spec["runtimeClassName"] != needs.runtime_class:
        editor.set_scalar(spec, "runtimeClassName", needs.runtime_class)
    wanted = needs.annotations(pod_annotations(item, editor.where(pod_template(item).lc.line)))
    if wanted:
        why = annotation_reasons(needs)
        ensure_values(editor, pod_template(item), ["metadata", "annotations"], wanted,
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
    spec = pod_spec(item)
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
        ensure_values(editor, pod_template(item), ["metadata", "annotations"], plan.annotations,
                      plan.annotation_why, before="spec")


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


__all__ = ["WHY", "FixedManifest", "Migration", "WorkloadFix", "fix_manifest"]
