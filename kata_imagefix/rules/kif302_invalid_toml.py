from collections.abc import Iterator

from .base import Target, rule
from .finding import Draft, Severity
from .kata_subject import KataSubject


@rule("KIF302", "config-not-valid-toml", Severity.ERROR, Target.KATA,
      profiles={"generic": None})
def check(subject: KataSubject) -> Iterator[Draft]:
    """Kata config: the file is not valid TOML (e.g. a second `[factory]` header).

    Why: appending `[factory]` + `create_container_timeout` to a config that
    already has a `[factory]` table declares the table twice. That is invalid
    TOML, and the runtime cannot load the file at all: every Kata pod fails.

    Fix: remove the duplicate by hand (imagefix does not guess which copy you
    meant), then `imagefix kata patch` puts the timeout where it works.
    """
    for broken in subject.config.broken:
        yield subject.finding(f"{broken.why}: the Kata runtime cannot load its configuration",
                              f"remove {broken.path} or make it a TOML file", broken.path, None)
    for toml in subject.config.files:
        if toml.data is None:
            yield subject.finding(
                f"not valid TOML: {toml.error}; the Kata runtime cannot load this file",
                "imagefix kata patch CONFIG --in-place merges a duplicate table that holds only "
                "create_container_timeout; otherwise remove the duplicate by hand",
                toml.path, toml.error_line,
            )
