from .base import rule
from .finding import Severity
from .pod_subject import PodSubject


@rule("KIF404", "pod-group-without-user", Severity.ERROR, "pod", profiles={"generic": None})
def check(subject: PodSubject):
    """Pod: runAsGroup without any runAsUser: containerd refuses the container.

    Why: containerd's CRI plugin builds the user string from runAsUser and
    runAsGroup (GenerateUserString); a group with no user is an error - "user
    group ... is specified without user" - whatever the image's USER.

    Fix:   add runAsUser next to runAsGroup (container or pod).
    """
    for view in subject.containers:
        if view.run_as_group is not None and view.run_as_user is None:
            yield subject.finding(
                "KIF404",
                f"container {view.container.name!r} has runAsGroup {view.run_as_group} but no runAsUser: "
                "containerd refuses it (user group specified without user)",
                "add runAsUser (the uid the image runs as) beside runAsGroup", view)
