"""docker-archive (what `docker save` writes) and OCI image layouts (directory or tar)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ImagefixError
from ...registry.wire import checked_digest
from ..documents import docker_archive_manifest, image_config, image_index, image_manifest, load_json
from ..layerfs import find_file, tar_unpacked_size
from ..model import Image, Layer, layer_history, platform_of
from ..platforms import parse_platform, pick_platform
from ..reference import split_path_and_suffix
from ..tarstream import TarFormatError, compression_of
from .blobstore import BlobStore, DirBlobStore, TarBlobStore

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class _Blob:
    path: str  # inside the store
    digest: str | None  # as named by the manifest (compressed digest)


def _json(store: BlobStore, name: str, what: str) -> Any:
    return load_json(store.read(name, what), f"{store.label}: {what} {name}")


def _is_compressed(store: BlobStore, name: str) -> bool:
    with store.open(name) as handle:
        head = handle.read(6)
    return compression_of(head) is not None


def _build_image(store: BlobStore, reference: str, transport: str, config_bytes: bytes,
                 blobs: list[_Blob], *, name: str | None, digest: str | None) -> Image:
    config = image_config(load_json(config_bytes, f"{store.label}: the image config", keep_pairs=True),
                          f"{store.label}: the image config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    history = layer_history(config, len(blobs))
    layers: list[Layer] = []
    for index, blob in enumerate(blobs):
        if not store.exists(blob.path):
            raise ImagefixError(f"{store.label}: layer {index} blob {blob.path} is missing")
        _check_blob_digest(store, blob, index)
        compressed = _is_compressed(store, blob.path)
        with store.open(blob.path) as handle:
            try:
                size = tar_unpacked_size(handle, seekable=not compressed)
            except (TarFormatError, OSError) as exc:
                raise ImagefixError(
                    f"{store.label}: layer {index} blob {blob.path} cannot be read ({exc})"
                ) from None
        layers.append(Layer(
            index=index,
            diff_id=diff_ids[index] if index < len(diff_ids) else None,
            digest=blob.digest,
            size=size,
            compressed_size=store.size(blob.path) if compressed else None,
            created_by=history[index],
            tar_size=None if compressed else store.size(blob.path),  # a plain tar is its own length
        ))

    return Image(
        reference=reference, transport=transport, config=config, layers=layers,
        platform=platform_of(config), name=name, digest=digest,
        image_id="sha256:" + hashlib.sha256(config_bytes).hexdigest(), contents=StoreLayers(store, blobs),
    )


class StoreLayers:
    """Files and entries of layers stored as tar members or files (docker-archive, OCI layout)."""

    def __init__(self, store: BlobStore, blobs: list[_Blob]) -> None:
        self.store, self.blobs = store, blobs

    def read_file(self, path: str):
        openers = [lambda b=blob: self.store.open(b.path) for blob in reversed(self.blobs)]
        try:
            return find_file(path, openers, seekable=True)
        except (TarFormatError, OSError) as exc:
            raise ImagefixError(f"{self.store.label}: cannot read {path} from its layers ({exc})") from None

    def layer_entries(self, _how: str):
        """Each layer's entries as it streams (nothing kept): consumed one layer after the other."""
        return self._layers(), "archive"

    def _layers(self):
        for index, blob in enumerate(self.blobs):
            with self.store.open(blob.path) as handle:
                yield self._entries(handle, index)

    def _entries(self, handle, index: int):
        from ..layerwalk import entries_from_tar

        try:
            yield from entries_from_tar(handle, seekable=True)
        except (TarFormatError, OSError) as exc:
            raise ImagefixError(f"{self.store.label}: layer {index} cannot be read ({exc})") from None


def open_docker_archive(target: str, reference: str) -> Image:
    """`docker-archive:PATH[:NAME:TAG]` or `docker-archive:PATH:@INDEX`."""
    path, wanted = split_path_and_suffix(target, parts=2)
    store = TarBlobStore(Path(path), f"docker-archive {path}")
    if not store.exists("manifest.json"):
        raise ImagefixError(f"{store.label}: no manifest.json: not a `docker save` archive")
    manifest = docker_archive_manifest(_json(store, "manifest.json", "manifest"),
                                       f"{store.label}: manifest.json")
    if not manifest:
        raise ImagefixError(f"{store.label}: manifest.json lists no images")
    entry = _pick_archive_entry(store, manifest, wanted)
    if not isinstance(entry, dict) or "Config" not in entry or "Layers" not in entry:
        raise ImagefixError(f"{store.label}: manifest.json entry lacks Config or Layers")
    config_bytes = store.read(entry["Config"], "config")
    blobs = [_Blob(p, _digest_from_path(p)) for p in entry["Layers"]]
    tags = entry.get("RepoTags") or []
    return _build_image(store, reference, "docker-archive", config_bytes, blobs,
                        name=wanted if wanted and not wanted.startswith("@") else (tags or [None])[0],
                        digest=None)


