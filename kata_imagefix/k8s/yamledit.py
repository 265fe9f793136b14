"""Edits of a YAML or JSON document's text: only what is inserted or changed differs, every other byte stays.

The loaded document says where each key sits (line, column: yamlpos.py on
libyaml's nodes, in ruamel.yaml's `lc` terms); the edits are then made on the
text itself, so indentation, quoting, comments, key
order and CRLF line ends of everything not edited are kept exactly. A
round-trip *dump* would re-indent the whole document.

Block mappings get new lines at their end (nested values as nested blocks);
flow mappings (`{a: 1}`) and JSON get the new keys inside their braces, after
their last value, in their own style: JSON as JSON on lines of its own with
the document's indentation when the mapping spans lines, `, key: value` on the
line otherwise. A scalar is replaced where it stands. Refused, with the file
and line to look at: anchored or aliased nodes and keys that come from a merge
key `<<: *common` (editing them would change every mapping that shares them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from .yamlpos import PosMap

Scalar = int | str | list[int]


@dataclass
class Insert:
    """New keys for an existing mapping; nested dicts become nested block mappings."""

    values: dict[str, Any]
    comments: dict[str, str] = field(default_factory=dict)  # key -> end-of-line comment
    before: str | None = None  # insert at this existing key's line instead of at the end


def yaml_scalar(value: Scalar) -> str:
    if isinstance(value, list):  # a flow sequence of numbers (supplementalGroups)
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9._/-]*", value)
    if plain and value.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return value
    return json.dumps(value)


def own_keys(mapping: Any) -> list[Any]:
    """The keys written in this mapping's own text (not those a merge key `<<:` brings in)."""
    data = getattr(getattr(mapping, "lc", None), "data", None)
    return [key for key in mapping if key in data] if data is not None else list(mapping)


def is_json(text: str) -> bool:
    """Whether a document is written as JSON (its edits are then JSON too): its first character past
    the blank lines, comments, directives and `---` before it opens a flow mapping or sequence. A
    document after `---` in a stream is JSON as much as the first one is."""
    position = 0
    while position < len(text):  # line by line, never a copy of a big List's text
        end = text.find("\n", position)
        end = len(text) if end < 0 else end + 1
        stripped, position = text[position:end].strip(), end
        if not stripped or stripped.startswith(("#", "%")):
            continue
        if stripped.startswith("---") and (len(stripped) == 3 or stripped[3] in " \t#"):
            stripped = stripped[3:].strip()
            if not stripped or stripped.startswith("#"):
                continue
        return stripped.startswith(("{", "["))
    return False


