"""Writing users' files safely: a temp file in the same folder, fsync, then rename over."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import ImagefixError

TEMP_SUFFIX = ".imagefix-tmp"
MAX_LINKS = 40  # as the kernel's ELOOP


def resolve_link(path: str | Path) -> Path:
    """The file a path names after following symbolic links (the path itself when it is none).

    A dangling link resolves to where it points, so a new file is created there.
    """
    current = Path(path)
    for _ in range(MAX_LINKS):
        if not current.is_symlink():
            return current
        target = Path(os.readlink(current))
        current = target if target.is_absolute() else current.parent / target
    raise ImagefixError(f"{path}: too many levels of symbolic links")


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Temp files an interrupted earlier run left (named after the target and the writer's pid)."""
    for temp in folder.glob(f".{name}.*{TEMP_SUFFIX}"):
        pid = temp.name[len(name) + 2 : -len(TEMP_SUFFIX)].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace(target: Path, data: bytes | Iterable[bytes], *, like: os.stat_result | None) -> None:
    """Write `data` to a temp file beside `target`, fsync, give it the old file's mode and owner, rename."""
    folder = target.parent
    _remove_stale_temps(folder, target.name)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in [data] if isinstance(data, bytes) else data:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, like.st_mode & 0o7777 if like else 0o644)
        if like is not None and (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # only root may give a file away
                os.chown(temp, like.st_uid, like.st_gid)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _free_backup_name(target: Path) -> Path:
    """TARGET.bak, or TARGET.bak.1, .2, ... when an earlier backup (or anything else) is there."""
    candidate = target.with_name(target.name + ".bak")
    number = 0
    while os.path.lexists(candidate):
        number += 1
        candidate = target.with_name(f"{target.name}.bak.{number}")
    return candidate


def _write_through(path: str | Path, target: Path, old: os.stat_result, data: bytes | Iterable[bytes],
                   backup: bool) -> None:
    """`-o /dev/stdout`, a FIFO, `/dev/full`: written into, never renamed over (a rename would put a
    regular file in the device's place); a full device is an error like a full disk."""
    if stat.S_ISDIR(old.st_mode):
        raise ImagefixError(f"cannot write {path}: is a directory")
    if backup:
        raise ImagefixError(f"cannot write {path}: not a regular file, so no backup of it can be made")
    with open(target, "wb") as out:
        for chunk in [data] if isinstance(data, bytes | bytearray) else data:
            out.write(chunk)
        out.flush()
        with contextlib.suppress(OSError):  # a pipe or a terminal cannot sync
            os.fsync(out.fileno())


def _chunks(path: Path, size: int = 2**20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def write_atomic(path: str | Path, data: bytes | Iterable[bytes], *, backup: bool = False,
                 force: bool = False) -> Path | None:
    """Replace the file `path` names with `data` in one rename; returns the backup's path, if one was made.

    Symbolic links are followed (the link stays, its target gets the new
    content); the target keeps its mode and, where allowed, its owner. With
    `backup`, the old content is first written to a new TARGET.bak (numbered
    when one exists: an earlier backup is never overwritten) the same atomic
    way, never through a link. Without `force`, a read-only file and a file
    with other hard links (the rename would split them) are refused.
    """
    target = resolve_link(path)
    try:
        old = target.stat() if target.exists() else None
        if old is not None and not stat.S_ISREG(old.st_mode):
            _write_through(path, target, old, data, backup)
            return None
        if old is not None and not force:
            if not os.access(target, os.W_OK) or not old.st_mode & 0o222:
                raise ImagefixError(f"{path} is read-only: not rewriting it (--force to write anyway)")
            if old.st_nlink > 1:
                raise ImagefixError(f"{path} has {old.st_nlink - 1} other hard link(s); replacing it would "
                                    "split them (--force to write anyway)")
        saved = None
        if backup and old is not None:
            saved = _free_backup_name(target)
            _replace(saved, _chunks(target), like=old)  # a 100 MB manifest is not read whole again
        _replace(target, data, like=old)
        return saved
    except OSError as exc:
        raise ImagefixError(f"cannot write {path}: {exc.strerror or exc}") from None


def decode_text(data: bytes, path: str, what: str) -> str:
    """A text file a user gave us: refuse binary and non-UTF-8 input in one line."""
    if b"\0" in data:
        raise ImagefixError(f"{path}: binary file, not {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ImagefixError(f"{path}: not UTF-8 text, not {what}") from None


MAX_INPUT = 64 * 2**20  # a Dockerfile, Kata config or JSON result; a bigger file is not one


def read_input(path: str, what: str = "file", limit: int = MAX_INPUT) -> bytes:
    """A user's input file ('-' is stdin) with one-line errors: a regular file (a FIFO would block,
    /dev/zero never ends) of at most `limit` bytes."""
    import sys

    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise ImagefixError(f"<stdin>: more than {limit // 2**20} MiB: too large for a {what}")
        return data
    return read_regular(Path(path), limit, what)


def read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file, checked before it is opened (opening a FIFO blocks), read with a
    bound (a file may grow while it is read). FileNotFoundError is left to the caller when it
    wants it: otherwise every failure is one line."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ImagefixError(f"{path}: is a directory")
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            raise ImagefixError(f"{path}: is {kind}, not a regular file ({what})")
        if info.st_size > limit:
            raise ImagefixError(f"{path}: {info.st_size // 2**20} MiB is too large for a {what} "
                                f"(at most {limit // 2**20} MiB)")
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ImagefixError(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise ImagefixError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ImagefixError(f"{path}: grew past {limit // 2**20} MiB while read: too large for a {what}")
    return data
