"""Writing users' files safely: a temp file in the same folder, fsync, then rename over."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import ImagefixError


def write_atomic(path: str | Path, data: bytes, *, backup: bool = False) -> None:
    """Replace `path` with `data` in one rename; keeps the original's mode; optional PATH.bak copy."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        if backup and target.exists():
            shutil.copy2(target, target.with_name(target.name + ".bak"))
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".imagefix", dir=folder)
    except OSError as exc:
        raise ImagefixError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        with_cleanup = Path(temp)
        if with_cleanup.exists():
            with_cleanup.unlink()
        raise ImagefixError(f"cannot write {target}: {exc.strerror or exc}") from None


def decode_text(data: bytes, path: str, what: str) -> str:
    """A text file a user gave us: refuse binary and non-UTF-8 input in one line."""
    if b"\0" in data:
        raise ImagefixError(f"{path}: binary file, not {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ImagefixError(f"{path}: not UTF-8 text, not {what}") from None


def read_input(path: str, what: str = "file") -> bytes:
    """A user's input file ('-' is stdin) with one-line errors."""
    import sys

    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImagefixError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ImagefixError(f"{path}: is a directory") from None
    except OSError as exc:
        raise ImagefixError(f"{path}: cannot read: {exc.strerror or exc}") from None
