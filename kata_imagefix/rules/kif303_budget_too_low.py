from collections.abc import Iterator

from ..sizes import human_size
from .base import Target, rule
from .finding import Draft, Severity
from .kata_subject import MEMORY_KEY, TIMEOUT_KEY, KataSubject

PASSTHROUGH = ('containerd must pass pod annotations through '
               '(pod_annotations = ["io.katacontainers.*"], as kata-deploy sets it)')


@rule("KIF303", "config-too-low-for-images", Severity.WARNING, Target.KATA,
      profiles={"generic": None})
def check(subject: KataSubject) -> Iterator[Draft]:
    """Kata config: the effective timeout or `default_memory` is too low for the images given.

    Why: the same budget model as `imagefix scan` (see `imagefix rules`):
    guest pull + unpack time against every limit on the way -
    `create_container_timeout`, the guest's own `agent.image_pull_timeout`
    (a kernel parameter in `kernel_params`, 1200 s when not set) and the
    kubelet's `runtimeRequestTimeout` (2 min by default, --kubelet-timeout) -
    and the unpacked image against the guest's tmpfs (50% of `default_memory`).

    Fix: `imagefix kata patch CONFIG --create-container-timeout auto
    --default-memory auto --image REF` (or a drop-in), or per pod with the
    annotations `io.katacontainers.config.runtime.create_container_timeout`
    and `io.katacontainers.config.hypervisor.default_memory`.
    """
    config = subject.config
    timeout, timeout_file, timeout_entry = config.timeout
    memory, memory_file, memory_entry = config.memory
    main = config.main.path
    for ref, estimate in subject.estimates:
        # the model's own flags, less the two the config supplies (kata patch reads them from it)
        flags = estimate.model.flags(skip=("--guest-memory", "--create-timeout"))
        seconds = estimate.recommended_timeout_seconds
        pull_limit = estimate.model.image_pull_timeout_s
        guest = ""
        if estimate.needs_pull_timeout:
            guest = (f"; {seconds} s is above the guest's own agent.image_pull_timeout ({pull_limit} s): "
                     f"kata patch also writes agent.image_pull_timeout={seconds} into kernel_params "
                     "(keeping the others), per pod add it to the io.katacontainers.config.hypervisor."
                     "kernel_params annotation")
        kubelet = kubelet_fix = ""
        if not estimate.fits_kubelet_timeout:
            kubelet_fix = (f"set runtimeRequestTimeout: {max(seconds, 600)}s in the kubelet configuration "
                           "(Kata's docs: at least 600 s for confidential containers)")
            kubelet = f"; {kubelet_fix}"
        if not estimate.fits_create_timeout or not estimate.fits_pull_timeout:
            limit = (f"{TIMEOUT_KEY} is {timeout} s" if not estimate.fits_create_timeout else
                     f"agent.image_pull_timeout (kernel_params) is {pull_limit} s")
            yield subject.finding(
                f"{limit}, but guest pull + unpack of {ref} "
                f"({human_size(estimate.unpacked_bytes)}, {estimate.size_said}) needs "
                f"{estimate.needed_timeout_seconds:.0f} s"
                + (f"; above the kubelet's runtimeRequestTimeout too ({estimate.model.kubelet_timeout_s} s, "
                   "--kubelet-timeout), which gives up first" if kubelet else ""),
                f"set {TIMEOUT_KEY} = {seconds} in [{'.'.join(config.timeout_table)}] "
                f"(`imagefix kata patch {main} {config.patch_mode} --create-container-timeout auto "
                f"--image {ref}{flags}`), "
                "or per pod "
                f'io.katacontainers.config.runtime.create_container_timeout: "{seconds}" - '
                + PASSTHROUGH + guest + kubelet,
                (timeout_file.path if timeout_file else main),
                (timeout_entry.line + 1 if timeout_entry else None),
                image=ref, needed_seconds=round(estimate.needed_timeout_seconds, 1),
                recommended_create_container_timeout=seconds, size_estimated=estimate.size_estimated,
            )
        elif kubelet:
            yield subject.finding(
                f"{TIMEOUT_KEY} {timeout} s holds, but guest pull + unpack of {ref} "
                f"({human_size(estimate.unpacked_bytes)}, {estimate.size_said}) needs "
                f"{estimate.needed_timeout_seconds:.0f} s, "
                f"above the kubelet's runtimeRequestTimeout ({estimate.model.kubelet_timeout_s} s, "
                "--kubelet-timeout): the kubelet gives up first",
                kubelet_fix,
                (timeout_file.path if timeout_file else main),
                (timeout_entry.line + 1 if timeout_entry else None),
                image=ref, needed_seconds=round(estimate.needed_timeout_seconds, 1),
                kubelet_runtime_request_timeout=estimate.model.kubelet_timeout_s,
                size_estimated=estimate.size_estimated,
            )
        if not estimate.fits_memory:
            mib = estimate.recommended_memory_mib
            yield subject.finding(
                f"{MEMORY_KEY} is {memory} MiB: the guest's room for images is "
                f"{human_size(estimate.room_bytes)}, but {ref} unpacks to "
                f"{human_size(estimate.unpacked_bytes)} ({estimate.size_said})",
                f"set {MEMORY_KEY} = {mib} in [{'.'.join(config.hypervisor_table())}] "
                f"(`imagefix kata patch {main} {config.patch_mode} --default-memory auto "
                f"--image {ref}{flags}`), "
                "or per pod "
                f'io.katacontainers.config.hypervisor.default_memory: "{mib}" (or raise the pod\'s '
                "memory limits: TDX sizes the guest as default_memory + limits)",
                (memory_file.path if memory_file else main),
                (memory_entry.line + 1 if memory_entry else None),
                image=ref, recommended_default_memory_mib=mib, size_estimated=estimate.size_estimated,
            )
