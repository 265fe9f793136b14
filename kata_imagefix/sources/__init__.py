"""One entry point: a reference with its transport in, an `Image` out."""

from __future__ import annotations

from ..errors import ImagefixError
from ..model import Image
from ..reference import ImageRef, parse_image_ref


def open_image(text: str | ImageRef, *, platform: str | None = None) -> Image:
    ref = text if isinstance(text, ImageRef) else parse_image_ref(text)
    if ref.transport == "docker-archive":
        from .archive import open_docker_archive

        return open_docker_archive(ref.target, ref.original)
    if ref.transport in ("oci", "oci-archive"):
        from .archive import open_oci_layout

        return open_oci_layout(ref.target, ref.original, ref.transport, platform)
    if ref.transport == "docker-daemon":
        from .daemon import open_daemon_image

        return open_daemon_image(ref.target, ref.original)
    if ref.transport == "docker":
        raise ImagefixError(
            f"{ref.original}: scanning straight from a registry is not available yet; "
            "pull or load the image and scan docker-daemon:NAME, or scan a docker-archive:/oci: copy"
        )
    # A bare reference: the daemon when it has the image.
    from .daemon import ImageNotInDaemon, open_daemon_image

    try:
        return open_daemon_image(ref.target, ref.original, transport="docker-daemon")
    except ImageNotInDaemon:
        raise ImagefixError(
            f"{ref.original}: not in the local Docker engine, and scanning straight from a "
            "registry is not available yet; pull or load it first, or scan an archive"
        ) from None
