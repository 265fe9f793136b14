from ..users import UserKind
from ..users.identity import WHY_EXPLICIT, pod_settings
from .base import UserSubject, rule
from .finding import Severity


@rule("KIF107", "pod-needs-explicit-identity", Severity.INFO, "user",
      profiles={"kata": None, "generic": None})
def check(subject: UserSubject):
    """On Kubernetes under guest pull, the image's USER alone does not give the process its identity.

    Why: a pod never hands containerd the image's USER string. The kubelet
    sends only its user part (`USER 185:185` arrives as `185`), containerd then
    takes the gid from /etc/passwd and the supplementary groups from /etc/group
    on the host - files guest pull never unpacks there, so the process runs as
    185:0 without its groups - and Kata's genpolicy refuses a pod whose uid, gid
    or groups are only implied by the image. A numeric USER is still the right
    image fix (Docker, host-pull runtime classes); the pod must say the rest.

    Fix:   securityContext: {runAsUser: 185, runAsGroup: 185} on the container and
           supplementalGroups for the groups /etc/group lists the user in
           (`imagefix k8s pod IMAGE` prints them, `imagefix k8s fix` writes them).
    """
    if subject.unknown is not None or subject.spec.kind is UserKind.INVALID:
        return
    if subject.read_file is not None:  # an image: its own /etc/passwd and /etc/group
        text = pod_settings(subject.spec.raw, subject.read_file)
        if text is None:
            return
        yield subject.finding(
            "KIF107", f"{subject.where}: {text}",
            "imagefix k8s pod IMAGE prints the pod; imagefix k8s fix writes it into manifests",
            user=subject.spec.raw)
        return
    resolution = subject.resolve()  # a Dockerfile: the ids it gives; its groups are the built image's
    if not resolution.ok or (resolution.uid, resolution.gid) == (0, 0):
        return
    yield subject.finding(
        "KIF107",
        f"{subject.where}: on Kubernetes under guest pull the pod must also set runAsUser: {resolution.uid}, "
        f"runAsGroup: {resolution.gid} ({WHY_EXPLICIT}), and list the user's /etc/group groups in "
        "supplementalGroups",
        "after the build, imagefix k8s pod IMAGE prints the whole securityContext", user=subject.spec.raw,
        uid=resolution.uid, gid=resolution.gid)
