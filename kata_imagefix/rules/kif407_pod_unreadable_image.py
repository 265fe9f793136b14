from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF407", "pod-image-unreadable", Severity.ERROR, Target.POD, profiles={"generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: a container's image could not be read (not found, auth, network): nothing can be said of it.

    Why: the audit reads images the way a node pulls them (from the registry,
    without pulling). When that fails, the node's pull will likely fail too.

    Fix:   check the reference and the credentials (Docker's config.json,
           --username/--password-stdin), then run the audit again.
    """
    for view in subject.containers:
        if view.error is not None:
            yield subject.finding(f"container {view.container.name!r}: image "
                                  f"{view.container.image} could not be read: {view.error}",
                                  "check the reference and the registry credentials", view)
