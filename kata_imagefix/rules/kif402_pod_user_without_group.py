from ..users import UserKind
from .base import rule
from .finding import Severity
from .pod_subject import PodSubject


@rule("KIF402", "pod-user-without-group", Severity.WARNING, "pod",
      profiles={"kata": Severity.INFO, "generic": None})
def check(subject: PodSubject):
    """Pod: a uid without a group whose primary group in the image is not 0: it runs with gid 0.

    Why: `runAsUser` without `runAsGroup` (or an image `USER 185`) makes
    containerd take the primary group from the image's /etc/passwd, which is
    not on the host under guest pull: the process gets gid 0 instead.

    Fix:   add runAsGroup with the gid the image's passwd gives the uid.
    """
    for view in subject.containers:
        if view.image is None or view.run_as_group is not None:
            continue
        uid = view.run_as_user
        if uid is None:
            spec = view.image_user
            if spec.kind is not UserKind.NUMERIC_NO_GROUP:
                continue
            uid = spec.uid
        gid = view.primary_gid(uid)
        if gid is None or gid == 0:
            continue
        yield subject.finding(
            "KIF402",
            f"container {view.container.name!r} runs as uid {uid} without a group; the image's passwd "
            f"gives it group {gid}, but under guest pull the process gets gid 0",
            f"set runAsGroup: {gid} in the securityContext of container {view.container.name!r}",
            view, uid=uid, gid=gid)
