"""Images in the local Docker engine, read through the Docker SDK without exporting them.

Sizes come from the engine's layer store (layerstore.py: per layer, whatever
its history says) when we may read it, else from the image history matched to
the layers; a file such as /etc/passwd is read from overlay2's layer directories when we
may read them (root on the engine's host), otherwise from a created-but-never-
started container with `get_archive`.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
from typing import Any

from ...errors import ImagefixError
from ..layerfs import OPAQUE_MARKER, WHITEOUT_PREFIX, normalize
from ..model import Image, Layer, SymlinkTo, platform_of

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
            reason = _reason(exc)
            raise DaemonUnavailable(
                f"cannot reach the Docker engine at {where}: is dockerd running? ({reason})"
            ) from None
        _client_cache["api"] = client
    return _client_cache["api"]


def _reason(exc: BaseException) -> str:
    """The cause in words ("Connection refused"), not requests' and urllib3's nested reprs."""
    import re

    found = re.findall(r"\[Errno -?\d+\] ([^'\"()\]\[]+)", str(exc))
    if found:
        return found[-1].strip()
    cause: BaseException | None = exc
    while cause is not None:  # the innermost OSError's own words
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    text = str(exc).split(": ")[-1]
    return re.sub(r"[(){}<>'\"]", "", text).strip()[:200] or type(exc).__name__


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


def _layer_store(api: Any, inspect: dict, diff_ids: list[str]):
    from .layerstore import LayerStore, engine_root

    driver = (inspect.get("GraphDriver") or {}).get("Name")
    root = engine_root(inspect, api) if driver and diff_ids else None
    if root is None or not driver or not os.access(root / "image" / driver, os.R_OK | os.X_OK):
        return None
    return LayerStore(root, driver, diff_ids, inspect["Id"])


def _stored_sizes(store: Any, diff_ids: list[str], history: list[dict]) -> list[tuple[int, str]] | None:
    """(size, created_by) per layer from the engine's layer store; the steps from the stored config's
    history (empty_layer marks the steps that made no layer), else from the engine's matched history."""
    from ..model import layer_history

    sizes = store.sizes()
    if sizes is None:
        return None
    steps = layer_history(store.config() or {}, len(diff_ids))
    if not any(steps):
        matched = layer_sizes(history, len(diff_ids))
        steps = [created_by for _, created_by in matched] if matched else steps
    return list(zip(sizes, steps, strict=True))


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


def find_file_in_overlay(path: str, dirs_top_down: list[str]) -> bytes | SymlinkTo | None:
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
                if stat.S_ISLNK(info.st_mode):
                    return SymlinkTo(os.readlink(entry))  # followed inside the image, never on the host
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


def _read_via_container(api: Any, image_id: str, path: str) -> bytes | SymlinkTo | None:
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
                if member.issym():
                    return SymlinkTo(member.linkname)
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
    store = _layer_store(api, inspect, diff_ids)
    sizes = _stored_sizes(store, diff_ids, history) if store is not None else None
    sizes = sizes or layer_sizes(history, len(diff_ids))
    layers = [
        Layer(index=i, diff_id=d, digest=None,
              size=sizes[i][0] if sizes else None, compressed_size=None,
              created_by=sizes[i][1] if sizes else "")
        for i, d in enumerate(diff_ids)
    ]
    if sizes is None and layers:  # history cannot be matched to layers: put the total on top, say so
        layers[-1].size = inspect.get("Size", 0)
        layers[-1].size_estimated = True
        layers[-1].size_note = "the engine's history cannot be matched to its layers: the image's total"
    config = {
        "config": inspect.get("Config") or {},
        "os": inspect.get("Os"), "architecture": inspect.get("Architecture"),
        "variant": inspect.get("Variant"),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "created": inspect.get("Created"),
    }
    image_id = inspect["Id"]
    contents = DaemonLayers(api, inspect, reference, layers, force_container_read=force_container_read,
                            store=store)
    repo_digests = inspect.get("RepoDigests") or []
    tags = inspect.get("RepoTags") or []
    return Image(
        reference=reference, transport=transport, config=config, layers=layers,
        platform=platform_of(config),
        name=name if ":" in name or "@" in name else (tags[0] if tags else name),
        digest=repo_digests[0].partition("@")[2] if repo_digests else None,
        repo_digests=list(repo_digests),
        image_id=image_id, contents=contents,
    )


class DaemonLayers:
    """An engine image's files: overlay2's layer folders when readable, else a never-started container;
    its layer entries from those folders, or from `docker save`."""

    def __init__(self, api: Any, inspect: dict, reference: str, layers: list[Layer], *,
                 force_container_read: bool = False, store: Any = None) -> None:
        self.api, self.inspect, self.reference, self.layers = api, inspect, reference, layers
        self.store = store
        self.image_id = inspect["Id"]
        self.diff_ids = (inspect.get("RootFS") or {}).get("Layers") or []
        self.overlay = None if force_container_read else _overlay_dirs(inspect)

    def tar_sizes(self) -> list[int] | None:
        """Each layer tar's exact length, from the layer store (for comparing with registry sizes)."""
        return self.store.tar_sizes() if self.store is not None else None

    def read_file(self, path: str) -> bytes | SymlinkTo | None:
        if self.overlay is not None:
            return find_file_in_overlay(path, self.overlay)
        return _read_via_container(self.api, self.image_id, path)

    def layer_entries(self, how: str):
        import docker

        from ..layerwalk import entries_from_dir, entries_from_save
        from ..tarstream import TarFormatError

        dirs = _overlay_dirs(self.inspect)
        if how != "export" and dirs is not None and len(dirs) == len(self.diff_ids):
            return [list(entries_from_dir(d)) for d in reversed(dirs)], "direct"
        if how == "direct":
            raise ImagefixError(f"{self.reference}: the engine's layer directories cannot be read here "
                                "(needs overlay2 and root on the engine's host)")
        from ..progress import CountingReader, byte_progress, showing

        about = sum(layer.size or 0 for layer in self.layers)  # the export is about this big
        try:
            with byte_progress(f"exporting {self.reference} (the engine writes it all before its first byte)",
                               about) as advance, export_stream(self.api, self.image_id) as stream:
                reader = CountingReader(stream, advance) if showing() else stream
                return entries_from_save(reader, self.diff_ids), "export"
        except docker.errors.APIError as exc:
            raise ImagefixError(f"{self.reference}: the engine refused to export it: {exc.explanation}") \
                from None
        except (TarFormatError, OSError) as exc:
            raise ImagefixError(f"{self.reference}: the engine's export could not be read ({exc})") from None


@contextlib.contextmanager
def export_stream(api: Any, image_id: str):
    """`docker save` of one image as a readable stream, read off the connection where we can."""
    response = api._get(api._url("/images/{0}/get", image_id), stream=True)
    try:
        api._raise_for_status(response)
        yield body_reader(response)
    finally:
        response.close()


def body_reader(response: Any) -> Any:
    """The fast reader over the connection the SDK opened, else urllib3's own (same bytes, more CPU)."""
    from .httpbody import HttpBody

    try:  # the objects docker-py itself reaches for when it hijacks a connection
        body = response.raw._fp
        return HttpBody(body.fp, chunked=bool(body.chunked), length=body.length)
    except AttributeError:
        return response.raw
