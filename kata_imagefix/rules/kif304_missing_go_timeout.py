from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .kata_subject import TIMEOUT_KEY, KataSubject


@rule("KIF304", "go-runtime-without-timeout", Severity.ERROR, Target.KATA,
      profiles={"generic": None})
def check(subject: KataSubject) -> Iterator[Draft]:
    """Kata config: the Go runtime's `[runtime]` has no `create_container_timeout`: it runs with 0 s.

    Why: the Go runtime has no default of its own. The 60 s users know comes
    from the shipped template; `virtcontainers/kata_agent.go` replaces its
    package default with the configuration's value, which is 0 when the key is
    absent, so every CreateContainer hits its deadline at once. (runtime-rs
    falls back to 30 s and is not affected.)

    Fix:   [runtime]
           create_container_timeout = 60      (or what `--create-container-timeout auto` computes)
    """
    config = subject.config
    if config.runtime != "go" or not config.loads:
        return
    _, where, _ = config.timeout
    if where is not None:
        return
    yield subject.finding(
        f"no {TIMEOUT_KEY} in [runtime] (main file or drop-ins): the Go runtime has no default of its own, "
        "so it runs with 0 s and every CreateContainer fails",
        f"set it: `imagefix kata patch {config.main.path} {config.patch_mode}` writes the shipped 60 s "
        "(add --create-container-timeout auto --image REF to size it for your images)",
        config.main.path, (config.main.headers.get(("runtime",), -1) + 1) or None,
    )
