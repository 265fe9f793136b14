from collections.abc import Iterator

from ..users import UserKind
from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF102", "numeric-user-without-group", Severity.WARNING, Target.USER,
      profiles={"kata": Severity.INFO, "generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """Numeric user without a group whose primary group is not 0: under guest pull it becomes gid 0.

    Why: for `USER 185` containerd takes the primary group from the image's
    `/etc/passwd`. Under guest pull the host cannot read that file, so the
    process runs with gid 0 (the root group) instead of the group the image's
    passwd gives the uid, and files owned by that group become unreadable.
    When the uid has no passwd entry, or its primary group is 0, the process
    gets gid 0 with or without guest pull: nothing differs, nothing is said.
    When the primary group cannot be known (a Dockerfile whose base image
    was not checked), this is an info asking for `--resolve-base`.

    Bad:   USER 185            (spark: passwd says 185:185)
    Good:  USER 185:185
    """
    if subject.unknown is not None:
        return
    if subject.spec.kind is not UserKind.NUMERIC_NO_GROUP:
        return
    resolution = subject.resolve()
    uid = subject.spec.uid
    if resolution.gid is None:
        yield subject.finding(
            f"{subject.where} runs as uid {uid} without a group, and its primary group is not known "
            f"here ({resolution.problem}): under guest pull the process gets gid 0, which differs only "
            "if the image's /etc/passwd gives the uid another group",
            f"write USER {uid}:<gid>, or check the base image with --resolve-base",
            severity=Severity.INFO, user=subject.spec.raw, uid=uid, gid=None,
        )
        return
    if not resolution.gid_from_passwd or resolution.gid == 0:
        return
    yield subject.finding(
        f"{subject.where} runs as uid {uid} without a group: {resolution.source} gives it primary "
        f"group {resolution.gid}, but under guest pull the host cannot read /etc/passwd, so the "
        "process gets gid 0",
        f"USER {uid}:{resolution.gid} (gid from {resolution.source}); on Kubernetes also set runAsUser: "
        f"{uid} and runAsGroup: {resolution.gid} in the pod's securityContext (the kubelet drops the group)",
        user=subject.spec.raw, uid=uid, gid=resolution.gid,
    )
