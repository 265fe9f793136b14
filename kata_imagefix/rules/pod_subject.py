"""What the pod rules (KIF4xx) look at: one workload's containers, their images, the values in force.

The identity a container runs as is what the kubelet, containerd's CRI plugin and
Kata's genpolicy make of the image and the securityContexts (identity.py,
docs/users.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..users import UserSpec
from .finding import Draft

if TYPE_CHECKING:
    from ..image.model import Image
    from ..model.budget import BudgetModel
    from ..model.workload import Container, Workload
    from ..users.identity import ContainerIdentity, ExplicitIdentity


@dataclass
class ContainerView:
    container: Container
    pod_security: dict[str, Any]
    image: Image | None = None
    error: str | None = None  # why the image could not be read
    sole: bool = False  # the pod's only container (then its ids may go to the pod's securityContext)

    _identity: ContainerIdentity | None = field(default=None, repr=False)
    _explicit: ExplicitIdentity | None = field(default=None, repr=False)

    @property
    def image_user(self) -> UserSpec:
        return UserSpec.parse(self.image.user if self.image is not None else "")

    def identity(self) -> ContainerIdentity:
        """The container through the kubelet, containerd and genpolicy (identity.py)."""
        if self._identity is None:
            from ..users.identity import resolve_identity  # not on an image scan's path

            assert self.image is not None
            self._identity = resolve_identity(self.image.user or "", self.image.read_file,
                                              self.container.security, self.pod_security)
        return self._identity

    def explicit(self) -> ExplicitIdentity:
        """What to write so that the process really gets the identity the image (and the pod) mean."""
        if self._explicit is None:
            from ..users.identity import explicit_identity

            assert self.image is not None
            self._explicit = explicit_identity(self.image.user or "", self.image.read_file,
                                               self.container.security, self.pod_security, sole=self.sole)
        return self._explicit

    def fix_text(self) -> str:
        """The explicit identity as a sentence for a finding's fix."""
        explicit = self.explicit()
        if explicit.left is not None:
            return (f"the ids cannot be found ({explicit.left}): set runAsUser/runAsGroup yourself, or "
                    "rebuild the image with a numeric USER (imagefix fix)")
        text = explicit.describe(self.container.name)
        return f"{text} (imagefix k8s fix writes it)" if text else \
            "nothing to add: the values the manifest sets are the cause - change them"


@dataclass
class PodSubject:
    workload: Workload
    containers: list[ContainerView]
    model: BudgetModel  # with the pod's timeout and guest memory in force
    timeout_source: str
    memory_source: str
    guest_pull: bool = True  # the kata-tdx profile; `kata` pulls on the host

    def finding(self, message: str, fix: str | None, view: ContainerView | None, **data: Any) -> Draft:
        """A finding on the workload, at one container's line when `view` names it."""
        line = view.container.line if view is not None else None
        where = {"workload": self.workload.title, **({"container": view.container.name} if view else {})}
        return Draft(message, fix, self.workload.file, line, data={**where, **data})
