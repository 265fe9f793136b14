"""What the pod rules (KIF4xx) look at: one workload's containers, their images, the values in force.

The user a container runs as is what containerd's CRI plugin computes
(docs/users.md): the container's securityContext over the pod's, and the
image's USER only when no runAsUser is set anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..users import Resolution, UserKind, UserSpec, resolve_user
from .base import CATALOGUE
from .finding import Finding

if TYPE_CHECKING:
    from ..image.model import Image
    from ..k8s.manifests import Container, Workload
    from ..kata.budget import BudgetModel


@dataclass
class ContainerView:
    container: Container
    pod_security: dict[str, Any]
    image: Image | None = None
    error: str | None = None  # why the image could not be read
    _resolution: Resolution | None = field(default=None, repr=False)

    def _setting(self, key: str) -> Any:
        value = self.container.security.get(key)
        return value if value is not None else self.pod_security.get(key)

    @property
    def run_as_user(self) -> int | None:
        value = self._setting("runAsUser")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def run_as_group(self) -> int | None:
        value = self._setting("runAsGroup")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def run_as_non_root(self) -> bool:
        return self._setting("runAsNonRoot") is True

    @property
    def image_user(self) -> UserSpec:
        return UserSpec.parse(self.image.user if self.image is not None else "")

    def reads_accounts(self, image: Image) -> bool:
        """Whether the pod rules will look into `image`'s /etc/passwd for this container (KIF401 for a
        named USER, KIF402 for a uid without a group): the audit reads it ahead, in parallel."""
        if self.run_as_user is not None:
            return self.run_as_group is None
        kind = UserSpec.parse(image.user).kind
        return kind is UserKind.NAMED or (kind is UserKind.NUMERIC_NO_GROUP and self.run_as_group is None)

    def image_resolution(self) -> Resolution:
        """The image USER resolved from the image's own files (as containerd would if it could read them)."""
        if self._resolution is None:
            assert self.image is not None
            self._resolution = resolve_user(self.image_user, self.image.read_file)
        return self._resolution

    def primary_gid(self, uid: int) -> int | None:
        """The primary group the image's passwd gives `uid` (None when no entry or no image)."""
        if self.image is None:
            return None
        resolution = resolve_user(UserSpec.parse(str(uid)), self.image.read_file)
        return resolution.gid if resolution.gid_from_passwd else None


@dataclass
class PodSubject:
    workload: Workload
    containers: list[ContainerView]
    model: BudgetModel  # with the pod's timeout and guest memory in force
    timeout_source: str
    memory_source: str

    def finding(self, rule_id: str, message: str, fix: str | None, view: ContainerView | None,
                **data: Any) -> Finding:
        line = view.container.line if view is not None else None
        where = {"workload": self.workload.title, **({"container": view.container.name} if view else {})}
        return Finding(rule_id, CATALOGUE[rule_id].severity, message, fix, self.workload.file, line,
                       data={**where, **data})
