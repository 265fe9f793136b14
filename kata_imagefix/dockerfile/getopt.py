"""Command-line options read the way the account tools read them.

shadow (useradd, usermod, groupadd, groupmod) and busybox use getopt_long:
short options cluster (`-DHu 1000`), a value may be glued (`-u1000`), long
options take `--uid=1000` or `--uid 1000` and may be shortened to a unique
prefix, options and operands mix until `--`. Debian's adduser is Perl's
Getopt::Long: long options only, with one dash or two, shortened the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    short: str  # getopt's string: "u:g:rN" (":" after a letter: it takes a value)
    long: dict[str, str]  # long name -> key (a short letter or the name); "name=" takes a value
    perl: bool = False  # Getopt::Long: `-name` is a long option too, no short clusters

    def __post_init__(self) -> None:
        names = {n.rstrip("="): (key, n.endswith("=")) for n, key in self.long.items()}
        object.__setattr__(self, "names", names)  # frozen: computed once per spec

    def takes_value(self, letter: str) -> bool:
        at = self.short.find(letter)
        return at >= 0 and self.short[at + 1:at + 2] == ":"


def parse(args: list[str], spec: Spec) -> tuple[dict[str, str | bool], list[str]]:
    """(options by key, operands). Unknown options are skipped; a later option wins."""
    options: dict[str, str | bool] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            operands.extend(args[i:])
            break
        if word.startswith("--") or (spec.perl and word.startswith("-") and len(word) > 1):
            name, eq, value = word.lstrip("-").partition("=")
            key, takes = _long(name, spec)
            if key is None:
                continue
            if takes and not eq:
                value = args[i] if i < len(args) else ""
                i += 1
            options[key] = value if takes else True
        elif word.startswith("-") and len(word) > 1:
            for at, letter in enumerate(word[1:], 1):
                if spec.takes_value(letter):
                    value = word[at + 1:]
                    if not value:
                        value = args[i] if i < len(args) else ""
                        i += 1
                    options[letter] = value
                    break
                if letter in spec.short:
                    options[letter] = True
        else:
            operands.append(word)
    return options, operands


def _long(name: str, spec: Spec) -> tuple[str | None, bool]:
    names: dict[str, tuple[str, bool]] = spec.names  # type: ignore[attr-defined]
    if name in names:
        return names[name]
    matches = {value for n, value in names.items() if n.startswith(name)} if name else set()
    return matches.pop() if len(matches) == 1 else (None, False)
