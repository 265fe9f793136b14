from collections.abc import Iterator

from ..users import WHY_EXPLICIT, UserKind
from .base import Target, UserSubject, rule
from .finding import Draft, Severity


@rule("KIF107", "pod-needs-explicit-identity", Severity.INFO, Target.USER,
      profiles={"kata": None, "generic": None})
def check(subject: UserSubject) -> Iterator[Draft]:
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
    spec = subject.spec
    if subject.unknown is not None or subject.read_file is None:
        return  # a Dockerfile: KIF101/KIF102's fixes say it where they write uid:gid
    if spec.kind in (UserKind.NAMED, UserKind.NUMERIC_NO_GROUP):
        # the user's files are read for KIF101/KIF102 anyway (/etc/group in the same pass): the whole identity
        from ..users.identity import pod_settings  # not imported for the numeric and root cases

        text = pod_settings(spec.raw, subject.read_file)
    elif spec.kind is UserKind.NUMERIC and not spec.runs_as_root:
        # uid:gid needs no file: say what the string gives without reading layers for the groups
        ids = f"runAsUser: {spec.uid}" + (f", runAsGroup: {spec.gid}" if spec.gid else "")
        text = (f"on Kubernetes under guest pull the pod must also set {ids} in the container's "
                f"securityContext, and list the groups /etc/group gives the user in supplementalGroups "
                f"({WHY_EXPLICIT}; `imagefix k8s pod IMAGE` reads them)")
    else:
        return  # root (its groups, if any, are for `k8s check` to read), or a USER containerd refuses
    if text is None:
        return
    yield subject.finding(
        f"{subject.where}: {text}",
        "imagefix k8s pod IMAGE prints the pod; imagefix k8s fix writes it into manifests",
        user=spec.raw)
