"""The one image model every source returns: config, layers, and files read from the merged tree."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


class Layer(msgspec.Struct):
    index: int
    diff_id: str | None  # sha256 of the uncompressed tar
    digest: str | None  # digest of the blob as stored or served (may equal diff_id)
    size: int | None  # unpacked bytes, counted like `docker history` (file sizes, links once)
    compressed_size: int | None  # bytes on the wire, when the blob is compressed
    created_by: str = ""
    size_estimated: bool = False
    # what `size` counts: "files" (file bytes, links once, as `docker history`) or "tar" (the length of
    # the uncompressed layer tar, headers and padding included: what a registry blob's trailer tells)
    size_basis: str = "files"
    tar_size: int | None = None  # the uncompressed layer tar's exact length, when a source knows it
    size_note: str = ""  # why the size is only estimated, when it is


class SymlinkTo(msgspec.Struct, frozen=True):
    """A source's answer for a path that is a symbolic link in the image (target as stored)."""

    target: str


class LayerContents(Protocol):
    """What a source offers beyond the config: files of the merged tree, and every layer's entries."""

    def read_file(self, path: str) -> bytes | SymlinkTo | None:
        """The file at `path` in the merged layers (a link is answered as SymlinkTo), or None."""

    def layer_entries(self, how: str) -> tuple[list[list[tuple[str, int, str]]], str]:
        """Each layer's (path, bytes, kind) entries, bottom-up; and how they were read."""


MAX_LINKS = 40  # as the kernel's ELOOP
PATH_MAX, NAME_MAX = 4096, 255  # Linux: a longer path, link target or name is ENAMETOOLONG, never a file


def follow_link(path: str, target: str) -> str:
    """Where a link at `path` points, inside the image: `..` never climbs above its root."""
    import posixpath

    joined = target if target.startswith("/") else posixpath.join(posixpath.dirname("/" + path.lstrip("/")),
                                                                  target)
    return posixpath.normpath("/" + joined.lstrip("/"))


class Image(msgspec.Struct):
    """An image from any source. Rules never know where it came from."""

    reference: str  # as the user wrote it
    transport: str  # docker-daemon, docker-archive, oci, oci-archive, docker
    config: dict[str, Any]  # the image config (OCI/docker): config.User, rootfs, history
    layers: list[Layer]
    platform: str = ""
    name: str | None = None  # repo:tag when known
    digest: str | None = None  # manifest or repo digest
    image_id: str | None = None  # config digest
    transfer: Any = None  # registry request/byte counts, for images read from a registry
    repo_digests: list[str] = msgspec.field(default_factory=list)  # the engine's RepoDigests (NAME@DIGEST)
    contents: LayerContents | None = None  # how the source reads its layers
    _file_cache: dict[str, bytes | None] = msgspec.field(default_factory=dict)
    # what users/memo.py keeps of the judgements made from this image's files
    judged: dict[tuple, Any] = msgspec.field(default_factory=dict)

    @property
    def user(self) -> str:
        return (self.config.get("config") or {}).get("User") or ""

    @property
    def env(self) -> dict[str, str]:
        """The config's Env as a mapping (later entries win, as in the runtime)."""
        pairs = [item.partition("=") for item in (self.config.get("config") or {}).get("Env") or []
                 if isinstance(item, str)]
        return {name: value for name, _, value in pairs}

    @property
    def os(self) -> str:
        return str(self.config.get("os") or "linux")

    @property
    def labels(self) -> dict[str, str]:
        return (self.config.get("config") or {}).get("Labels") or {}

    @property
    def unpacked_size(self) -> int:
        return sum(layer.size or 0 for layer in self.layers)

    @property
    def compressed_size(self) -> int | None:
        sizes = [layer.compressed_size for layer in self.layers]
        known = [s for s in sizes if s is not None]
        return None if len(known) < len(sizes) else sum(known)

    @property
    def size_estimated(self) -> bool:
        return any(layer.size_estimated for layer in self.layers)

    @property
    def size_wording(self) -> str:
        """How the unpacked size was had, for messages that derive a time or memory from it."""
        if self.size_estimated:
            return "estimated from compressed sizes"
        return "exact"

    def layer_entries(self, how: str = "auto") -> tuple[list[list[tuple[str, int, str]]], str]:
        """Every layer's (path, bytes, kind) entries, bottom-up, and how they were read."""
        if self.contents is None:
            raise ValueError(f"{self.reference}: this source cannot list files")
        return self.contents.layer_entries(how)

    def read_file(self, path: str) -> bytes | None:
        """A file from the merged filesystem (whiteouts honoured, links followed inside it), or None."""
        if path not in self._file_cache:
            self._file_cache[path] = self._read_following_links(path)
        return self._file_cache[path]

    def _read_following_links(self, path: str) -> bytes | None:
        if self.contents is None:
            return None
        directory = False  # a target ending in "/" names a directory: a file there is ENOTDIR
        for _ in range(MAX_LINKS):
            answer = self.contents.read_file(path)
            if not isinstance(answer, SymlinkTo):
                return None if directory and answer is not None else answer
            if len(answer.target.encode("utf-8", "surrogateescape")) >= PATH_MAX:
                return None  # no kernel creates or follows such a link
            directory = (directory or answer.target.endswith(("/", "/.", "/.."))
                         or answer.target in (".", ".."))
            path = follow_link(path, answer.target)
        return None  # a link loop: no file, as the kernel would say ELOOP


def layer_history(config: dict[str, Any], layer_count: int) -> list[str]:
    """`created_by` of each layer, from the config history's non-empty entries."""
    entries = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    if len(entries) != layer_count:
        return [""] * layer_count
    return [h.get("created_by", "") or h.get("comment", "") for h in entries]


def platform_of(config: dict[str, Any]) -> str:
    os_name = config.get("os") or "linux"
    arch = config.get("architecture") or "unknown"
    variant = config.get("variant")
    return f"{os_name}/{arch}" + (f"/{variant}" if variant else "")


def short_created_by(text: str, width: int = 60) -> str:
    """`/bin/sh -c #(nop) COPY file:abc in /x` -> `COPY file:abc in /x`, cut to width."""
    text = " ".join(text.split())
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if text.startswith(prefix):
            text = text[len(prefix):] if prefix.endswith(") ") else "RUN " + text[len(prefix):]
            break
    text = text.removesuffix(" # buildkit")
    return text if len(text) <= width else text[: width - 1] + "…"
