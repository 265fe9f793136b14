"""Read named files of an image archive: members of a tar, or files in a directory.

A tar's members are indexed once (headers only); each open() reads its bytes
in place, seekable, without extracting anything.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from ...errors import ImagefixError
from ..layerfs import normalize


class _Section(io.RawIOBase):
    """A read-only, seekable window [offset, offset+size) of a file."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._offset, self._size, self._pos = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self._size - self._pos)
        if count <= 0:
            return 0
        self._file.seek(self._offset + self._pos)
        data = self._file.read(count)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._file.close()
        super().close()


class BlobStore:
    """Files of an archive by relative path."""

    label: str

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def open(self, name: str) -> io.BufferedReader:
        raise NotImplementedError

    def read(self, name: str, what: str, limit: int = 64 * 2**20) -> bytes:
        """A small file (manifest, config, index) in full; missing -> one clear error."""
        if not self.exists(name):
            raise ImagefixError(f"{self.label}: {what} {name} is missing")
        if self.size(name) > limit:
            raise ImagefixError(f"{self.label}: {what} {name} is implausibly large")
        with self.open(name) as handle:
            return handle.read()


class TarBlobStore(BlobStore):
    def __init__(self, path: Path, label: str) -> None:
        self.path = str(path)
        self.label = label
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            if not path.is_dir() and path.exists() and not path.is_file():  # opening a FIFO blocks
                raise ImagefixError(f"{label}: not a regular file (a FIFO or a device), not a tar archive")
            with tarfile.open(self.path, mode="r:") as tar:
                for member in tar:
                    self._members[normalize(member.name)] = member
        except FileNotFoundError:
            raise ImagefixError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise ImagefixError(f"{label}: is a directory, not a tar archive") from None
        except PermissionError:
            raise ImagefixError(f"{label}: permission denied") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            reason = "truncated" if isinstance(exc, EOFError) or "unexpected end" in str(exc) \
                else "not a tar archive"
            raise ImagefixError(f"{label}: {reason} ({exc})") from None
        for name, member in self._members.items():
            if member.isreg() and member.offset_data + member.size > os.path.getsize(self.path):
                raise ImagefixError(f"{label}: truncated (member {name} is cut short)")

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self._members[normalize(name)]
        seen = 0
        while member.islnk() or member.issym():  # docker save links duplicate layers
            target = normalize(member.linkname if member.islnk() else
                               os.path.join(os.path.dirname(member.name), member.linkname))
            member = self._members[target]
            seen += 1
            if seen > 8:
                raise ImagefixError(f"{self.label}: link loop at {name}")
        return member

    def exists(self, name: str) -> bool:
        try:
            return self._member(name).isreg()
        except KeyError:
            return False

    def size(self, name: str) -> int:
        return self._member(name).size

    def open(self, name: str) -> io.BufferedReader:
        member = self._member(name)
        return io.BufferedReader(_Section(self.path, member.offset_data, member.size), 1 << 20)


class DirBlobStore(BlobStore):
    def __init__(self, path: Path, label: str) -> None:
        self.root = path
        self.label = label
        if not path.is_dir():
            raise ImagefixError(f"{label}: no such directory")

    def _path(self, name: str) -> Path:
        return self.root / normalize(name)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def open(self, name: str) -> io.BufferedReader:
        try:
            return open(self._path(name), "rb")
        except OSError as exc:
            raise ImagefixError(f"{self.label}: cannot read {name}: {exc.strerror}") from None
