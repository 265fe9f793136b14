"""The part of BuildKit's shell lexer a Dockerfile's values go through: ARG/ENV expansion
(${VAR}, ${VAR:-word}, nested), quote removal as FROM and USER see it, and ARG/ENV words."""

from __future__ import annotations

import re

from ..errors import ImagefixError
from .shell import unquote

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_EXPANDED = 4 * 2**20  # a value past this is made by a file that doubles it, not by a real build


def expand(text: str, variables: dict[str, str | None], escape: str = "\\", *,
           quotes: bool = False) -> tuple[str, list[str]]:
    """Docker's ${VAR}, $VAR, ${VAR:-word}, ${VAR:+word} (and - / + forms, nested); returns missing names.

    With `quotes`, quotes are removed the way BuildKit's word lexer does for
    FROM and USER ('...' literal, "..." expanded); without, they stay (RUN).
    """
    out, missing, _ = expand_tracked(text, variables, escape, quotes=quotes)
    return out, missing


def _verbatim(text: str, escape: str, quotes: bool) -> bool:
    """Nothing to expand: without `$` (and, when quotes are removed, without quotes or the escape
    character) the lexer gives the text back unchanged."""
    return "$" not in text and (not quotes or not any(c in text for c in ("'", '"', escape)))


def expand_tracked(text: str, variables: dict[str, str | None], escape: str = "\\", *,
                   quotes: bool = False) -> tuple[str, list[str], list[str]]:
    """`expand`, also returning every variable name whose value was used."""
    if _verbatim(text, escape, quotes):
        return text, [], []
    lexer = _Lexer(text, variables, escape, quotes)
    try:
        out, _, missing = lexer.word(0, "")
    except RecursionError:
        raise ImagefixError(f"variable references nested too deep to expand ({text[:40]}...)") from None
    if len(out) > MAX_EXPANDED and len(out) > 2 * len(text):
        raise ImagefixError(f"a value expands to more than {MAX_EXPANDED // 2**20} MiB ({text[:40]}...): "
                            "ARG or ENV values doubling themselves")
    return out, missing, lexer.used


class _Lexer:
    """A small part of BuildKit's shell lexer: variable expansion with nesting, optional quote removal."""

    def __init__(self, text: str, variables: dict[str, str | None], escape: str, quotes: bool) -> None:
        self.text, self.variables, self.escape, self.quotes = text, variables, escape, quotes
        self.used: list[str] = []

    def word(self, pos: int, stop: str, in_double: bool = False) -> tuple[str, int, list[str]]:
        """Expand from `pos` until an unquoted `stop` character (or the end)."""
        text = self.text
        out: list[str] = []
        missing: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if stop and ch == stop and not in_double:
                break
            if ch == self.escape and pos + 1 < len(text):
                following = text[pos + 1]
                if following == "$" or (self.quotes and (not in_double or following in f'"{self.escape}')):
                    out.append(following)
                else:
                    out.append(ch + following)
                pos += 2
                continue
            if self.quotes and ch == "'" and not in_double:
                close = text.find("'", pos + 1)
                close = len(text) if close < 0 else close
                out.append(text[pos + 1:close])
                pos = close + 1
                continue
            if self.quotes and ch == '"':
                if in_double:
                    return "".join(out), pos + 1, missing
                inner, pos, inner_missing = self.word(pos + 1, "", in_double=True)
                out.append(inner)
                missing += inner_missing
                continue
            if ch == "$":
                value, pos, var_missing = self.dollar(pos)
                out.append(value)
                missing += var_missing
                continue
            out.append(ch)
            pos += 1
        return "".join(out), pos, missing

    def dollar(self, pos: int) -> tuple[str, int, list[str]]:
        text = self.text
        plain = _NAME.match(text, pos + 1)
        if plain:
            value, missing, _ = self.value_of(plain.group(0), "", "")
            return value, plain.end(), missing
        braced = _NAME.match(text, pos + 2) if text.startswith("${", pos) else None
        if not braced:
            return "$", pos + 1, []
        name, cursor = braced.group(0), braced.end()
        operator = next((op for op in (":-", ":+", "-", "+") if text.startswith(op, cursor)), "")
        word, word_missing = "", list[str]()
        if operator:
            word, cursor, word_missing = self.word(cursor + len(operator), "}")
        elif not text.startswith("}", cursor):
            return "$", pos + 1, []
        end = cursor + 1 if text.startswith("}", cursor) else cursor
        value, missing, used_word = self.value_of(name, operator, word)
        return value, end, missing + (word_missing if used_word else [])

    def value_of(self, name: str, operator: str, word: str) -> tuple[str, list[str], bool]:
        """(value, missing names, whether the word was used)."""
        self.used.append(name)
        value = self.variables.get(name)
        is_set = name in self.variables and value is not None
        if operator in (":-", "-"):
            use_word = (not is_set) if operator == "-" else (not value)
            return (word, [], True) if use_word else (value or "", [], False)
        if operator in (":+", "+"):
            present = is_set if operator == "+" else bool(value)
            return (word, [], True) if present else ("", [], False)
        return (value or "", [], False) if is_set else ("", [name], False)


_WORD = re.compile(r"""(?:[^\s'"\\]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.)+""", re.S)


def split_words(command: str) -> list[str]:
    """Whitespace-separated words with quotes removed (ARG and ENV), in linear time."""
    return [unquote(word) for word in _WORD.findall(command)]
