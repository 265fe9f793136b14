from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF403", "pod-run-as-non-root-refused", Severity.ERROR, Target.POD, profiles={"generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: runAsNonRoot that the kubelet refuses (a named image user, or uid 0).

    Why: with `runAsNonRoot: true` the kubelet must prove the user is not
    root. A named image user without a numeric runAsUser cannot be verified
    ("image has non-numeric user ... cannot verify user is non-root"), and an
    effective uid 0 (no USER, `USER 0`, `USER :185`, `runAsUser: 0`) is refused.

    Fix:   a numeric runAsUser (and runAsGroup) that is not 0.
    """
    from ..users.identity import Security, kubelet_refusal, kubelet_user  # not on an image scan's path

    for view in subject.containers:
        if view.image is not None:
            identity = view.identity()
            refusal, named = identity.refusal, identity.sent.name is not None
        else:  # unreadable image: only a runAsUser of the pod's own can be judged
            security = Security.of(view.container.security, view.pod_security)
            if security.run_as_user is None:
                continue
            refusal, named = kubelet_refusal(security, kubelet_user(security, "")), False
        if refusal is None:
            continue
        fix = view.fix_text() if named else \
            "set a non-zero runAsUser, or drop runAsNonRoot if the workload needs root"
        yield subject.finding(
            f"container {view.container.name!r} sets runAsNonRoot, but {refusal}: the kubelet "
            "refuses to start it", fix, view, user=view.image_user.raw)
