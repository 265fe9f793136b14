from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF409", "pod-genpolicy-refuses", Severity.WARNING, Target.POD,
      profiles={"kata": None, "generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: Kata's genpolicy refuses the pod, or its policy denies the container.

    Why: with guest pull, genpolicy (Kata's policy generator for confidential
    pods) reads the image's /etc/passwd and /etc/group and stops unless every id
    it derives from them is written in the pod: a non-zero uid as runAsUser, a
    non-zero gid as runAsGroup, every supplementary group in supplementalGroups
    or fsGroup. The policy then compares uid, gid and the group set exactly with
    what containerd sends; where they differ CreateContainer is denied
    (e.g. a container-level runAsUser makes genpolicy read the gid from passwd
    again while containerd uses the pod's runAsGroup).

    Fix:   the explicit securityContext genpolicy names (`imagefix k8s fix` writes it).
    """
    for view in subject.containers:
        if view.image is None:
            continue
        identity = view.identity()
        if identity.guest.failure is not None:
            continue  # KIF401: containerd fails first; its fix is the same explicit identity
        policy = identity.policy
        expects = (f"UID={policy.uid}, GID={policy.gid}, AdditionalGids="
                   f"{{{', '.join(map(str, sorted(policy.additional)))}}}")
        if policy.refuses:
            yield subject.finding(
                f"container {view.container.name!r}: genpolicy refuses the pod under guest pull - it expects "
                f"{expects} and needs {policy.demands()} written in the pod",
                view.fix_text(), view, uid=policy.uid, gid=policy.gid, groups=sorted(policy.additional))
        elif identity.policy_denies and identity.guest.ids is not None:
            sent = identity.guest.ids
            yield subject.finding(
                f"container {view.container.name!r}: the policy genpolicy writes expects {expects}, but "
                f"containerd will send {sent.uid}:{sent.gid} with groups "
                f"{sorted(sent.groups | {sent.gid})}: the agent denies CreateContainer",
                view.fix_text(), view, uid=policy.uid, gid=policy.gid, groups=sorted(policy.additional))
