"""Kubernetes manifests in (files, folders, stdin; YAML or JSON; Lists), workloads and containers out.

Each container carries the file and 1-based line of its `image:` so findings
(and SARIF) point into the manifest.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImagefixError
from ..model.workload import Container, Workload
from .walk import WORKLOAD_PATHS, manifest_loader, pod_spec, pod_template, split_documents, workloads

SUFFIXES = (".yaml", ".yml", ".json")
MAX_MANIFESTS = 128 * 2**20  # one manifest file or stdin


@dataclass(frozen=True)
class Problem:
    """A document or workload left out: an error (not valid YAML) or a skip with its reason (a patch
    fragment). One never stops the run: the report lists it beside the workloads audited."""

    file: str
    line: int | None
    message: str
    reason: str = ""  # empty for an error; else why it was skipped (a short, countable phrase)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class PatchFragment(ImagefixError):
    """A workload whose container names no image: a kustomize/strategic-merge patch, not a pod."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


FRAGMENT = "patch fragment (a container without image:)"


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


def workloads_in(name: str, text: str, problems: list[Problem] | None = None) -> list[Workload]:
    """The workloads; without `problems` to collect them into, the first problem stops with its line."""
    found = list(iter_workloads(name, text, problems if problems is not None else _Strict()))
    return found


class _Strict(list):
    def append(self, problem: Problem) -> None:
        raise ImagefixError(f"{problem.where}: {problem.message}")


def iter_workloads(name: str, text: str, problems: list[Problem] | None = None) -> Iterator[Workload]:
    """Document by document, so that a caller can start on the first while the rest are read.
    libyaml (C) reads each document; the `image:` lines come from its nodes' marks. The round-trip
    parser is ~40x slower and only needed where a document is edited (`k8s fix`).

    A document that is not valid YAML, and a workload that is a patch fragment, go to `problems` (with
    their line) and the next document is read: one file never stops a repository-wide run."""
    problems = problems if problems is not None else _Strict()
    loader_class = manifest_loader()
    offset = 0
    for chunk in split_documents(text):
        items = _list_items(chunk, loader_class)
        if items is None:
            yield from _document_workloads(chunk, name, offset, loader_class, problems)
        else:  # a List (`kubectl get -o yaml`): one item at a time
            for line, item_text in items:
                yield from _document_workloads(item_text, name, offset + line, loader_class, problems)
        offset += chunk.count("\n")


def document_workloads(name: str, text: str, offset: int, problems: list[Problem]) -> Iterator[Workload]:
    """The workloads of one document (or List item) alone, its first line being line `offset` + 1 of
    the file: what `k8s fix` audits again of each document it changed."""
    return _document_workloads(text, name, offset, manifest_loader(), problems)


def _document_workloads(text: str, name: str, offset: int, loader_class: Any,
                        problems: list[Problem]) -> Iterator[Workload]:
    """The workloads of one document's text (its first line is `offset` + 1 of the file)."""
    import yaml

    loader = loader_class(text)
    node = doc = None
    try:
        node = loader.get_single_node()
        doc = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        line, message = yaml_error(exc, offset)
        problems.append(Problem(name, line, f"not valid YAML or JSON: {message}"))
        node = doc = None
    finally:
        loader.dispose()
    lines: dict[int, int] = {}
    if node is not None:
        _node_lines(node, doc, lines, offset)
    for item in workloads(doc):
        try:
            yield workload_of(item, name, offset, lines)
        except PatchFragment as fragment:
            problems.append(Problem(name, fragment.line, str(fragment), FRAGMENT))


# A List longer than this is read item by item: every List. Read whole, a 10,000-item List (2.5 MB)
# peaked at 274 MB in `k8s fix` (18 s), item by item at 41 MB (7.7 s); at 250 items (62 KB) 38 MB
# and 0.44 s whole, 31 MB and 0.37 s item by item. The tests set it past a List to read it whole.
LIST_BY_ITEM = 0


def item_spans(chunk: str, loader_class: Any) -> Spans | None:
    """The item spans (list_spans) of a document to read item by item, or None to read it whole: what
    `k8s check` and `k8s fix` both split."""
    return list_spans(chunk, loader_class) if len(chunk) > LIST_BY_ITEM else None


def _list_items(chunk: str, loader_class: Any) -> Iterator[tuple[int, str]] | None:
    """(first line, text) of each item of a `kind: *List` document (see list_spans), made as it
    is read, or None."""
    spans = item_spans(chunk, loader_class)
    return None if spans is None else ((span[2], item_text(chunk, span)) for span in spans)


