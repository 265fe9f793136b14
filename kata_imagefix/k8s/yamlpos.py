"""A YAML document as data that knows where each key and value is written, from libyaml's nodes.

What the editor (yamledit.py) asks of a mapping, in ruamel.yaml's terms so
both can serve it: `lc.line`/`lc.col` (where it starts: its first key, or its
`{`), `lc.key(k)`/`lc.value(k)` (0-based line and column), `lc.data` (its own
keys, not those a merge key brings in), `fa.flow_style()`, `anchor.value` (set
when the node is anchored and used more than once), `merge` (the mappings a
`<<:` merges). libyaml (C) composes the nodes ~40x faster than ruamel's
round-trip parser, which is what makes `k8s fix` cost about its audit.
"""

from __future__ import annotations

import re
from typing import Any

from .walk import manifest_loader

_PROPERTY = re.compile(r"(?:[&!][^\s,\[\]{}]*\s+)*")
_ANCHOR = re.compile(r"&([^\s,\[\]{}]+)")
MERGE_TAG = "tag:yaml.org,2002:merge"


class LineCol:
    def __init__(self, line: int, col: int) -> None:
        self.line, self.col = line, col
        self.data: dict[Any, list[int]] = {}

    def key(self, key: Any) -> tuple[int, int]:
        entry = self.data[key]
        return entry[0], entry[1]

    def value(self, key: Any) -> tuple[int, int]:
        entry = self.data[key]
        return entry[2], entry[3]


class _Flow:
    def __init__(self, flow: bool) -> None:
        self.flow = flow

    def flow_style(self) -> bool:
        return self.flow


class _Anchor:
    def __init__(self, value: str | None) -> None:
        self.value = value


class PosMap(dict):
    """A mapping with the positions of its keys and values."""

    lc: LineCol
    fa: _Flow
    anchor: _Anchor
    merge: list[PosMap]


class PosSeq(list):
    lc: LineCol
    fa: _Flow
    anchor: _Anchor


def load(text: str) -> Any:
    """The document's data (PosMap/PosSeq/scalars), or None for an empty document; a YAMLError as
    libyaml raises it for text that is not valid YAML."""
    loader = manifest_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        uses: dict[int, int] = {}
        _count(node, uses)
        return _Builder(text, loader, uses).build(node)
    finally:
        loader.dispose()


def _count(node: Any, uses: dict[int, int]) -> None:
    """How often each collection node is reached (an alias reaches its anchor's node again)."""
    import yaml

    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, yaml.CollectionNode):
            continue
        uses[id(current)] = uses.get(id(current), 0) + 1
        if uses[id(current)] > 1:
            continue
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += [key, value]
        else:
            stack += current.value


class _Builder:
    def __init__(self, text: str, loader: Any, uses: dict[int, int]) -> None:
        self.text, self.loader, self.uses = text, loader, uses
        self.done: dict[int, Any] = {}

    def build(self, node: Any) -> Any:
        import yaml

        if id(node) in self.done:
            return self.done[id(node)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            seq = PosSeq()
            self.done[id(node)] = seq
            self._decorate(seq, node, *self._start(node))
            seq.extend(self.build(item) for item in node.value)
            return seq
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: Any) -> PosMap:
        mapping = PosMap()
        self.done[id(node)] = mapping
        mapping.merge = []
        own = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
        self._decorate(mapping, node, *self._start(node))  # its `{`, or its first key (a `<<` too)
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                continue
            sources = value_node.value if value_node.id == "sequence" else [value_node]
            for source in sources:
                built = self.build(source)
                if isinstance(built, PosMap):  # a mapping node builds a PosMap, nothing else a dict
                    mapping.merge.append(built)
                    for key, value in built.items():
                        merged.setdefault(key, value)
        mapping.update(merged)
        for key_node, value_node in own:
            key = self.build(key_node)
            value_line, value_col = self._start(value_node)
            mapping.pop(key, None)  # an own key wins over a merged one, and keeps its written order
            mapping[key] = self.build(value_node)
            key_mark = key_node.start_mark
            mapping.lc.data[key] = [key_mark.line, key_mark.column, value_line, value_col]
        return mapping

    def _decorate(self, obj: Any, node: Any, line: int, col: int) -> None:
        obj.lc = LineCol(line, col)
        obj.fa = _Flow(bool(node.flow_style))
        anchor = None
        if self.uses.get(id(node), 0) > 1:
            match = _ANCHOR.match(self.text, node.start_mark.index)
            anchor = match.group(1) if match else "(anchor)"
        obj.anchor = _Anchor(anchor)

    def _start(self, node: Any) -> tuple[int, int]:
        """0-based line and column where the node's own text starts, after its anchor (`&a`) and tag
        (`!!str`); counted from its mark, so a large document costs no rescans."""
        mark = node.start_mark
        match = _PROPERTY.match(self.text, mark.index)
        assert match is not None  # the pattern matches the empty string too
        end = match.end()
        newlines = self.text.count("\n", mark.index, end)
        if not newlines:
            return mark.line, mark.column + end - mark.index
        return mark.line + newlines, end - (self.text.rfind("\n", mark.index, end) + 1)
