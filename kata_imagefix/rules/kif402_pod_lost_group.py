from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF402", "pod-lost-group", Severity.WARNING, Target.POD, profiles={"generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: the process will run with another group than the image means (gid 0, mostly).

    Why: the kubelet never passes the image's group (`USER 185:185` reaches
    containerd as `185`), and a uid without runAsGroup takes its primary group
    from the image's /etc/passwd - which the host does not have under guest pull,
    so the process gets gid 0. With the image on the host, a `USER uid:gid`
    whose gid is not the passwd's primary group is still changed.

    Fix:   runAsGroup (with runAsUser beside it) in the container's securityContext.
    """
    for view in subject.containers:
        if view.image is None:
            continue
        identity = view.identity()
        actual, target = identity.actual(subject.guest_pull).ids, identity.target.ids
        if actual is None or target is None or actual.gid == target.gid:
            continue
        pull = "under guest pull" if subject.guest_pull else "on Kubernetes"
        yield subject.finding(
            f"container {view.container.name!r} will run as {actual.uid}:{actual.gid} {pull}, not "
            f"{target.uid}:{target.gid} as the image means: without runAsGroup "
            + ("containerd cannot read the primary group from the image's /etc/passwd on the host"
               if subject.guest_pull else "the kubelet drops the image's group"),
            view.fix_text(), view, uid=actual.uid, gid=actual.gid, expected_gid=target.gid)
