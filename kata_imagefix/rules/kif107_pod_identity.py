from ..users import UserKind
from ..users.identity import pod_settings
from .base import UserSubject, rule
from .finding import Severity


@rule("KIF107", "pod-needs-explicit-identity", Severity.INFO, "user",
      profiles={"kata": None, "generic": None})
def check(subject: UserSubject):
    """An image whose USER alone does not give a Kubernetes process its identity under guest pull.

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
    if subject.read_file is None:
        return  # a Dockerfile: KIF101/KIF102's fixes say it where they write uid:gid
    text = pod_settings(subject.spec.raw, subject.read_file)  # the image's own /etc/passwd and /etc/group
    if text is None:
        return
    yield subject.finding(
        "KIF107", f"{subject.where}: {text}",
        "imagefix k8s pod IMAGE prints the pod; imagefix k8s fix writes it into manifests",
        user=subject.spec.raw)
