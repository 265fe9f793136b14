"""One entry point: a reference with its transport in, `Image`s out (several for --all-platforms)."""

from __future__ import annotations

import os
from collections.abc import Callable

from msgspec.structs import replace

from ...errors import ImagefixError
from ...registry.options import RegistryOptions
from ..model import Image
from ..reference import ImageRef, parse_image_ref


def _daemon_may_exist() -> bool:
    """Skip importing the Docker SDK when no engine can be there (saves ~100 ms on registry scans)."""
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists("/var/run/docker.sock")


def open_images(text: str | ImageRef, *, platform: str | None = None,
                registry: RegistryOptions | None = None) -> list[Image]:
    ref = text if isinstance(text, ImageRef) else parse_image_ref(text)
    options = registry or RegistryOptions()
    if platform:
        options = replace(options, platform=platform)
    return OPENERS[ref.transport](ref, options)


def _docker_archive(ref: ImageRef, _options: RegistryOptions) -> list[Image]:
    from .archive import open_docker_archive

    return [open_docker_archive(ref.target, ref.original)]


def _oci(ref: ImageRef, options: RegistryOptions) -> list[Image]:
    from .archive import open_oci_layout

    return [open_oci_layout(ref.target, ref.original, ref.transport, options.platform)]


def _daemon(ref: ImageRef, _options: RegistryOptions) -> list[Image]:
    from .daemon import open_daemon_image

    return [open_daemon_image(ref.target, ref.original)]


def _bare(ref: ImageRef, options: RegistryOptions) -> list[Image]:
    """A bare reference: the local engine when it has the image, else the registry."""
    if not _daemon_may_exist():
        return _from_registry(ref, options)
    from .daemon import DaemonUnavailable, ImageNotInDaemon, open_daemon_image

    try:
        return [open_daemon_image(ref.target, ref.original, transport="docker-daemon")]
    except (ImageNotInDaemon, DaemonUnavailable) as exc:
        local = "not in the local Docker engine" if isinstance(exc, ImageNotInDaemon) \
            else "no local Docker engine answers"
        try:
            return _from_registry(ref, options)
        except ImagefixError as remote:
            raise ImagefixError(f"{ref.original}: {local}, and from the registry: {remote}") from None


def _from_registry(ref: ImageRef, options: RegistryOptions) -> list[Image]:
    from .remote import open_registry_images

    return open_registry_images(ref.target, ref.original, options)


# transport word -> opener: the one table (image.reference.TRANSPORTS says what each word is).
OPENERS: dict[str, Callable[[ImageRef, RegistryOptions], list[Image]]] = {
    "": _bare, "docker": _from_registry, "docker-daemon": _daemon, "docker-archive": _docker_archive,
    "oci": _oci, "oci-archive": _oci,
}


def open_image(text: str | ImageRef, *, platform: str | None = None,
               registry: RegistryOptions | None = None) -> Image:
    images = open_images(text, platform=platform, registry=registry)
    if len(images) != 1:  # pragma: no cover - only --all-platforms gives several
        raise ImagefixError(f"{text}: {len(images)} images where one was expected")
    return images[0]
