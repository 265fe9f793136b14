from collections.abc import Iterator

from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF106", "user-not-known-here", Severity.INFO, Target.USER,
      profiles={"generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """The USER is built from variables the Dockerfile gives no value: the user is not known here.

    Why: `USER ${NB_UID}` (the Jupyter images) takes NB_UID from the base
    image's ENV, which a Dockerfile alone does not show. So does a chain
    through such a variable (`ARG cu=$USER`, `ENV RUNAS=${APPUSER}` and then
    `USER $RUNAS`): the build expands it over the base's ENV, and a base that
    sets USER=app makes the container run as "app", not as root. A global
    `ARG` (before FROM) that the stage does not declare again has no value
    in the stage either. Whether the container runs as a name, a number or
    root is decided there, so nothing can be said until the base is read.

    Fix: `imagefix lint --resolve-base` expands the USER with the base image's
    ENV and checks it; for a variable declared with `ARG`, give
    `--build-arg NAME=VALUE` as the build does.
    """
    if subject.unknown is None:
        return
    yield subject.finding(f"{subject.where}: {subject.unknown}",
                          "run imagefix lint --resolve-base (or give the build args the build uses)",
                          user=subject.label)
