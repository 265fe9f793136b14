from collections.abc import Iterator

from .base import ImageSubject, Target, rule
from .finding import Draft, Severity
from .kif203_pull_timeout import pull_explanation


@rule("KIF204", "pull-exceeds-kubelet-timeout", Severity.WARNING, Target.IMAGE,
      profiles={"kata": None, "generic": None})
def check(subject: ImageSubject) -> Iterator[Draft]:
    """The pull estimate is also above the kubelet's `runtimeRequestTimeout`.

    Why: the kubelet gives up on CreateContainer after `runtimeRequestTimeout`
    (default 2 min), whatever Kata's own timeout says. Kata's docs recommend
    at least 600 s for confidential containers.

    Fix: raise `runtimeRequestTimeout` in the kubelet configuration (or
    `--runtime-request-timeout`) above the recommended create timeout, or
    slim the image.
    """
    budget = subject.budget
    if budget.fits_kubelet_timeout:
        return
    seconds = budget.recommended_timeout_seconds
    yield subject.finding(
        f"estimated guest pull + unpack needs {budget.needed_timeout_seconds:.0f} s "
        f"({pull_explanation(subject)}), above the kubelet's runtimeRequestTimeout "
        f"{budget.model.kubelet_timeout_s} s: the kubelet gives up first",
        f"set runtimeRequestTimeout: {max(seconds, 600)}s in the kubelet configuration "
        "(Kata recommends >= 600 s for confidential containers), or slim the image",
        needed_seconds=round(budget.needed_timeout_seconds, 1), size_estimated=budget.size_estimated,
    )
