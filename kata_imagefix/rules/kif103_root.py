from collections.abc import Iterator

from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF103", "runs-as-root", Severity.INFO, Target.USER,
      profiles={"generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """Runs as root without a name: works on Kata; least privilege is then the pod's job.

    Why: uid 0 needs no lookup, so the container starts under guest pull. The
    guest VM is the isolation boundary, but inside it the workload is root;
    if it does not need that, set runAsUser/runAsGroup in the pod.

    Seen as: no USER, `USER ""`, `USER 0`, `USER 0:0`, `USER :185`.
    `USER root` is a *name* and therefore KIF101: write `USER 0:0`.

    Fix:   nothing is needed for Kata; for least privilege set runAsUser and
           runAsGroup in the pod's securityContext.
    """
    if subject.unknown is not None:
        return
    if not subject.spec.runs_as_root:
        return
    shown = f"USER {subject.label}" if subject.label or subject.line else "no USER"
    yield subject.finding(
        f"{subject.where} runs as root ({shown}): this works on Kata",
        "if the workload does not need root, set runAsUser/runAsGroup in the pod's securityContext",
        user=subject.spec.raw,
    )
