from ..users import UserKind
from .base import rule
from .finding import Severity
from .pod_subject import PodSubject


@rule("KIF403", "pod-run-as-non-root-refused", Severity.ERROR, "pod", profiles={"generic": None})
def check(subject: PodSubject):
    """Pod: runAsNonRoot that the kubelet refuses (a named image user, or uid 0).

    Why: with `runAsNonRoot: true` the kubelet must prove the user is not
    root. A named image user without a numeric runAsUser cannot be verified
    ("image has non-numeric user ... cannot verify user is non-root"), and an
    effective uid 0 (no USER, `USER 0`, `runAsUser: 0`) is refused outright.

    Fix:   a numeric runAsUser (and runAsGroup) that is not 0.
    """
    for view in subject.containers:
        if not view.run_as_non_root:
            continue
        uid = view.run_as_user
        if uid is None and view.image is not None:
            spec = view.image_user
            if spec.kind in (UserKind.NAMED, UserKind.INVALID):
                yield subject.finding(
                    "KIF403",
                    f"container {view.container.name!r} sets runAsNonRoot, but its image runs as the name "
                    f"{spec.raw!r} and no runAsUser is set: the kubelet cannot verify it and refuses the pod",
                    "set a numeric runAsUser (and runAsGroup) in the securityContext", view, user=spec.raw)
                continue
            uid = spec.uid if spec.runs_as_root or spec.uid is not None else None
        if uid == 0:
            yield subject.finding(
                "KIF403",
                f"container {view.container.name!r} sets runAsNonRoot but runs as uid 0: the kubelet refuses "
                "to run it", "set a non-zero runAsUser, or drop runAsNonRoot if the workload needs root",
                view, uid=0)
