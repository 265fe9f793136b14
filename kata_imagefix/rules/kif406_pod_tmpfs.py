from collections.abc import Iterator

from ..sizes import human_size
from .base import Target, rule
from .finding import Draft, Severity
from .kif202_image_budget import trusted_storage
from .pod_subject import PodSubject


@rule("KIF406", "pod-images-overflow-guest", Severity.ERROR, Target.POD,
      profiles={"kata": None, "generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: the pod's images together do not fit the guest's image tmpfs.

    Why: every image of the pod is pulled and unpacked inside the one guest,
    into a tmpfs of half its memory. TDX sizes the guest statically:
    default_memory (the annotation, the class's config, or --guest-memory)
    plus the containers' memory limits.

    Fix:   raise the containers' memory limits, the default_memory annotation
           (where the runtime class enables it) or default_memory in the config;
           or give the images trusted storage (a block volume at
           /dev/trusted_store, Kata's how-to-pull-images-in-guest-with-kata.md);
           or slim the images (imagefix fix --variant multistage).
    """
    read = [(v, v.image) for v in subject.containers if v.image is not None]
    views = [v for v, _ in read]
    distinct = {v.container.image: image.unpacked_size for v, image in read}
    total = sum(distinct.values())
    estimate = subject.model.estimate(total, size_estimated=any(image.size_estimated for _, image in read))
    if estimate.fits_memory or not views:
        return
    for view in views:
        yield subject.finding(
            f"the pod's {len(distinct)} image(s) unpack to {human_size(total)} ({estimate.size_said}) in one "
            "guest, but its room "
            f"for images is {human_size(estimate.room_bytes)} ({subject.model.guest_memory_mib} MiB guest, "
            f"{subject.memory_source}); {view.container.image} is part of it",
            f"give the guest {estimate.recommended_memory_mib} MiB: memory limits, or default_memory; "
            + trusted_storage(total, view.container.name),
            view, total_unpacked_bytes=total, room_bytes=estimate.room_bytes,
            size_estimated=estimate.size_estimated)
