from collections.abc import Iterator

from ..kata import TIMEOUT_KEY
from ..kata.annotations import KERNEL_PARAMS_ANNOTATION, TIMEOUT_ANNOTATION
from ..kata.classes import IMAGE_PULL_TIMEOUT_PARAM
from ..sizes import human_size
from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject

ANNOTATION = TIMEOUT_ANNOTATION


@rule("KIF405", "pod-timeout-too-low", Severity.WARNING, Target.POD, profiles={"kata": None, "generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: a limit on the guest pull is below what its largest image needs.

    Why: the same budget model as KIF203, with the values in force for the
    pod: its annotation, else the runtime class's Kata config
    (--kata-config), else what the class ships (Kata 4.1: 60 s, runtime-rs
    30 s, NVIDIA GPU classes 1200 s). Three limits apply, the lowest wins:
    `create_container_timeout`; inside the guest `agent.image_pull_timeout`
    (kernel parameter, 1200 s by default); and the kubelet's
    `runtimeRequestTimeout` (2 min by default, --kubelet-timeout), after
    which the kubelet gives up whatever Kata says.

    Fix:   the annotation io.katacontainers.config.runtime.create_container_timeout
           on the pod template (imagefix k8s pod IMAGE prints it), with
           agent.image_pull_timeout=<s> in the kernel_params annotation above
           1200 s; runtimeRequestTimeout in the kubelet configuration.
    """
    read = [(v, v.image) for v in subject.containers if v.image is not None]
    if not read:
        return
    largest, image = max(read, key=lambda pair: pair[1].unpacked_size)
    estimate = subject.model.estimate(image.unpacked_size, size_estimated=image.size_estimated)
    model = subject.model
    seconds = estimate.recommended_timeout_seconds
    what = (f"guest pull + unpack of {largest.container.image} ({human_size(image.unpacked_size)}, "
            f"{estimate.size_said}) needs ~{estimate.needed_timeout_seconds:.0f} s")
    data = {"needed_seconds": round(estimate.needed_timeout_seconds, 1),
            "size_estimated": estimate.size_estimated, "recommended_create_container_timeout": seconds}
    fixes = []
    limits = []
    if not estimate.fits_create_timeout:
        limits.append(f"{TIMEOUT_KEY} for this pod is {model.create_timeout_s} s ({subject.timeout_source})")
        fixes.append(f'set {ANNOTATION}: "{seconds}" on the pod template')
    limit = model.image_pull_timeout_s
    if not estimate.fits_pull_timeout:
        limits.append(f"the guest's own pull limit {IMAGE_PULL_TIMEOUT_PARAM} is {limit} s")
    if not estimate.fits_pull_timeout or (fixes and estimate.needs_pull_timeout):
        fixes.append(f"add {IMAGE_PULL_TIMEOUT_PARAM}={seconds} to the {KERNEL_PARAMS_ANNOTATION} annotation "
                     f"(now {limit} s; where the class enables it, keeping the parameters it has) or to "
                     "kernel_params in the class's config (`imagefix kata patch` writes both)")
    if not estimate.fits_kubelet_timeout:
        limits.append(f"the kubelet's runtimeRequestTimeout is {model.kubelet_timeout_s} s "
                      "(--kubelet-timeout): it gives up first")
        fixes.append(f"set runtimeRequestTimeout: {max(seconds, 600)}s in the kubelet configuration "
                     "(Kata's docs: at least 600 s for confidential containers)")
        data["kubelet_runtime_request_timeout"] = model.kubelet_timeout_s
    if not limits:
        return
    yield subject.finding(f"{'; '.join(limits)}, but {what}", "; ".join(fixes), largest, **data)
