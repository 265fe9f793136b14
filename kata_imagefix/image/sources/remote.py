"""Images straight from a registry, without pulling: manifest, config, and only the layers a check needs.

Unpacked sizes come from each layer blob's own last bytes (gzip's ISIZE) or
first bytes (zstd's content size), one small range request per layer, all at
once (layersize.py says when they are trusted); where neither can be
had, from compressed sizes times COMPRESSION_RATIO, marked estimated.
`--exact` streams each layer through the decompressor and counts (nothing is
written to disk), checking the trailer against the count. Named users are
resolved by streaming layers from the top down until one settles /etc/passwd
(and /etc/group, in the same pass); what each fully read layer said is cached
by digest (layercache).
"""

from __future__ import annotations

from typing import BinaryIO, cast

from ...errors import ImagefixError
from ...registry.client import INDEX_TYPES, RegistryClient
from ...registry.errors import NotFound
from ...registry.options import RegistryOptions
from ...registry.tls import api_host
from ..documents import image_config, image_manifest, load_json
from ..model import Image, Layer, SymlinkTo, layer_history, platform_of
from ..platforms import describe, parse_platform, pick_platform, runnable
from ..progress import notice
from ..reference import DockerReference, parse_docker_reference

# Unpacked / gzip-compressed size of typical image layers (e.g. mysql:8.4 ~3.5x, python:3.12-slim
# ~2.9x); a conservative 3.0 errs towards "too big", which is the safe side for a budget.
COMPRESSION_RATIO = 3.0
ACCOUNT_FILES = ("/etc/passwd", "/etc/group")


def transfer_limits(options: RegistryOptions):
    from ...registry.streams import TransferLimits

    return TransferLimits(stall_seconds=options.stall_seconds, deadline_seconds=options.deadline_seconds)


def registry_client(domain: str, options: RegistryOptions) -> RegistryClient:
    """A client for the registry of `domain`, in the run's session for the options' per-host trust."""
    from ...registry.session import session_for

    return RegistryClient(api_host(domain), insecure=options.insecure, credentials=options.credentials,
                          timeout=options.timeout, limits=transfer_limits(options),
                          session=session_for(options.tls))


def read_manifest(client: RegistryClient, repository: str, reference: str) -> tuple[dict, str, bytes]:
    """(manifest or index, digest, raw bytes): the registry's bytes (digest checked), their shapes
    checked here."""
    fetched = client.manifest_bytes(repository, reference)
    where = f"{client.host}/{repository}: manifest {reference}"
    return image_manifest(load_json(fetched.raw, where), where), fetched.digest, fetched.raw


def open_registry_images(target: str, reference: str, options: RegistryOptions) -> list[Image]:
    ref = parse_docker_reference(target)
    client = registry_client(ref.domain, options)
    try:
        return _open(client, ref, reference, options)
    finally:
        client.release()  # the image reads its layers later, if at all: on a connection from the pool


def _open(client: RegistryClient, ref: DockerReference, reference: str,
          options: RegistryOptions) -> list[Image]:
    repository = ref.path
    try:
        manifest, digest, _ = read_manifest(client, repository, ref.digest or ref.tag or "latest")
    except NotFound as exc:
        raise ImagefixError(f"{reference}: {exc}") from None
    label = f"{reference}"
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        entries = runnable(manifest.get("manifests") or [])
        if options.all_platforms and len(entries) > options.max_platforms:
            notice(f"{reference} lists {len(entries)} platforms; scanning the first "
                   f"{options.max_platforms} (--max-platforms)")
            entries = entries[:options.max_platforms]
        chosen = entries if options.all_platforms else [
            pick_platform(entries, parse_platform(options.platform), label)]
        images = []
        for descriptor in chosen:
            child, child_digest, _ = read_manifest(client, repository, descriptor["digest"])
            shown = f"{reference} [{describe(descriptor)}]" if options.all_platforms else reference
            images.append(registry_image(client, repository, child, child_digest, shown, ref.familiar,
                                         options))
        return images
    return [registry_image(client, repository, manifest, digest, reference, ref.familiar, options)]


