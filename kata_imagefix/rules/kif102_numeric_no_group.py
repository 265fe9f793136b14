from ..model import Severity
from ..users import UserKind
from .base import UserSubject, rule


@rule("KIF102", "numeric-user-without-group", Severity.WARNING, "user")
def check(subject: UserSubject):
    """Numeric user without a group: under guest pull the process gets gid 0.

    Why: for `USER 185` containerd takes the primary group from the image's
    `/etc/passwd`. Under guest pull the host cannot read that file, so the
    process runs with gid 0 (the root group) - different from what the image
    author meant, and files owned by the intended group become unreadable.

    Bad:   USER 185
    Good:  USER 185:185
    """
    if subject.spec.kind is not UserKind.NUMERIC_NO_GROUP:
        return
    resolution = subject.resolve()
    gid = resolution.gid if resolution.gid is not None else "<gid>"
    source = f" (gid from {resolution.source})" if resolution.gid is not None else ""
    yield subject.finding(
        "KIF102",
        f"{subject.where} runs as uid {subject.spec.user} without a group: under guest pull the "
        "host cannot read /etc/passwd for the primary group, so the process gets gid 0",
        f"USER {subject.spec.user}:{gid}{source}",
        user=subject.spec.raw,
        uid=int(subject.spec.user),
        gid=resolution.gid,
    )
