"""The one write policy of every command that writes a file: where the result goes and what is kept.

`-o FILE` writes FILE (always, changed or not), `-o -` and no destination
write standard output, `--in-place` replaces each changed input keeping the
old content as a numbered backup (INPUT.bak, INPUT.bak.1, ...), `--check`
writes nothing and tells whether anything would change (exit 1), `--diff`
prints a unified diff and, alone, writes nothing. Files are replaced
atomically through symbolic links (fileio.write_atomic); a read-only file or
one with other hard links is refused unless `--force`. The commands (patch,
k8s fix, kata patch; report, k8s check, k8s pod and fix for what they
produce) only build the new text: this module decides and does the writing,
so a use case can call it without the command line.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import ImagefixError
from .fileio import write_atomic

STDOUT = "-"


def to_stdout(data: bytes | Iterable[bytes]) -> None:
    """Bytes onto standard output, after whatever text was printed before them (kept in order)."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    for piece in [data] if isinstance(data, bytes) else data:
        out.write(piece)
    out.flush()


def write_file(path: str | Path, data: bytes | Iterable[bytes], *, force: bool = False,
               backup: bool = False) -> Path | None:
    """Write one file by the policy's rules (atomic, through links, refusals); the backup made, if any."""
    return write_atomic(path, data, backup=backup, force=force)


@dataclass(frozen=True)
class Output:
    """Where a command's product goes (`report -o`, `k8s check -o`, `k8s pod -o`): a file, or stdout."""

    path: str | None = None  # None or "-": standard output
    force: bool = False

    @property
    def is_stdout(self) -> bool:
        return self.path in (None, STDOUT)

    def write(self, data: bytes | Iterable[bytes]) -> str:
        """Write the product; returns where it went ("<stdout>" or the path)."""
        if self.is_stdout:
            to_stdout(data)
            return "<stdout>"
        assert self.path is not None
        write_file(self.path, data, force=self.force)
        return self.path


class Pieces(Protocol):
    """A new text too big to join (`k8s fix` of a 100,000-item List): made piece by piece each time it
    is iterated, knowing whether it differs from the original, and making its unified diff from the
    original piece by piece too (from its edits: a diff of the two whole texts did not end)."""

    @property
    def changed(self) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def diff(self, label: str) -> Iterator[str]:
        """The unified diff from the original (`a/label`) to this text (`b/label`), in pieces."""
        ...


@dataclass(frozen=True)
class Edit:
    """One input's new text: what an editing command made of `name` (nothing written yet)."""

    name: str  # the input as the user named it ('-' or <stdin> for stdin)
    original: str
    text: str | Pieces
    write_to: str | Path | None = None  # where --in-place writes (default: the input itself)
    backup: bool = True  # False where a backup would be read as input (a Kata drop-in's folder)

    @property
    def changed(self) -> bool:
        return self.text != self.original if isinstance(self.text, str) else self.text.changed

    @property
    def label(self) -> str:
        """The file a diff names (a/LABEL, b/LABEL)."""
        return str(self.write_to or self.name).lstrip("/")

    def encoded(self) -> Iterator[bytes]:
        """The new text as UTF-8 bytes, a batch of pieces (about 1 MiB) at a time."""
        if isinstance(self.text, str):
            yield self.text.encode("utf-8", "surrogateescape")
            return
        yield from batched(self.text)

    def diff(self) -> str:
        if not isinstance(self.text, str):
            return "".join(self.text.diff(self.label))
        label = self.label
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True),
                                            self.text.splitlines(keepends=True), f"a/{label}", f"b/{label}"))

    def diff_encoded(self) -> Iterator[bytes]:
        """The unified diff as UTF-8 bytes: of a Pieces text made from its edits, a batch at a time."""
        if isinstance(self.text, str):
            yield self.diff().encode("utf-8", "surrogateescape")
            return
        yield from batched(self.text.diff(self.label))


def batched(pieces: Iterable[str]) -> Iterator[bytes]:
    """The pieces as UTF-8 bytes, joined a batch (about 1 MiB) at a time."""
    batch: list[str] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= BATCH:
            yield "".join(batch).encode("utf-8", "surrogateescape")
            batch, size = [], 0
    yield "".join(batch).encode("utf-8", "surrogateescape")


BATCH = 2**20


@dataclass(frozen=True)
class Written:
    """What the policy did with one edit."""

    edit: Edit
    where: str | None  # the file written, "<stdout>", or None when nothing was written
    backup: Path | None = None



@dataclass(frozen=True)
class EditPolicy:
    """The destination flags of an editing command: `-o FILE|-`, `--in-place`, `--check`, `--diff`,
    `--force`."""

    output: str | None = None
    in_place: bool = False
    check: bool = False
    diff: bool = False
    force: bool = False
    backup: bool = True  # --no-backup: under version control the old file is in git already

    @property
    def to_stdout(self) -> bool:
        """The edited document goes to standard output."""
        if self.output is not None:
            return self.output == STDOUT
        return not (self.in_place or self.check or self.diff)

    @property
    def writes(self) -> bool:
        """Anything reaches a file or stdout (not --check, not --diff alone)."""
        return self.output is not None or self.in_place or self.to_stdout

    @property
    def messages_to_stderr(self) -> bool:
        """Messages go to stderr when stdout carries the document or the diff."""
        return self.to_stdout or self.diff

    def check_usage(self, inputs: Sequence[str], *, what: str = "file") -> None:
        """The one-line refusals for where the results cannot go; before anything is read."""
        if sum((self.output is not None, self.in_place, self.check)) > 1:
            raise ImagefixError("use one of -o OUT, --in-place, --check")
        if self.output is not None and len(inputs) > 1:
            raise ImagefixError(f"-o OUT takes one {what}; use --in-place for several")
        if self.in_place and STDOUT in inputs:
            raise ImagefixError("--in-place cannot replace stdin")
        if self.to_stdout and self.output is None and len(inputs) > 1:
            raise ImagefixError(f"several {what}s: use --in-place, --check or --diff")

    def apply(self, edit: Edit) -> Written:
        """Write one edit where the flags say (the diff, when asked, is printed first)."""
        if self.diff and edit.changed:
            to_stdout(edit.diff_encoded())  # a big manifest's diff is never held whole either
        data = edit.encoded()  # made as it is written: a big manifest's fixed text is never held whole
        if self.check:
            return Written(edit, None)
        if self.output is not None and self.output != STDOUT:
            write_file(self.output, data, force=self.force)
            return Written(edit, self.output)
        if self.to_stdout:
            to_stdout(data)
            return Written(edit, "<stdout>")
        if self.in_place:
            if not edit.changed:
                return Written(edit, None)
            target = edit.write_to or edit.name
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            saved = write_file(target, data, force=self.force, backup=edit.backup and self.backup)
            return Written(edit, str(target), saved)
        return Written(edit, None)  # --diff alone: the diff was all

    def said(self, written: Written, done: str, would: str) -> str:
        """The verb of a change's message: `done` when it was written, `would` when not (--check), and
        with --diff alone that only a diff was printed."""
        if written.where is not None:
            return done
        if self.diff and not self.check:
            return f"{would} (only a diff was printed; nothing written)"
        return would

    def exit_code(self, changed: bool, failed: bool = False) -> int:
        """2 when an input failed, 1 under --check when something would change, else 0."""
        return 2 if failed else 1 if self.check and changed else 0
