from collections.abc import Iterator

from ..sizes import human_size
from .base import ImageSubject, Target, rule
from .finding import Draft, Severity


def pull_explanation(subject: ImageSubject) -> str:
    budget = subject.budget
    model = budget.model
    estimated = f", size {budget.size_said}"
    return (f"{human_size(budget.unpacked_bytes)} at {model.pull_rate_mb_s:g} MB/s + "
            f"{model.overhead_s:g} s = {budget.pull_seconds:.0f} s, x{model.safety_factor:g} "
            f"margin = {budget.needed_timeout_seconds:.0f} s{estimated}")


@rule("KIF203", "pull-exceeds-create-timeout", Severity.WARNING, Target.IMAGE,
      profiles={"kata": None, "generic": None})
def check(subject: ImageSubject) -> Iterator[Draft]:
    """Estimated guest pull + unpack time is above `create_container_timeout`.

    Why: with guest pull the shim's CreateContainer call to the agent includes
    pulling and unpacking the image inside the guest, and it is bounded by
    `create_container_timeout` (default 60 s). mysql:8.4 (about 600 MB
    unpacked) failed at 60 s and passed at 120 s.

    Model: overhead + unpacked size / pull rate, times a safety factor,
    rounded up to 30 s (all settable: --pull-rate, --create-timeout, ...).

    Fix: set `create_container_timeout` in `[runtime]` of the Go runtime's
    config (`configuration-qemu-tdx.toml`; `[agent.kata]` for runtime-rs) -
    NOT under `[factory]`, where Kata silently ignores it - or per pod with
    the annotation `io.katacontainers.config.runtime.create_container_timeout`.
    Above 1200 s the guest's own limit, the kernel parameter
    `agent.image_pull_timeout`, must be raised too (`kernel_params`).
    """
    budget = subject.budget
    if budget.fits_create_timeout:
        return
    seconds = budget.recommended_timeout_seconds
    pull = "annotation io.katacontainers.config.hypervisor.kernel_params"
    yield subject.finding(
        f"estimated guest pull + unpack needs {budget.needed_timeout_seconds:.0f} s "
        f"({pull_explanation(subject)}), above create_container_timeout "
        f"{budget.model.create_timeout_s} s",
        f"set create_container_timeout = {seconds} in the Kata config - [runtime] for the Go runtime "
        "(kata-qemu-tdx), [agent.kata] for runtime-rs; not [factory], ignored there - or pod annotation "
        f'io.katacontainers.config.runtime.create_container_timeout: "{seconds}"'
        + (f"; {seconds} s is above the guest's own pull limit agent.image_pull_timeout "
           f"({budget.model.image_pull_timeout_s} s by default): add agent.image_pull_timeout={seconds} to "
           "kernel_params (imagefix kata patch does, keeping the other parameters) or to the pod "
           + pull if budget.needs_pull_timeout else ""),
        needed_seconds=round(budget.needed_timeout_seconds, 1), size_estimated=budget.size_estimated,
        recommended_create_container_timeout=seconds,
    )
