from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF401", "pod-named-user", Severity.ERROR, Target.POD,
      profiles={"kata": Severity.WARNING, "generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: containerd cannot create the container - its user reaches containerd as a name.

    Why: without runAsUser the kubelet asks containerd for the image's user and
    gets only the part of USER before the first ':' - a number becomes the uid,
    anything else (`spark`, `root`, `spark:`) a name that containerd must look up
    in the image's /etc/passwd on the host. Under guest pull nothing of the image
    is unpacked on the host: creating the container fails. The group part never
    reaches containerd, so `USER 1000:docker` is not a name here (it runs as
    1000 with the gid the pod gives it).

    Fix:   securityContext: {runAsUser: 185, runAsGroup: 185} on the container
           (ids from the image's own files; `imagefix k8s fix` writes them).
    """
    for view in subject.containers:
        if view.image is None:
            continue
        identity = view.identity()
        if identity.guest.failure is None:
            continue
        yield subject.finding(
            f"container {view.container.name!r} ({view.container.image}): "
            f"{identity.guest.failure}, so creating the container fails under guest pull"
            + ("" if identity.host.ids is None else
               f" (with the image on the host it would run as {identity.host.ids.show()})"),
            view.fix_text(), view, user=view.image_user.raw, sent=identity.sent.user_string)
