"""Images in the local Docker engine, read through the Docker SDK without exporting them.

Sizes come from the image history (the engine's own per-layer diff sizes);
a file such as /etc/passwd is read from overlay2's layer directories when we
may read them (root on the engine's host), otherwise from a created-but-never-
started container with `get_archive`.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from typing import Any

from ..errors import ImagefixError
from ..layerfs import OPAQUE_MARKER, WHITEOUT_PREFIX, normalize
from ..model import Image, Layer, platform_of

_NOP = "#(nop) "
_LAYER_STEPS = ("ADD ", "COPY ")


class DaemonUnavailable(ImagefixError):
    pass


class ImageNotInDaemon(ImagefixError):
    pass


_client_cache: dict[str, Any] = {}


def api_client() -> Any:
    """A low-level client with the API version negotiated; one per process."""
    if "api" not in _client_cache:
        import docker  # heavy: imported only when the daemon is used
        from docker.utils import kwargs_from_env

        kwargs = kwargs_from_env()
        where = kwargs.get("base_url") or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        try:
            client = docker.APIClient(version="auto", timeout=120, **kwargs)
        except docker.errors.DockerException as exc:
            reason = str(exc).split(": ", 1)[-1][:200]
            raise DaemonUnavailable(
                f"cannot reach the Docker engine at {where}: is dockerd running? ({reason})"
            ) from None
        _client_cache["api"] = client
    return _client_cache["api"]


def _is_layer_step(created_by: str, size: int) -> bool:
    if size > 0:
        return True
    text = created_by.strip()
    if _NOP in text:
        return any(text.split(_NOP, 1)[1].lstrip().startswith(s) for s in _LAYER_STEPS)
    if text.endswith("# buildkit"):
        return text.startswith(("RUN ", "ADD ", "COPY ", "/bin/sh -c"))
    return bool(text)  # a legacy RUN (`/bin/sh -c ...`) or an imported root filesystem


def layer_sizes(history_newest_first: list[dict], layer_count: int) -> list[tuple[int, str]] | None:
    """(size, created_by) per layer, oldest first, from the engine's image history."""
    entries = list(reversed(history_newest_first))
    steps = [(h.get("Size", 0), h.get("CreatedBy", "") or "") for h in entries
             if _is_layer_step(h.get("CreatedBy", "") or "", h.get("Size", 0))]
    if len(steps) == layer_count:
        return steps
    if layer_count and len(entries) == 1:  # imported image: one entry, one layer
        return [(entries[0].get("Size", 0), entries[0].get("CreatedBy", "") or "")] * layer_count
    return None


def _overlay_dirs(inspect: dict) -> list[str] | None:
    driver = inspect.get("GraphDriver") or {}
    if driver.get("Name") != "overlay2":
        return None
    data = driver.get("Data") or {}
    dirs = [data["UpperDir"]] if data.get("UpperDir") else []
    dirs += [d for d in (data.get("LowerDir") or "").split(":") if d]
    if not dirs or not all(os.access(d, os.R_OK | os.X_OK) for d in dirs):
        return None
    return dirs


def _is_whiteout(path: str) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _is_opaque(path: str) -> bool:
    from ..layerwalk import overlay_opaque

    return overlay_opaque(path) or os.path.exists(os.path.join(path, OPAQUE_MARKER))


def find_file_in_overlay(path: str, dirs_top_down: list[str]) -> bytes | None:
    """Overlayfs lookup over layer diff dirs: whiteouts are 0/0 char devices, opaque dirs stop."""
    target = normalize(path)
    parts = target.split("/")
    for layer_dir in dirs_top_down:
        hidden = False
        current = layer_dir
        for depth, part in enumerate(parts):
            entry = os.path.join(current, part)
            if _is_whiteout(entry) or os.path.lexists(os.path.join(current, WHITEOUT_PREFIX + part)):
                return None
            if depth == len(parts) - 1:
                try:
                    info = os.lstat(entry)
                except OSError:
                    break
                if stat.S_ISREG(info.st_mode):
                    with open(entry, "rb") as handle:
                        return handle.read()
                return None
            if not os.path.isdir(entry) or os.path.islink(entry):
                if os.path.lexists(entry):
                    return None  # a file or link shadows the directory
                break
            if _is_opaque(entry):
                hidden = True
            current = entry
        if hidden:
            return None
    return None


def _read_via_container(api: Any, image_id: str, path: str) -> bytes | None:
    import docker

    container = api.create_container(
        image_id, command=["/imagefix-never-started"], network_disabled=True,
        host_config=api.create_host_config(network_mode="none"),
        labels={"io.imagefix.purpose": "read-file"},
    )
    try:
        try:
            chunks, _ = api.get_archive(container["Id"], path)
        except docker.errors.NotFound:
            return None
        data = b"".join(chunks)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                if member.isreg():
                    handle = tar.extractfile(member)
                    return handle.read() if handle else b""
        return None
    finally:
        api.remove_container(container["Id"], force=True)


