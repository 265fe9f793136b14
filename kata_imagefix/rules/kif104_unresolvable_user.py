from collections.abc import Iterator

from ..users import UserKind
from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF104", "unresolvable-user", Severity.ERROR, Target.USER,
      profiles={"generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """A named USER whose uid/gid cannot be found.

    Why: without a uid/gid there is no numeric fix to write, and even with a
    host that can read the image the lookup fails ("no users found"). The
    name is missing from the image's `/etc/passwd`/`/etc/group`, the image has
    no such files, or (for a Dockerfile) nothing in it fixes the ids: the
    tool picks them at build time (`useradd app`, `adduser -D app`, a
    same-name group whose gid is the uid only if that gid is free), or
    they are in a base that was not read (docs/dockerfile-accounts.md).

    Bad:   RUN useradd app          (uid picked at build time)
           USER app
    Good:  RUN useradd -u 10001 app
           USER 10001:10001
    When the user comes from the base image (FROM spark, most vendor images),
    a useradd would fail: read the ids from the base (`--resolve-base`, or
    `imagefix scan` of the base) and write them as USER uid:gid.
    """
    if subject.unknown is not None:
        return
    if subject.spec.kind is not UserKind.NAMED:
        return
    resolution = subject.resolve()
    if resolution.ok:
        return
    yield subject.finding(
        f"{subject.where} names user {subject.spec.raw!r} but its uid/gid cannot be found: "
        f"{resolution.problem}",
        resolution.hint or "create the user with a fixed id (useradd -u UID) and write USER UID:GID",
        user=subject.spec.raw,
        problem=resolution.problem,
    )
