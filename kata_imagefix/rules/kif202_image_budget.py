import math
from collections.abc import Iterator

from ..sizes import human_size
from .base import ImageSubject, Target, rule
from .finding import Draft, Severity

TRUSTED_STORE = "/dev/trusted_store"
HOW_TO = ("https://github.com/kata-containers/kata-containers/blob/main/docs/how-to/"
          "how-to-pull-images-in-guest-with-kata.md")


def trusted_storage(unpacked_bytes: int, container: str = "app") -> str:
    """Kata's documented remedy for an image larger than the guest's tmpfs: a block volume the guest
    encrypts (dm-crypt/dm-integrity) and mounts for the image layers. The claim's size: the unpacked
    image with half again for the layers being unpacked beside it, in whole GiB."""
    gib = max(1, math.ceil(unpacked_bytes * 1.5 / 2**30))
    return (f"or give the image trusted storage: a block PersistentVolumeClaim (volumeMode: Block, "
            f"storage: {gib}Gi, here trusted-pvc) and in the pod spec `volumes: [{{name: "
            f"trusted-image-storage, persistentVolumeClaim: {{claimName: trusted-pvc}}}}]`, in container "
            f"{container} `volumeDevices: [{{devicePath: {TRUSTED_STORE}, name: trusted-image-storage}}]` "
            f"- the guest pulls the layers onto it instead of the tmpfs ({HOW_TO})")


@rule("KIF202", "image-over-guest-budget", Severity.ERROR, Target.IMAGE,
      profiles={"kata": None})
def check(subject: ImageSubject) -> Iterator[Draft]:
    """Unpacked image size is above the guest's image budget.

    Why: with guest pull the layers are unpacked under
    `/run/kata-containers/image`, a tmpfs of 50% of guest RAM (TDX default
    `default_memory` = 2048 MiB, so about 1 GiB), and the workload needs
    memory beside it (the reserve). A bigger image does not fit and the pull
    fails inside the guest.

    Fix: slim the image, or give the guest more memory: the pod annotation
    `io.katacontainers.config.hypervisor.default_memory` (MiB) or pod memory
    limits (TDX sizes the guest statically as default_memory + limits), or
    `default_memory` in the Kata config (`imagefix kata patch`). Or Kata's
    documented remedy for large images: trusted image storage, a block
    volume (`volumeDevices`, `devicePath: /dev/trusted_store`) that the guest
    encrypts and unpacks the layers onto.
    """
    budget = subject.budget
    if budget.fits_memory:
        return
    model = budget.model
    yield subject.finding(
        f"unpacked size {human_size(budget.unpacked_bytes)} ({budget.size_said}) is above the guest's room "
        f"for images, {human_size(budget.room_bytes)} (tmpfs = {model.tmpfs_fraction:.0%} of "
        f"{model.guest_memory_mib} MiB guest memory, {model.memory_reserve_mib} MiB kept for the "
        "workload)",
        f"give the guest {budget.recommended_memory_mib} MiB: pod annotation "
        f'io.katacontainers.config.hypervisor.default_memory: "{budget.recommended_memory_mib}" '
        "(or raise the pod's memory limits), or slim the image; "
        + trusted_storage(budget.unpacked_bytes),
        unpacked_bytes=budget.unpacked_bytes, size_estimated=budget.size_estimated,
        room_bytes=budget.room_bytes,
        recommended_guest_memory_mib=budget.recommended_memory_mib,
    )
