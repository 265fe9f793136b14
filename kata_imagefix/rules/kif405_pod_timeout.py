from ..kata.config import TIMEOUT_KEY
from ..sizes import human_size
from .base import rule
from .finding import Severity
from .pod_subject import PodSubject

ANNOTATION = "io.katacontainers.config.runtime.create_container_timeout"


@rule("KIF405", "pod-timeout-too-low", Severity.WARNING, "pod", profiles={"kata": None, "generic": None})
def check(subject: PodSubject):
    """Pod: the create-container timeout in force is below what its largest image needs.

    Why: the same budget model as KIF203, with the value in force for the
    pod: its annotation, else the runtime class's Kata config
    (--kata-config), else --create-timeout. Above the kubelet's
    runtimeRequestTimeout the kubelet gives up first.

    Fix:   the annotation io.katacontainers.config.runtime.create_container_timeout
           on the pod template (imagefix k8s pod IMAGE prints it), or the class's config.
    """
    views = [v for v in subject.containers if v.image is not None]
    if not views:
        return
    largest = max(views, key=lambda v: v.image.unpacked_size)
    estimate = subject.model.estimate(largest.image.unpacked_size,
                                      size_estimated=largest.image.size_estimated)
    if estimate.fits_create_timeout:
        return
    seconds = estimate.recommended_timeout_seconds
    kubelet = ""
    if seconds > subject.model.kubelet_timeout_s:
        kubelet = (f"; {seconds} s is above the kubelet's runtimeRequestTimeout "
                   f"({subject.model.kubelet_timeout_s} s by default): raise that too")
    yield subject.finding(
        "KIF405",
        f"{TIMEOUT_KEY} for this pod is {subject.model.create_timeout_s} s ({subject.timeout_source}), but "
        f"guest pull + unpack of {largest.container.image} ({human_size(largest.image.unpacked_size)}, "
        f"{estimate.size_said}) "
        f"needs ~{estimate.needed_timeout_seconds:.0f} s{kubelet}",
        f'set {ANNOTATION}: "{seconds}" on the pod template', largest,
        needed_seconds=round(estimate.needed_timeout_seconds, 1), size_estimated=estimate.size_estimated,
        recommended_create_container_timeout=seconds)
