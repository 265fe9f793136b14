"""A RUN script cut into simple commands, as far as a linter needs: words with quotes removed.

Not a shell: it knows the separators (`&&`, `||`, `;`, `|`, `&`, newlines),
redirections (`2>&1`, `>/dev/null`), subshells and groups (`( … )`, `{ …; }`), the reserved words that open or
close a compound command (`if … then … fi`, `while … do … done`), leading
variable assignments and wrappers (`sudo`, `exec`, `env`), and `sh -c 'script'`.
Everything is done with one regex scan, in linear time (a 1 MB word must not
take seconds, as shlex did).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+|\\\r?\n)
  | (?P<comment>\#[^\n]*)
  | (?P<redirect>\d*(?:&>>?|>>|>&|<&|>\||<>|<<<|>|<)[ \t]*(?:[^\s;&|()<>'"]+|'[^']*'|"(?:[^"\\]|\\.)*")*)
  | (?P<op>&&|\|\||;;|[;&|()\n])
  | (?P<word>(?:[^\s'"\\;&|()]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.)+)
  | (?P<other>.)
""", re.X | re.S)
_QUOTING = re.compile(r"['\"\\]")
_PART = re.compile(r"""'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)|([^'"\\]+)""", re.S)

# Words that open, continue or close a compound command: what follows them is a command.
_RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time"}
_WRAPPERS = {"sudo", "exec", "command", "nohup", "nice", "doas", "chroot"}
_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def unquote(word: str) -> str:
    """A shell word without its quotes ("..." keeps backslashes except before \\ " $ `)."""
    if not _QUOTING.search(word):
        return word
    out = []
    for part in _PART.finditer(word):
        if part.group(2) is not None:
            out.append(re.sub(r'\\([\\"$`])', r"\1", part.group(2)))
        elif part.group(1) is not None:
            out.append(part.group(1))
        else:
            out.append(part.group(3) or part.group(4) or "")
    return "".join(out)


def commands(script: str, depth: int = 0) -> Iterator[list[str]]:
    """The simple commands of a script, each as its words (quotes removed, wrappers dropped)."""
    current: list[str] = []
    for match in _TOKEN.finditer(script):
        kind = match.lastgroup
        if kind == "word":
            current.append(match.group(0))
        elif kind == "op":
            yield from _simple(current, depth)
            current = []
    yield from _simple(current, depth)


def _simple(raw: list[str], depth: int) -> Iterator[list[str]]:
    words = [unquote(w) for w in raw]
    while words:
        head = words[0]
        if head in _RESERVED or _ASSIGNMENT.match(head):
            words = words[1:]
        elif head.rsplit("/", 1)[-1] in _WRAPPERS or head == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or (head == "env" and _ASSIGNMENT.match(words[0]))):
                words = words[1:]
        elif head in ("for", "case", "select", "function"):
            return  # a loop header or a pattern: no command of its own
        else:
            break
    if not words:
        return
    tool = words[0].rsplit("/", 1)[-1]
    if tool in _SHELLS and depth < 3:
        script = _dash_c(words)
        if script is not None:
            yield from commands(script, depth + 1)
            return
    yield words


def _dash_c(words: list[str]) -> str | None:
    """The script of `sh -c 'script'` (also `-ec`, `-xc`), or None."""
    skip = False
    for i, word in enumerate(words[1:], 1):
        if skip:  # the name after -o / +o (`bash -o pipefail -c …`)
            skip = False
        elif word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
            return words[i + 1] if i + 1 < len(words) else None
        elif word[:1] in "-+" and word[1:2] != "-" and word.endswith("o"):
            skip = True  # -o, +o, -euo
        elif not word.startswith(("-", "+")):
            return None
    return None