def _digest_from_path(path: str) -> str | None:
    parts = Path(path).parts
    if len(parts) >= 3 and parts[-3] == "blobs":
        return f"{parts[-2]}:{parts[-1]}"
    return None


def _pick_archive_entry(store: BlobStore, manifest: list[dict], wanted: str | None) -> dict:
    if wanted is None:
        if len(manifest) > 1:
            raise ImagefixError(
                f"{store.label}: holds {len(manifest)} images; name one as "
                "docker-archive:PATH:NAME:TAG or docker-archive:PATH:@INDEX"
            )
        return manifest[0]
    if wanted.startswith("@") and wanted[1:].isdigit():
        index = int(wanted[1:])
        if index >= len(manifest):
            raise ImagefixError(f"{store.label}: no image @{index} (it holds {len(manifest)})")
        return manifest[index]
    candidates = {wanted, f"docker.io/{wanted}", f"docker.io/library/{wanted}"}
    for entry in manifest:
        if candidates & set(entry.get("RepoTags") or []):
            return entry
    names = ", ".join(t for e in manifest for t in e.get("RepoTags") or []) or "no tags"
    raise ImagefixError(f"{store.label}: no image {wanted} (it holds {names})")


def _blob_path(descriptor: dict) -> str:
    algorithm, _, hexpart = checked_digest(descriptor.get("digest"), "OCI layout").partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _check_blob_digest(store: BlobStore, blob: _Blob, index: int) -> None:
    """A layer blob must be the bytes its manifest names (hashed in C, without the GIL)."""
    if blob.digest is None:
        return
    algorithm, _, expected = checked_digest(blob.digest, f"{store.label}: layer {index}").partition(":")
    with store.open(blob.path) as handle:
        actual = hashlib.file_digest(handle, algorithm).hexdigest()
    if actual != expected:
        raise ImagefixError(f"{store.label}: layer {index} blob {blob.path} does not match its digest "
                            f"{blob.digest[:19]}... (damaged or replaced)")


def _verified(store: BlobStore, descriptor: dict, what: str) -> bytes:
    path = _blob_path(descriptor)
    data = store.read(path, what)
    algorithm, _, expected = descriptor["digest"].partition(":")
    if algorithm == "sha256" and hashlib.sha256(data).hexdigest() != expected:
        raise ImagefixError(f"{store.label}: {what} {path} does not match its digest")
    return data


def _manifest(store: BlobStore, descriptor: dict, label: str) -> dict:
    where = f"{label}: manifest {descriptor['digest'][:19]}"
    return image_manifest(load_json(_verified(store, descriptor, "manifest"), where), where)


def open_oci_layout(target: str, reference: str, transport: str,
                    platform: str | None = None) -> Image:
    """`oci:DIR[:TAG]` or `oci-archive:TAR[:TAG]`."""
    path, tag = split_path_and_suffix(target, parts=1)
    label = f"{transport} {path}"
    store: BlobStore = (DirBlobStore(Path(path), label) if transport == "oci"
                        else TarBlobStore(Path(path), label))
    if not store.exists("oci-layout"):
        raise ImagefixError(f"{label}: no oci-layout file: not an OCI image layout")
    index = image_index(_json(store, "index.json", "index"), f"{label}: index.json")
    manifests = index.get("manifests") or []
    if tag:
        chosen = [d for d in manifests if (d.get("annotations") or {}).get(REF_NAME) == tag]
        if not chosen:
            tags = ", ".join(sorted({(d.get("annotations") or {}).get(REF_NAME, "?") for d in manifests}))
            raise ImagefixError(f"{label}: no image tagged {tag!r} (tags: {tags or 'none'})")
    else:
        chosen = manifests
    if not chosen:
        raise ImagefixError(f"{label}: index.json lists no images")
    if len(chosen) > 1:
        raise ImagefixError(f"{label}: holds {len(chosen)} images; name one as {transport}:PATH:TAG")
    descriptor = chosen[0]
    manifest = _manifest(store, descriptor, label)
    if descriptor.get("mediaType") in INDEX_TYPES or manifest.get("mediaType") in INDEX_TYPES:
        descriptor = pick_platform(manifest.get("manifests") or [], parse_platform(platform), label)
        manifest = _manifest(store, descriptor, label)
    config_descriptor = manifest.get("config")
    if not config_descriptor:
        raise ImagefixError(f"{label}: manifest {descriptor['digest']} has no config")
    config_bytes = _verified(store, config_descriptor, "config")
    blobs = [_Blob(_blob_path(d), d.get("digest")) for d in manifest.get("layers") or []]
    ref_name = (chosen[0].get("annotations") or {}).get(REF_NAME)
    return _build_image(store, reference, transport, config_bytes, blobs,
                        name=ref_name if isinstance(ref_name, str) else tag, digest=descriptor.get("digest"))
