"""Line-level edits of a YAML document: only inserted or changed lines differ, every other byte stays.

ruamel.yaml's round-trip loader says where each key sits (line, column); the
edits are then made on the text itself, so indentation, quoting, comments, key
order and CRLF line ends of everything not edited are kept exactly. A
round-trip *dump* would re-indent the whole document.

Nodes that cannot be edited this way are refused with the line to look at:
flow-style mappings with content (`{a: 1}`), and anchored or aliased nodes
(editing `&sc` would change every `*sc` too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError

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


class DocumentEditor:
    """Collects edits against one document's text and applies them bottom-up."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where  # e.g. "deploy.yaml document 2", for messages
        self.lines = text.splitlines(keepends=True)
        self.newline = "\r\n" if self.lines and self.lines[0].endswith("\r\n") else "\n"
        self._edits: list[tuple[int, int, list[str]]] = []  # (line, lines replaced, new lines)
        self.step = 2

    # --- checks ---------------------------------------------------------------------------------

    def editable(self, node: Any, what: str) -> None:
        """Refuse nodes whose text is shared or not in block style."""
        anchor = getattr(getattr(node, "anchor", None), "value", None)
        line = node.lc.line + 1 if hasattr(node, "lc") else "?"
        if anchor:
            raise ImagefixError(f"{self.where}: {what} at line {line} is the YAML anchor &{anchor}, shared "
                                "through its aliases: write it out for this container, then run again")
        if _flow(node) and len(node):
            raise ImagefixError(f"{self.where}: {what} at line {line} is written in flow style {{...}}: "
                                "write it as a block mapping, then run again")

    # --- edits ----------------------------------------------------------------------------------

    def set_scalar(self, mapping: Any, key: str, value: Scalar) -> None:
        """Replace an existing key's scalar value on its line (comments after it stay)."""
        line, col = mapping.lc.value(key)
        text = self.lines[line]
        body = text.rstrip("\r\n")
        rest = body[col:]
        match = re.match(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^#]*?)(\s*(?:#.*)?)$", rest)
        tail = match.group(2) if match else ""
        self._edits.append((line, 1, [body[:col] + yaml_scalar(value) + tail + text[len(body):]]))

    def insert(self, mapping: Any, insert: Insert) -> None:
        """New keys in an existing block mapping (or an empty `{}` / null value's parent)."""
        col = self._key_column(mapping)
        if insert.before is not None and insert.before in mapping:
            at = mapping.lc.key(insert.before)[0]
        else:
            at = self._end_of(mapping, col) + 1
        self._edits.append((at, 0, self._render(insert.values, insert.comments, col)))

    def fill_empty(self, parent: Any, key: str, insert: Insert) -> None:
        """`key: {}` or `key:` (null): write the children below it, in block style."""
        line, _ = parent.lc.key(key)
        text = self.lines[line]
        body = text.rstrip("\r\n")
        match = re.match(r"^(\s*(?:-\s+)?[^:#]+:)\s*(?:\{\s*\}|null|~)?(\s*(?:#.*)?)$", body)
        if not match:
            raise ImagefixError(f"{self.where}: cannot edit line {line + 1}: {body.strip()}")
        col = parent.lc.key(key)[1] + self.step
        self._edits.append((line, 1, [match.group(1) + match.group(2) + text[len(body):],
                                      *self._render(insert.values, insert.comments, col)]))

    def apply(self) -> str:
        lines = list(self.lines)
        if lines and not lines[-1].endswith(("\n", "\r")) and any(e[0] >= len(lines) for e in self._edits):
            lines[-1] += self.newline
        # bottom-up; of two inserts at one line the shallower goes first, so that the deeper (a container's
        # securityContext ending where the pod's begins) stands above it
        for line, count, new in sorted(self._edits, key=lambda e: (e[0], e[1], -_indent(e[2])), reverse=True):
            lines[line:line + count] = new
        return "".join(lines)

    # --- helpers --------------------------------------------------------------------------------

    def _key_column(self, mapping: Any) -> int:
        if len(mapping):
            return mapping.lc.key(next(iter(mapping)))[1]
        return mapping.lc.col

    def _end_of(self, mapping: Any, col: int) -> int:
        """The last line of a block mapping's text: its last key, and every line after it that is
        indented deeper (nested values, block scalars) or a sequence item at the key's column."""
        last = max(mapping.lc.key(k)[0] for k in mapping)
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
            if indent > col or (indent == col and stripped.startswith("- ") and _seq_value(mapping)):
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


def _indent(lines: list[str]) -> int:
    return len(lines[0]) - len(lines[0].lstrip(" ")) if lines else 0


def _flow(node: Any) -> bool:
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def _seq_value(mapping: Any) -> bool:
    """Whether the mapping's last value is a sequence (its `- ` items may sit at the key's column)."""
    last = list(mapping)[-1]
    return isinstance(mapping[last], list)


def indent_step(doc: Any) -> int:
    """The document's mapping indentation (2 or 4 ...), from its first nested block mapping."""
    if not isinstance(doc, dict):
        return 2
    for key in doc:
        value = doc[key]
        if isinstance(value, dict) and len(value) and not _flow(value):
            step = value.lc.key(next(iter(value)))[1] - doc.lc.key(key)[1]
            if step > 0:
                return step
    return 2