class Spans:
    """(start index, end index, 0-based line, column) of each item of a List, its four numbers in
    one array (as tuples in a list, a 100,000-item List's spans took 18 MB)."""

    def __init__(self) -> None:
        self._values = array("q")

    def append(self, span: tuple[int, int, int, int]) -> None:
        self._values.extend(span)

    def __len__(self) -> int:
        return len(self._values) // 4

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        values = self._values
        return ((values[i], values[i + 1], values[i + 2], values[i + 3]) for i in range(0, len(values), 4))


def item_text(chunk: str, span: tuple[int, int, int, int]) -> str:
    """A List item's text as a document of its own: its first line padded to its column, so that every
    line keeps its column and its lines count from the span's line."""
    begin, end, _line, column = span
    return " " * column + chunk[begin:end]


def list_spans(chunk: str, loader_class: Any) -> Spans | None:
    """(start index, end index, 0-based line, column) of each item of a `kind: *List` document, found
    from the parser's events alone: libyaml's node tree of a 100,000-item List took gigabytes, one
    item's takes kB. None (read it whole) for anything else - a document whose `kind` is not a List
    is given up at that key - and for whatever an item's text alone would not read as it reads inside
    the List: an alias of an anchor outside its own item (the item's text would not stand alone; an
    anchor and its aliases in one item read alone as they read in the List), an anchor named twice, an
    explicit tag, a merge key or a complex key (an error for the whole List, not for one item), an item
    that is a List itself (the whole List's items are its own, not theirs), a one-pair mapping of a
    flow sequence (`[kind: Pod]`: its text alone is a block mapping), a second document, a key of the
    List written twice."""
    import yaml

    if "List" not in chunk:
        return None  # not a List (or one spelled with escapes, that the whole-document path reads)
    loader = loader_class(TextStream(chunk))
    spans = Spans()
    kind = key = item_key = None
    # per open collection: a mapping that expects a key (True) or a value (False); a sequence (None)
    stack: list[bool | None] = []
    in_items, start, documents = False, None, 0
    local: set[str] = set()  # the anchors of the item being read
    anchors: set[str] = set()  # all of them: libyaml refuses a List that names one twice
    keys: set[str] = set()
    try:
        while not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                if start is None or event.anchor not in local or (stack and stack[-1] is True):
                    return None  # an alias outside an item, of another item's anchor, as a key
                if stack[-1] is False:
                    stack[-1] = True
                continue
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                if anchor in anchors:
                    return None
                anchors.add(anchor)
                if start is not None:
                    local.add(anchor)
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    return None  # not one document: the whole-document path says so
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                if len(stack) == 2 and in_items and start is not None and event.end_mark is not None:
                    spans.append((start.index, event.end_mark.index, start.line, start.column))
                    start = None
                elif len(stack) == 1:
                    in_items = False
                continue
            if not isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                continue
            if event.tag is not None:
                return None
            depth = len(stack)  # of the collection this node is in
            if depth and stack[-1] is True:  # a key
                if not isinstance(event, yaml.ScalarEvent) or event.value == "<<":
                    return None
                stack[-1] = False
                if depth == 1:
                    if event.value in keys:
                        return None  # a key written twice: the whole-document path says so
                    key = event.value
                    keys.add(key)
                elif depth == 3 and in_items:
                    item_key = event.value
                continue
            if depth and stack[-1] is False:
                stack[-1] = True
            if isinstance(event, yaml.ScalarEvent):
                if depth == 1 and key == "kind":
                    kind = event.value
                    if not kind.endswith("List"):
                        return None
                elif depth == 0 or (in_items and depth == 2):
                    return None  # a scalar document; a scalar item: not a List of objects
                elif in_items and depth == 3 and item_key == "kind" and event.value.endswith("List"):
                    return None  # an item that is a List
                continue
            mapping = isinstance(event, yaml.MappingStartEvent)
            if depth == 0 and not mapping:
                return None
            if depth == 1:
                in_items = key == "items" and not mapping
            elif depth == 2 and in_items:
                mark = event.start_mark
                if mark is None or (mapping and event.flow_style and not chunk.startswith("{", mark.index)):
                    return None
                start, item_key = event.start_mark, None
                local = {anchor} if anchor is not None else set()
            stack.append(True if mapping else None)
    except yaml.YAMLError:
        return None  # the whole-document path names the error
    finally:
        loader.dispose()
    if not (isinstance(kind, str) and kind.endswith("List")) or not spans:
        return None
    return spans


