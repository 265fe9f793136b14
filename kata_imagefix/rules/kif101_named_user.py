from collections.abc import Iterator

from ..users import UserKind
from .base import Target, UserSubject, rule
from .finding import Draft, Severity

GUEST_PULL_WHY = (
    "under guest pull (kata-qemu-tdx) the image is unpacked only inside the guest, so containerd "
    "on the host cannot read its /etc/passwd or /etc/group to turn the name into a uid/gid and "
    "creating the container fails"
)


@rule("KIF101", "named-user", Severity.ERROR, Target.USER,
      profiles={"kata": Severity.WARNING, "generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
    """Runs as a named user or group, which the host cannot resolve under guest pull.

    Why: containerd's WithUser looks up every non-numeric part of the user
    string (`USER spark`, `USER nobody`, `USER root`, `USER app:app`,
    `USER 185:spark`, `USER spark:`) on the host by reading `/etc/passwd` and
    `/etc/group` from the unpacked image. With guest pull the layers are only
    unpacked inside the confidential guest, the files are missing on the host
    and container creation fails (kata-containers #10297, #11162). `root` is a
    name too: write `0:0`.

    Bad:   USER spark          USER root
    Good:  USER 185:185        USER 0:0   (ids from the image's own /etc/passwd and /etc/group)
    On Kubernetes the pod must set runAsUser: 185 and runAsGroup: 185 as well
    (the kubelet drops the image's group; see KIF107).
    `USER ""` also works, but only because the container then runs as root.
    """
    if subject.unknown is not None:
        return
    if subject.spec.kind is not UserKind.NAMED:
        return
    names = " and ".join(f'"{n}"' for n in dict.fromkeys(subject.spec.names))
    resolution = subject.resolve()
    if resolution.ok:
        fix = (f"USER {resolution.numeric} (from {resolution.source}); on Kubernetes also set runAsUser: "
               f"{resolution.uid} and runAsGroup: {resolution.gid} in the pod's securityContext (KIF107)")
    else:
        fix = "use a numeric USER uid:gid (see KIF104: the uid/gid could not be found)"
    yield subject.finding(
        f"{subject.where} runs as named user {subject.spec.raw!r} ({names} must be looked up): "
        f"{GUEST_PULL_WHY}",
        fix,
        user=subject.spec.raw,
        uid=resolution.uid,
        gid=resolution.gid,
    )
