from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF408", "pod-lost-supplementary-groups", Severity.WARNING, Target.POD, profiles={"generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: the image's supplementary groups are lost under guest pull.

    Why: containerd adds every group of the image's /etc/group that lists the
    user (root too: busybox puts root in `wheel`), reading the file on the host.
    Under guest pull the file is not there and the groups are dropped silently
    (kata-containers#11162); only the pod's fsGroup and supplementalGroups remain.

    Fix:   list the groups in the pod's supplementalGroups (from the image's /etc/group).
    """
    for view in subject.containers:
        if view.image is None:
            continue
        identity = view.identity()
        actual, target = identity.actual(subject.guest_pull).ids, identity.target.ids
        if actual is None or target is None:
            continue
        lost = sorted(target.groups - actual.groups)
        if not lost:
            continue
        yield subject.finding(
            f"container {view.container.name!r} loses the supplementary groups {lost} of the image's "
            f"/etc/group under guest pull: it runs as {actual.show()} instead of {target.show()}",
            view.fix_text(), view, lost_groups=lost)