def open_daemon_image(name: str, reference: str, transport: str = "docker-daemon",
                      *, force_container_read: bool = False) -> Image:
    import docker

    api = api_client()
    try:
        inspect = api.inspect_image(name)
        history = api.history(name)
    except docker.errors.NotFound:
        raise ImageNotInDaemon(f"image {name} is not in the local Docker engine") from None
    except docker.errors.APIError as exc:
        raise ImagefixError(f"the Docker engine refused to inspect {name}: {exc.explanation}") from None
    except docker.errors.DockerException as exc:
        raise DaemonUnavailable(f"cannot reach the Docker engine: {exc}") from None

    diff_ids = (inspect.get("RootFS") or {}).get("Layers") or []
    sizes = layer_sizes(history, len(diff_ids))
    layers = [
        Layer(index=i, diff_id=d, digest=None,
              size=sizes[i][0] if sizes else None, compressed_size=None,
              created_by=sizes[i][1] if sizes else "")
        for i, d in enumerate(diff_ids)
    ]
    if sizes is None and layers:  # history cannot be matched to layers: put the total on top, say so
        layers[-1].size = inspect.get("Size", 0)
        layers[-1].size_estimated = True
    config = {
        "config": inspect.get("Config") or {},
        "os": inspect.get("Os"), "architecture": inspect.get("Architecture"),
        "variant": inspect.get("Variant"),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "created": inspect.get("Created"),
    }
    image_id = inspect["Id"]
    overlay = None if force_container_read else _overlay_dirs(inspect)

    def read_file(path: str) -> bytes | None:
        if overlay is not None:
            return find_file_in_overlay(path, overlay)
        return _read_via_container(api, image_id, path)

    def walk_layers(how: str):
        from ..layerwalk import entries_from_dir, entries_from_save

        dirs = _overlay_dirs(inspect)
        if how != "export" and dirs is not None and len(dirs) == len(diff_ids):
            return [list(entries_from_dir(d)) for d in reversed(dirs)], "direct"
        if how == "direct":
            raise ImagefixError(f"{reference}: the engine's layer directories cannot be read here "
                                "(needs overlay2 and root on the engine's host)")
        stream = _ChunkStream(api.get_image(image_id))
        try:
            return entries_from_save(stream, diff_ids), "export"
        except docker.errors.APIError as exc:
            raise ImagefixError(f"{reference}: the engine refused to export it: {exc.explanation}") from None

    repo_digests = inspect.get("RepoDigests") or []
    tags = inspect.get("RepoTags") or []
    return Image(
        reference=reference, transport=transport, config=config, layers=layers,
        platform=platform_of(config),
        name=name if ":" in name or "@" in name else (tags[0] if tags else name),
        digest=repo_digests[0].partition("@")[2] if repo_digests else None,
        image_id=image_id, _read_file=read_file, _walk_layers=walk_layers,
    )


class _ChunkStream:
    """A streamed HTTP body as a file-like read(), pulled by a reader thread.

    The engine produces the export while we parse it: a thread keeps reading
    ahead into a buffer bounded by bytes (LIMIT, so memory stays flat), so the
    engine is never stalled by a parsing hiccup; skip() drops bytes uncopied.
    """

    LIMIT = 32 * 2**20

    def __init__(self, chunks) -> None:
        import collections
        import threading

        self.chunks: collections.deque = collections.deque()
        self.buffered = 0
        self.lock = threading.Condition()
        self.current = memoryview(b"")
        self.error: BaseException | None = None
        self.finished = False  # the pump has seen the end
        self.done = False  # the reader has seen the end

        def pump() -> None:
            try:
                for chunk in chunks:
                    with self.lock:
                        while self.buffered >= self.LIMIT:
                            self.lock.wait()
                        self.chunks.append(chunk)
                        self.buffered += len(chunk)
                        self.lock.notify_all()
            except BaseException as exc:  # handed to the reading thread
                self.error = exc
            finally:
                with self.lock:
                    self.finished = True
                    self.lock.notify_all()

        threading.Thread(target=pump, daemon=True).start()

    def _next(self) -> bool:
        with self.lock:
            while not self.chunks and not self.finished:
                self.lock.wait()
            if not self.chunks:
                self.done = True
                if self.error is not None:
                    raise self.error
                return False
            chunk = self.chunks.popleft()
            self.buffered -= len(chunk)
            self.lock.notify_all()
        self.current = memoryview(chunk)
        return True

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size
        while wanted != 0 and not self.done:
            if not self.current and not self._next():
                break
            take = len(self.current) if wanted < 0 else min(wanted, len(self.current))
            parts.append(self.current[:take].tobytes())
            self.current = self.current[take:]
            if wanted > 0:
                wanted -= take
        return b"".join(parts)

    def skip(self, size: int) -> int:
        done = 0
        while done < size and not self.done:
            if not self.current and not self._next():
                break
            take = min(size - done, len(self.current))
            self.current = self.current[take:]
            done += take
        return done


def storage_driver() -> str:
    return api_client().info().get("Driver", "unknown")