class TextStream:
    """A text as a stream libyaml reads block by block: given the str itself, it first makes a UTF-8
    copy of it whole (63 MB more for a 63 MB List). The marks are the same."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def read(self, size: int = -1) -> str:
        end = len(self.text) if size < 0 else self.at + size
        piece = self.text[self.at:end]
        self.at += len(piece)
        return piece


def yaml_error(exc: Exception, offset: int) -> tuple[int | None, str]:
    """(1-based line, one-line message) of a PyYAML or ruamel parse error: the problem, and where the
    construct it breaks began ("while parsing a flow sequence (line 4): expected ',' or ']' ...")."""
    mark = getattr(exc, "problem_mark", None)
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    context_mark = getattr(exc, "context_mark", None)
    if problem:
        message = problem
        if context:
            began = f" (line {offset + context_mark.line + 1})" if context_mark is not None else ""
            message = f"{context}{began}: {problem}"
    else:
        message = str(exc).strip().splitlines()[0]
    return (offset + mark.line + 1 if mark is not None else None), message


def _node_lines(node: Any, data: Any, out: dict[int, int], offset: int) -> None:
    """id(mapping) -> 1-based line where it starts, and id(container mapping) negated -> the line of its
    `image:` value, walking nodes beside the data. An alias is the node it names: each node is walked
    once (nine aliases of nine aliases of ... made a walk of 9**9 steps)."""
    import yaml

    seen: set[int] = set()
    stack = [(node, data)]
    while stack:
        node, data = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode) and isinstance(data, dict):
            out[id(data)] = offset + node.start_mark.line + 1
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                if key.value == "image":
                    out[-id(data)] = offset + value.start_mark.line + 1
                if key.value in data and isinstance(value, (yaml.MappingNode, yaml.SequenceNode)):
                    stack.append((value, data[key.value]))
        elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
            stack.extend((item_node, item) for item_node, item in zip(node.value, data, strict=False)
                         if isinstance(item_node, (yaml.MappingNode, yaml.SequenceNode)))


def workload_of(item: Any, file: str, offset: int, lines: dict[int, int] | None = None) -> Workload:
    metadata: dict[Any, Any] = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    template = pod_template(item)
    pod_meta: dict[Any, Any] = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    given = pod_meta.get("annotations")
    annotations: dict[Any, Any] = given if isinstance(given, dict) else {}
    spec = pod_spec(item)
    security = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    runtime_class = spec.get("runtimeClassName")
    generate_name = metadata.get("generateName")
    workload = Workload(file, str(item.get("kind")), str(metadata.get("namespace") or "default"),
                        str(metadata.get("name") or "?"),
                        runtime_class if isinstance(runtime_class, str) else None,
                        {str(k): str(v) for k, v in annotations.items()}, dict(security),
                        generate_name=generate_name if isinstance(generate_name, str) else None,
                        line=_line_of(item, offset, lines, None))
    workload.raw_annotations = {str(k): v for k, v in annotations.items()}
    for key, init in (("initContainers", True), ("containers", False)):
        listed = spec.get(key)
        for container in listed if isinstance(listed, list) else []:
            if not isinstance(container, dict):
                continue
            image = container.get("image")
            if not isinstance(image, str) or not image:
                raise PatchFragment(f"{workload.title} container {container.get('name', '?')!r} has no image "
                                    "(a kustomize patch?): skipped", _line_of(container, offset, lines, None))
            line = _line_of(container, offset, lines, "image")
            context = container.get("securityContext")
            workload.containers.append(Container(
                str(container.get("name") or "?"), image, line, init,
                dict(context) if isinstance(context, dict) else {}, _memory_limit(container)))
    return workload


def _line_of(mapping: Any, offset: int, lines: dict[int, int] | None, key: str | None) -> int | None:
    """1-based line of a mapping (key None) or of its `key:` value: from the `lc` positions of a document
    being edited (yamlpos; a merge key `<<:` followed into what it merges), else from the libyaml walk."""
    lc = getattr(mapping, "lc", None)
    if lc is None:
        return (lines or {}).get(id(mapping) if key is None else -id(mapping))
    if key is None:
        return offset + lc.line + 1
    if key in lc.data:
        return offset + lc.value(key)[0] + 1
    for merged in getattr(mapping, "merge", None) or []:
        line = _line_of(merged[1] if isinstance(merged, tuple) else merged, offset, None, key)
        if line is not None:
            return line
    return None


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


__all__ = ["WORKLOAD_PATHS", "Container", "Problem", "Workload", "load_workloads", "manifest_paths"]
