from ..sizes import human_size
from .base import rule
from .finding import Severity
from .kif202_image_budget import trusted_storage
from .pod_subject import PodSubject


@rule("KIF406", "pod-images-overflow-guest", Severity.ERROR, "pod", profiles={"kata": None, "generic": None})
def check(subject: PodSubject):
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
    views = [v for v in subject.containers if v.image is not None]
    distinct = {v.container.image: v.image.unpacked_size for v in views}
    total = sum(distinct.values())
    estimate = subject.model.estimate(total)
    if estimate.fits_memory or not views:
        return
    for view in views:
        yield subject.finding(
            "KIF406",
            f"the pod's {len(distinct)} image(s) unpack to {human_size(total)} in one guest, but its room "
            f"for images is {human_size(estimate.room_bytes)} ({subject.model.guest_memory_mib} MiB guest, "
            f"{subject.memory_source}); {view.container.image} is part of it",
            f"give the guest {estimate.recommended_memory_mib} MiB: memory limits, or default_memory; "
            + trusted_storage(total, view.container.name),
            view, total_unpacked_bytes=total, room_bytes=estimate.room_bytes)