class DocumentEditor:
    """Collects edits against one document's text and applies them from the end backwards."""

    def __init__(self, text: str, name: str, offset: int = 0) -> None:
        self.text = text
        self.name = name  # the file, for messages
        self.offset = offset  # lines before this document in the file
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.newline = "\r\n" if self.lines and self.lines[0].endswith("\r\n") else "\n"
        self.json = is_json(text)
        self._edits: list[tuple[int, int, int, str]] = []  # (start, end, order, new text)
        self.step = 2

    def where(self, line: int) -> str:
        """file:line of a 0-based line of this document."""
        return f"{self.name}:{self.offset + line + 1}"

    def mark(self) -> int:
        """How many edits so far: `rollback(mark)` drops what a refused workload had added."""
        return len(self._edits)

    def rollback(self, mark: int) -> None:
        del self._edits[mark:]

    # --- checks ---------------------------------------------------------------------------------

    def editable(self, node: Any, what: str) -> None:
        """Refuse nodes whose text is shared (anchors, aliases)."""
        anchor = getattr(getattr(node, "anchor", None), "value", None)
        if anchor:
            line = node.lc.line if hasattr(node, "lc") else 0
            raise ImagefixError(f"{self.where(line)}: {what} is the YAML anchor &{anchor}, shared through "
                                "its aliases: write it out for this container, then run again")

    def own(self, mapping: Any, key: str, what: str) -> None:
        """Refuse a key that a merge key brings in: its text is the shared anchor's."""
        if key in mapping and key not in own_keys(mapping):
            raise ImagefixError(f"{self.where(mapping.lc.line)}: {what}: {key} comes from a merge key (<<:), "
                                "shared with every mapping that merges it: write it out here, then run again")

    # --- edits ----------------------------------------------------------------------------------

    def set_scalar(self, mapping: Any, key: str, value: Scalar) -> None:
        """Replace an existing key's scalar value where it stands (comments after it stay)."""
        self.own(mapping, key, key)
        line, col = mapping.lc.value(key)
        start = self.starts[line] + col
        end = self._scalar_end(start, flow=self.json or _flow(mapping))
        self._edit(start, end, self._scalar(value))

    def insert(self, mapping: Any, insert: Insert) -> None:
        """New keys in an existing mapping: block, flow or JSON."""
        if _flow(mapping):
            self._insert_flow(mapping, insert.values)
            return
        keys = own_keys(mapping)
        if not keys and len(mapping):
            raise ImagefixError(f"{self.where(mapping.lc.line)}: a mapping made only of a merge key (<<:): "
                                "write its keys out, then run again")
        col = mapping.lc.key(keys[0])[1] if keys else mapping.lc.col
        if insert.before is not None and insert.before in keys:
            at = mapping.lc.key(insert.before)[0]
        else:
            at = self._end_of(mapping, keys, col) + 1
        self._edit_lines(at, 0, self._render(insert.values, insert.comments, col))

    def fill_empty(self, parent: Any, key: str, insert: Insert) -> None:
        """`key: {}` or `key:` (null): write the children there (below it, in block style)."""
        self.own(parent, key, key)
        if self.json or _flow(parent):
            child = parent[key]
            if isinstance(child, dict):
                self._insert_flow(child, insert.values)
                return
            line, col = parent.lc.value(key)
            start = self.starts[line] + col
            self._edit(start, self._scalar_end(start, flow=True), self._flow_value(insert.values))
            return
        line, _ = parent.lc.key(key)
        text = self.lines[line]
        body = text.rstrip("\r\n")
        match = re.match(r"^(\s*(?:-\s+)?[^:#]+:)\s*(?:\{\s*\}|null|~)?(\s*(?:#.*)?)$", body)
        if not match:
            raise ImagefixError(f"{self.where(line)}: cannot edit this line: {body.strip()}")
        col = parent.lc.key(key)[1] + self.step
        self._edit_lines(line, 1, [match.group(1) + match.group(2) + text[len(body):],
                                   *self._render(insert.values, insert.comments, col)])

    def apply(self) -> str:
        return joined(self.text, self.splices())

    def splices(self) -> list[tuple[int, int, str]]:
        """The edits as (start, end, new text) of `text`, in order and apart: `text` with each
        text[start:end] replaced by its new text is `apply()`. Kept this way, a big manifest's fixed
        text is made piece by piece as it is written, never held whole beside the original."""
        text = self.text
        # of two inserts at one place the shallower goes first, so that the deeper (a container's
        # securityContext ending where the pod's begins) stands above it; else in the order asked for
        ordered = [(start, end, new) for start, end, _, new in
                   sorted(self._edits, key=lambda e: (e[0], e[1], -_indent(e[3]), e[2]))]
        grows = bool(text) and not text.endswith(("\n", "\r")) and any(e[0] >= len(text) for e in ordered)
        if any(ordered[i][0] < ordered[i - 1][1] for i in range(1, len(ordered))):
            # spans that overlap: made from the end backwards, each on what the later ones left, and
            # (at the end of a text without a line end) before the line end added
            made = text + self.newline if grows else text
            for start, end, new in reversed(ordered):
                made = made[:start] + new + made[end:]
            return [(0, len(text), made)]
        if grows:
            ordered.append((len(text), len(text), self.newline))  # what is added at the end ends its line
        return ordered

    # --- helpers --------------------------------------------------------------------------------

    def _edit(self, start: int, end: int, new: str) -> None:
        self._edits.append((start, end, len(self._edits), new))

    def _edit_lines(self, line: int, count: int, new: list[str]) -> None:
        start = self.starts[min(line, len(self.lines))]
        self._edit(start, self.starts[min(line + count, len(self.lines))], "".join(new))

    def _scalar(self, value: Scalar) -> str:
        return json.dumps(value) if self.json else yaml_scalar(value)

    def _scalar_end(self, start: int, *, flow: bool) -> int:
        """Where the scalar starting at `start` ends: its closing quote, else the end of a plain scalar
        (the line's end or ` #`, and in flow context `,`, `]` or `}`), trailing blanks left out."""
        text, index = self.text, start
        if index < len(text) and text[index] in "\"'":
            quote = text[index]
            index += 1
            while index < len(text):
                if quote == '"' and text[index] == "\\":
                    index += 2
                    continue
                if text[index] == quote:
                    if quote == "'" and text[index + 1:index + 2] == "'":
                        index += 2
                        continue
                    return index + 1
                index += 1
            return index
        while index < len(text) and text[index] not in "\r\n":
            if flow and text[index] in ",]}":
                break
            if text[index] == "#" and index > start and text[index - 1] in " \t":
                break
            index += 1
        while index > start and text[index - 1] in " \t":
            index -= 1
        return index

    def _value_end(self, start: int) -> int:
        """The end of a flow value (a scalar, or a bracketed collection with what it nests)."""
        text = self.text
        if start >= len(text) or text[start] not in "[{":
            return self._scalar_end(start, flow=True)
        depth, index = 0, start
        while index < len(text):
            char = text[index]
            if char in "\"'":
                index = self._scalar_end(index, flow=True)
                continue
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return index

    def _insert_flow(self, mapping: Any, values: dict[str, Any]) -> None:
        keys = own_keys(mapping)
        if not keys and len(mapping):
            raise ImagefixError(f"{self.where(mapping.lc.line)}: a mapping made only of a merge key (<<:): "
                                "write its keys out, then run again")
        if not keys:  # `{}`: inside the braces
            start = self.starts[mapping.lc.line] + mapping.lc.col + 1
            self._edit(start, start, self._flow_items(values))
            return
        line, col = mapping.lc.value(keys[-1])
        end = self._value_end(self.starts[line] + col)
        key_line, key_col = mapping.lc.key(keys[-1])
        if self.json and key_line != mapping.lc.line:  # one key a line: so are the new ones
            self._edit(end, end, "," + self._json_lines(values, key_col))
        else:
            self._edit(end, end, ", " + self._flow_items(values))

    def _flow_items(self, values: dict[str, Any]) -> str:
        return ", ".join(f"{self._key(k)}: {self._flow_value(v) if isinstance(v, dict) else self._scalar(v)}"
                         for k, v in values.items())

    def _flow_value(self, values: dict[str, Any]) -> str:
        return "{" + self._flow_items(values) + "}"

    def _key(self, key: str) -> str:
        return json.dumps(key) if self.json else yaml_scalar(key)

    def _json_lines(self, values: dict[str, Any], col: int) -> str:
        items = []
        for key, value in values.items():
            if isinstance(value, dict):
                inner = self._json_lines(value, col + self.step)
                close = f"{self.newline}{' ' * col}}}"
                items.append(f"{self.newline}{' ' * col}{json.dumps(key)}: {{{inner}{close}")
            else:
                items.append(f"{self.newline}{' ' * col}{json.dumps(key)}: {json.dumps(value)}")
        return ",".join(items)

    def _end_of(self, mapping: Any, keys: list[Any], col: int) -> int:
        """The last line of a block mapping's text: its last key, and every line after it that is
        indented deeper (nested values, block scalars) or a sequence item at the key's column."""
        last = max(mapping.lc.key(k)[0] for k in keys)
        end = last
        index = last + 1
        while index < len(self.lines):
            raw = self.lines[index].rstrip("\r\n")
            stripped = raw.lstrip(" ")
            indent = len(raw) - len(stripped)
            if not stripped or stripped.startswith("#"):
                if stripped and indent <= col:
                    break
                index += 1
                continue
            if indent > col or (indent == col and stripped.startswith("- ") and
                                isinstance(mapping[keys[-1]], list)):
                end = index
                index += 1
                continue
            break
        return end

    def _render(self, values: dict[str, Any], comments: dict[str, str], col: int) -> list[str]:
        out = []
        for key, value in values.items():
            comment = f"  # {comments[key]}" if key in comments else ""
            if isinstance(value, dict):
                out.append(f"{' ' * col}{key}:{comment}{self.newline}")
                out += self._render(value, comments, col + self.step)
            else:
                out.append(f"{' ' * col}{key}: {yaml_scalar(value)}{comment}{self.newline}")
        return out


