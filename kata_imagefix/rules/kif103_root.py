from ..model import Severity
from ..users import UserKind
from .base import UserSubject, rule


@rule("KIF103", "runs-as-root", Severity.INFO, "user")
def check(subject: UserSubject):
    """Runs as root: works on Kata; least privilege is then the pod's job.

    Why: root needs no lookup, so the container starts under guest pull. The
    guest VM is the isolation boundary, but inside it the workload is root;
    if it does not need that, set runAsUser/runAsGroup in the pod.

    Seen as: no USER, `USER root`, `USER 0`, `USER 0:0`, `USER ""`.
    `USER root` is still a *name*: containerd's WithUser resolves any
    non-numeric user through the image's /etc/passwd, so write `USER 0:0`.
    """
    if subject.spec.kind is not UserKind.ROOT:
        return
    shown = f"USER {subject.spec.raw}" if subject.spec.raw else "no USER (root)"
    if subject.spec.names:
        yield subject.finding(
            "KIF103",
            f"{subject.where} runs as root by name ({shown}): containerd still resolves the name "
            "through the image's /etc/passwd, which under guest pull is not on the host",
            "write USER 0:0 (the same user, numeric); if the workload does not need root, set "
            "runAsUser/runAsGroup in the pod's securityContext",
            user=subject.spec.raw,
        )
        return
    yield subject.finding(
        "KIF103",
        f"{subject.where} runs as root ({shown}): this works on Kata",
        "if the workload does not need root, set runAsUser/runAsGroup in the pod's securityContext",
        user=subject.spec.raw,
    )
