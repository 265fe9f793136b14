from ..users import UserKind
from .base import rule
from .finding import Severity
from .pod_subject import PodSubject


@rule("KIF401", "pod-named-user", Severity.ERROR, "pod",
      profiles={"kata": Severity.WARNING, "generic": None})
def check(subject: PodSubject):
    """Pod: a container's user reaches containerd as a name (image USER named, no runAsUser).

    Why: with no runAsUser in the container's or the pod's securityContext,
    containerd's CRI plugin takes the image's USER; a name (`spark`, `root`,
    `app:app`) is looked up in the image's /etc/passwd on the host, which
    guest pull never unpacks there: creating the container fails.

    Fix:   securityContext: {runAsUser: 185, runAsGroup: 185} on the container
           (ids from the image's own files; `imagefix k8s pod IMAGE` prints them).
    """
    for view in subject.containers:
        if view.image is None or view.run_as_user is not None:
            continue
        spec = view.image_user
        if spec.kind not in (UserKind.NAMED, UserKind.INVALID):
            continue
        resolution = view.image_resolution()
        fix = (f"set runAsUser: {resolution.uid} and runAsGroup: {resolution.gid} in the securityContext "
               f"of container {view.container.name!r}" if resolution.ok else
               f"the image's ids cannot be found ({resolution.problem}): rebuild it with a numeric USER "
               "(imagefix fix)")
        yield subject.finding(
            "KIF401",
            f"container {view.container.name!r} ({view.container.image}) runs as the image's named user "
            f"{spec.raw!r} and sets no runAsUser: under guest pull containerd cannot look the name up on "
            "the host and creating the container fails",
            fix, view, user=spec.raw, uid=resolution.uid, gid=resolution.gid)
