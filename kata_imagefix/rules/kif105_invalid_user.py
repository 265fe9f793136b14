from collections.abc import Iterator

from ..users import MAX_ID, UserKind
from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF105", "invalid-user-string", Severity.ERROR, Target.USER,
      profiles={"generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """A USER string containerd refuses, or that silently becomes another user.

    Why: containerd's WithUser takes `user[:group]`, each part a name or a
    number Go's strconv.Atoi reads (ASCII digits, one optional sign). Current
    containerd refuses ids outside 0..2147483647 and strings with more than
    one ':'; older releases cast the number to 32 bits, so `USER -1` ran as
    4294967295 and `USER 4294967296` as 0 - root.

    Bad:   USER -1        USER 4294967296        USER app:app:extra
    Good:  USER 65534:65534
    """
    if subject.unknown is not None:
        return
    if subject.spec.kind is not UserKind.INVALID:
        return
    yield subject.finding(
        f"{subject.where} has USER {subject.spec.raw!r}, which containerd cannot use as written: "
        f"{subject.spec.problem}",
        f"write USER uid:gid with ids in 0..{MAX_ID}",
        user=subject.spec.raw,
    )