def registry_image(client: RegistryClient, repository: str, manifest: dict, digest: str, reference: str,
           name: str, options: RegistryOptions) -> Image:
    config_descriptor = manifest.get("config") or {}
    if not config_descriptor.get("digest"):
        raise ImagefixError(f"{reference}: manifest {digest} has no config (schema 1 is not supported)")
    from .layersize import claims_alongside

    descriptors = manifest.get("layers") or []
    raw_config, told = claims_alongside(
        client, repository, descriptors,
        lambda: client.blob(repository, config_descriptor["digest"], size=config_descriptor.get("size")))
    config = image_config(load_json(raw_config, f"{reference}: the image config", keep_pairs=True),
                          f"{reference}: the image config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    history = layer_history(config, len(descriptors))
    layers = []
    for index, descriptor in enumerate(descriptors):
        compressed = int(descriptor.get("size") or 0)
        layers.append(Layer(
            index=index, diff_id=diff_ids[index] if index < len(diff_ids) else None,
            digest=descriptor.get("digest"), size=int(compressed * COMPRESSION_RATIO),
            compressed_size=compressed, created_by=history[index], size_estimated=True,
            size_note="no size in the blob could be read",
        ))
    for layer, claim in zip(layers, told, strict=True):
        if claim.size is not None:
            layer.size = layer.tar_size = claim.size
            layer.size_basis, layer.size_estimated, layer.size_note = "tar", False, ""
            if claim.files is not None:  # a small blob read whole: counted as `docker history` counts
                layer.size, layer.size_basis = claim.files, "files"
        else:
            layer.size_note = claim.why
    if options.exact:
        _count_exactly(client, repository, layers, reference, told)
    return Image(reference=reference, transport="docker", config=config, layers=layers,
                 platform=platform_of(config), name=name, digest=digest,
                 image_id=config_descriptor["digest"], transfer=client.stats,
                 contents=RegistryLayers(client, repository, layers, reference, told))


class RegistryLayers:
    """A registry image's files, read from the top layer down only until they are settled (passwd and
    group in one pass, remembered by layer digest); its entries by streaming every layer."""

    def __init__(self, client: RegistryClient, repository: str, layers: list[Layer], reference: str,
                 told: list | None = None) -> None:
        self.client, self.repository, self.layers, self.reference = client, repository, layers, reference
        self.found: dict[str, bytes | SymlinkTo | None] = {}
        self.told = told or [None] * len(layers)

    def _opener(self, layer: Layer):
        from .layersize import TrailerCheck

        claim = self.told[layer.index] if layer.index < len(self.told) else None
        def plain():
            return self.client.open_blob(self.repository, layer.digest, layer.compressed_size)

        if claim is None or not claim.trailer or layer.size_basis != "tar" or layer.size_estimated:
            return plain
        # a layer streamed anyway ends with the trailer its size was read from: both must agree
        return lambda: TrailerCheck(plain(), claim.claimed, lambda: self._trailer_lied(layer))

    def _trailer_lied(self, layer: Layer) -> None:
        layer.size = int((layer.compressed_size or 0) * COMPRESSION_RATIO)
        layer.size_estimated, layer.tar_size = True, None
        layer.size_note = "the bytes the registry served as the blob's end differ from the blob's real end"
        notice(f"{self.reference}: layer {layer.index}: {layer.size_note}; its size is estimated again "
               "(--exact counts)")

    def read_file(self, path: str):
        if path not in self.found:
            from ..layercache import default_cache
            from ..layerfs import find_files
            from ..tarstream import TarFormatError

            # the account files travel together: one pass over the layers answers both
            wanted = [path, *(p for p in ACCOUNT_FILES if p != path and p not in self.found)] \
                if path in ACCOUNT_FILES else [path]
            top_down = [layer for layer in reversed(self.layers) if layer.digest]
            try:
                self.found.update(find_files(wanted, [self._opener(layer) for layer in top_down],
                                             keys=[layer.digest for layer in top_down],
                                             cache=default_cache()))
            except TarFormatError as exc:
                raise ImagefixError(f"{self.reference}: cannot read {path} from its layers ({exc})") from None
            finally:
                self.client.release()
        return self.found[path]

    def layer_entries(self, _how: str):
        """Each layer's entries as it streams (nothing kept): consumed one layer after the other."""
        return self._layers(), "registry"

    def _layers(self):
        from ..progress import CountingReader, byte_progress

        total = sum(layer.compressed_size or 0 for layer in self.layers)
        with byte_progress(f"reading {self.reference}", total) as advance:
            for layer in self.layers:
                with self._opener(layer)() as stream:
                    yield self._entries(CountingReader(stream, advance), layer.index)
        self.client.release()

    def _entries(self, stream, index: int):
        from ..layerwalk import entries_from_tar
        from ..tarstream import TarFormatError

        try:
            yield from entries_from_tar(stream)
        except TarFormatError as exc:
            raise ImagefixError(f"{self.reference}: layer {index}: {exc}") from None


def _count_exactly(client: RegistryClient, repository: str, layers: list[Layer], reference: str,
                   told: list) -> None:
    """Stream every layer: file bytes as `docker history` counts them, and the whole unpacked length,
    which a trailer that was trusted must equal (else the registry's range answer lied: a notice)."""
    from ..layerfs import tar_unpacked_size
    from ..progress import CountingReader, byte_progress
    from ..tarstream import TarFormatError
    from .layersize import UnpackCounter

    total = sum(layer.compressed_size or 0 for layer in layers)
    with byte_progress(f"unpacking {reference}", total) as advance:
        for layer, claim in zip(layers, told, strict=True):
            if not layer.digest:
                continue
            with client.open_blob(repository, layer.digest, layer.compressed_size) as stream:
                counter = UnpackCounter(CountingReader(stream, advance))
                try:
                    layer.size = tar_unpacked_size(cast(BinaryIO, counter))  # read() is all it uses
                    layer.tar_size = counter.drain()
                except (TarFormatError, ValueError, OSError) as exc:
                    raise ImagefixError(f"{reference}: layer {layer.index} ({layer.digest}): {exc}") from None
                except Exception as exc:  # zlib / zstd errors: a corrupt stream, not a crash
                    raise ImagefixError(f"{reference}: layer {layer.index} ({layer.digest}): corrupt "
                                        f"compressed data ({exc})") from None
            layer.size_estimated, layer.size_basis, layer.size_note = False, "files", ""
            if claim.size is not None and claim.size != layer.tar_size:
                notice(f"{reference}: layer {layer.index} unpacks to {layer.tar_size} bytes, but the bytes "
                       f"the registry served as its end said {claim.size}: the count is used")
