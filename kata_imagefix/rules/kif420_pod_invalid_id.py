from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject

# The API server's range for uids and gids: apimachinery's IsValidUserID / IsValidGroupID
# (0 ... math.MaxInt32).
MAX_ID = 2**31 - 1
CONTAINER_KEYS = ("runAsUser", "runAsGroup")


def _invalid(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, int):
        return True
    return not 0 <= value <= MAX_ID


@rule("KIF420", "pod-invalid-id", Severity.ERROR, Target.POD)
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: a uid or gid the API server rejects (below 0, above 2147483647, or not a whole number).

    Why: Kubernetes validates runAsUser, runAsGroup, fsGroup and
    supplementalGroups as 0 ... 2^31-1 (apimachinery's IsValidUserID and
    IsValidGroupID); `runAsUser: -1` or `4294967296` (a Unix "nobody" written
    as -1, a uid past 32 bits) never reaches a node: `kubectl apply` fails.

    Example: securityContext: {runAsUser: -1}
    Fix:     a uid/gid from the image's /etc/passwd (delete the value: `imagefix k8s fix` writes the image's;
             it never replaces one you wrote), or 65534 for nobody.
    """
    pod = subject.workload.security
    for view in subject.containers:
        for key in CONTAINER_KEYS:
            own = view.container.security.get(key)
            value, where = (own, "") if own is not None else (pod.get(key), " (the pod's)")
            if _invalid(value):
                yield subject.finding(f"container {view.container.name!r} has {key} {value!r}"
                                      f"{where}: the API server accepts 0 to {MAX_ID}",
                                      "use a uid/gid in range (the image's own)", view, key=key, value=value)
    first = subject.containers[0] if subject.containers else None
    groups = pod.get("supplementalGroups")
    values = [("fsGroup", pod.get("fsGroup"))] + \
        [("supplementalGroups", g) for g in (groups if isinstance(groups, list) else [])]
    for key, value in values:
        if _invalid(value):
            yield subject.finding(f"the pod's securityContext.{key} holds {value!r}: the API "
                                  f"server accepts 0 to {MAX_ID}", "use a gid in range", first, key=key,
                                  value=value)
