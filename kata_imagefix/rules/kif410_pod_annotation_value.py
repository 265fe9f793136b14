from collections.abc import Iterator

from ..kata.annotations import MEMORY_ANNOTATION, NUMBER_ANNOTATIONS, parse_number
from ..kata.classes import shipped_class
from .base import Target, rule
from .finding import Draft, Severity
from .pod_subject import PodSubject


@rule("KIF410", "pod-annotation-refused", Severity.ERROR, Target.POD, profiles={"generic": None})
def check(subject: PodSubject) -> Iterator[Draft]:
    """Pod: a Kata annotation whose value Kata (or the API server) refuses: the pod never starts.

    Why: the Go runtime parses number annotations with `strconv.ParseUint(value,
    10, 64)`: `"+600"`, `" 600"`, `"6_00"`, full-width digits, `"-1"` and
    `"600s"` are errors, and so is the whole pod. runtime-rs trims the value
    and takes a `+`, but only 32-bit numbers. An unquoted number is not a
    string: the API server refuses the manifest. The default_memory annotation
    on a class whose config does not enable it (`enable_annotations`) makes the
    Go runtime refuse the pod too.

    Bad:   io.katacontainers.config.runtime.create_container_timeout: 600
           io.katacontainers.config.runtime.create_container_timeout: "600s"
    Good:  io.katacontainers.config.runtime.create_container_timeout: "600"
    """
    workload = subject.workload
    shipped = shipped_class(workload.runtime_class or "")
    runtime = shipped.runtime if shipped else "go"  # unknown: the stricter parser
    at = subject.containers[0] if subject.containers else None  # the pod's own line
    for key in NUMBER_ANNOTATIONS:
        if key not in workload.raw_annotations:
            continue
        value = workload.raw_annotations[key]
        _, problem = parse_number(value, runtime)
        if problem:
            example = _meant(value)
            yield subject.finding(
                f"{key}: {problem}",
                f"write it as a quoted string of ASCII digits, e.g. {key}: {example}", at,
                annotation=key, value=str(value))
        elif key == MEMORY_ANNOTATION and shipped and shipped.runtime == "go" and \
                not shipped.enables("default_memory"):
            yield subject.finding(
                f"{key}: {workload.runtime_class} does not enable default_memory in "
                "enable_annotations (Kata 4.1's shipped config): the Go runtime refuses the pod",
                "drop the annotation and raise the containers' memory limits, or add default_memory to "
                "the class's enable_annotations (kata-deploy: a drop-in in its config.d)", at,
                annotation=key, value=str(value))


def _meant(value: object) -> str:
    """The value the manifest most likely meant, written the way Kata reads it."""
    text = str(value).strip().replace("_", "").removeprefix("+").removesuffix("s")
    try:
        number = int(text)  # Python reads full-width digits too
    except ValueError:
        return '"<number>"'
    return f'"{number}"' if number >= 0 else '"<number>"'