def joined(text: str, splices: list[tuple[int, int, str]]) -> str:
    """`text` with the splices (DocumentEditor.splices) made."""
    return "".join(spliced(text, splices))


def spliced(text: str, splices: Iterable[tuple[int, int, str]], begin: int = 0,
            end: int | None = None) -> Iterator[str]:
    """The pieces of text[begin:end] with the splices (in order, apart, inside it) made."""
    position = begin
    for start, stop, new in splices:
        yield text[position:start]
        yield new
        position = stop
    yield text[position:end]


def _indent(text: str) -> int:
    """The indentation of an edit's first line (block inserts; flow edits count as 0)."""
    return len(text) - len(text.lstrip(" ")) if "\n" in text else 0


def _flow(node: Any) -> bool:
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def indent_step(doc: Any) -> int:
    """The document's mapping indentation (2 or 4 ...): from its first nested block mapping, or in JSON
    from the first key written on a line of its own."""
    if not isinstance(doc, PosMap):  # the edited documents are yamlpos's, which know their positions
        return 2
    keys = own_keys(doc)
    if _flow(doc) and keys:  # JSON: the root's own keys are one step in from its brace
        line, col = doc.lc.key(keys[0])
        if line != doc.lc.line and col > doc.lc.col:
            return col - doc.lc.col
    for key in keys:
        value = doc[key]
        if isinstance(value, PosMap) and len(value):
            inner = own_keys(value)
            if not inner:
                continue
            line, col = value.lc.key(inner[0])
            if _flow(value):
                if line == value.lc.line:
                    continue
                step = col - doc.lc.key(key)[1]
            else:
                step = col - doc.lc.key(key)[1]
            if step > 0:
                return step
    return 2
