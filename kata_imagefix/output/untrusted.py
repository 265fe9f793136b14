"""Text that comes from an image, a manifest, a registry or a file, made safe where it is shown.

A terminal: control characters (C0, DEL, C1: an ESC restyles the screen or opens an OSC 8 link, a
CR rewrites the line), the bidirectional overrides (which reorder what is read) and bytes that were
not UTF-8 are shown escaped (`\\x1b`), never sent. Markdown (a pull request comment): the same, and
nothing renders as HTML, markup, a link or a new line.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                                "\ud800-\udfff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")  # what can open emphasis, code, a link or a cell; with [ and ]
# escaped, "(" cannot make a link
_HTML = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object, *, lines: bool = False) -> str:
    """The text with every control character escaped; with `lines`, line breaks stay."""
    value = str(text)
    pattern = _UNSAFE_KEEP_LINES if lines else _UNSAFE
    return pattern.sub(_escaped, value) if pattern.search(value) else value


def for_markdown(text: object) -> str:
    """One line of inert markdown (also inside a table cell): markup, HTML and links escaped."""
    return _MARKDOWN.sub(r"\\\1", for_terminal(text).translate(_HTML))


def for_markdown_code(text: object) -> str:
    """Inside a `code span` nothing renders, but a backtick would close it and a | split a table."""
    return for_terminal(text).replace("`", "'").replace("|", "\\|")
