"""The pre-push gate: push the image only when every gate of its report passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from .model import Report


@dataclass
class PushOutcome:
    pushed: bool
    reference: str
    digest: str | None = None
    why: str = ""  # why not, when not pushed
    events: list[dict] = field(default_factory=list)  # the engine's push events

    @property
    def summary(self) -> str:
        return f"pushed {self.reference}@{self.digest}" if self.pushed else self.why


def push_if_passed(report: Report, registry: Any, *, show_progress: bool) -> PushOutcome:
    """Push through the Docker SDK when no gate was crossed; otherwise say which gates stopped it."""
    if report.failed:
        crossed = ", ".join(f"{g.name} ({g.actual} > {g.limit})" for g in report.gates if g.crossed)
        return PushOutcome(False, report.reference, why=f"not pushed: gates crossed: {crossed}")
    image = report.image
    if image is None or image.transport != "docker-daemon" or not image.name or "@" in image.name:
        raise ImagefixError(f"{report.reference}: --push pushes a local image with a registry name "
                            "(repository:tag); this one is not in the local engine under such a name")
    from ..fix.build import push
    from ..image.sources.daemon import api_client

    auth = None
    if registry.credentials is not None:
        auth = {"username": registry.credentials.username, "password": registry.credentials.password}
    events: list[dict] = []
    digest = push(api_client(), image.name, auth_config=auth, show_progress=show_progress, events=events)
    return PushOutcome(True, image.name, digest, events=events)
