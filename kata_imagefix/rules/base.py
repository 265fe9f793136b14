"""Rule metadata and registry. A rule's docstring is its documentation (`imagefix rules`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec

from ..image.model import Image
from ..model.budget import BudgetEstimate
from ..users import Resolution, UserSpec
from .finding import Draft, Finding, Severity


class Target(StrEnum):
    """The kind of subject a rule's check receives (a str: "user", "image", "kata", "pod")."""

    USER = "user"  # UserSubject: an image's or a Dockerfile's effective USER
    IMAGE = "image"  # ImageSubject: an image's layers and budget
    KATA = "kata"  # KataSubject: a Kata config with its drop-ins
    POD = "pod"  # PodSubject: one workload's containers


PROFILES = ("kata-tdx", "kata", "generic")  # kata-tdx: guest pull; kata: host pull; generic: no Kata
S = TypeVar("S")
Check = Callable[[S], Iterable[Draft]]


class Rule(msgspec.Struct, Generic[S], frozen=True):
    id: str
    name: str
    severity: Severity
    target: Target
    func: Check[S]  # the rule module's check: what it finds, without id or severity
    doc: str
    # profile -> the severity there (None: the rule does not apply); kata-tdx is the rule's own severity
    profiles: dict[str, Severity | None] = msgspec.field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.doc.splitlines()[0].rstrip(".")

    def check(self, subject: S) -> Iterator[Finding]:
        """The findings on `subject`, each with this rule's id and (unless the check graded it) severity."""
        for draft in self.func(subject):
            yield draft.stamped(self.id, self.severity)


CATALOGUE: dict[str, Rule[Any]] = {}


def rule(id: str, name: str, severity: Severity, target: Target, *,
         profiles: dict[str, Severity | None] | None = None) -> Callable[[Check[S]], Check[S]]:
    """Register a check function as a rule; its docstring is the rule's docs entry, `profiles` how it
    weighs where there is no guest pull (`kata`) or no Kata at all (`generic`)."""

    assert all(profile in PROFILES for profile in profiles or {}), profiles

    def register(func: Check[S]) -> Check[S]:
        assert id not in CATALOGUE, f"duplicate rule id {id}"
        CATALOGUE[id] = Rule(id, name, severity, Target(target), func, inspect.cleandoc(func.__doc__ or ""),
                             dict(profiles or {}))
        return func

    return register


class UserSubject(msgspec.Struct):
    """The effective USER of an image or of a Dockerfile's final stage."""

    spec: UserSpec
    resolver: Callable[[], Resolution]
    where: str = "the image"
    file: str | None = None
    line: int | None = None
    unknown: str | None = None  # why the user cannot be known (then only KIF106 speaks)
    written: str | None = None  # the USER as the Dockerfile spells it, when that differs
    read_file: Callable[[str], bytes | None] | None = None  # the image's files (None for a Dockerfile)
    _resolution: Resolution | None = None

    @property
    def label(self) -> str:
        return self.written if self.written is not None else self.spec.raw

    def resolve(self) -> Resolution:
        if self._resolution is None:
            self._resolution = self.resolver()
        return self._resolution

    def finding(self, message: str, fix: str | None = None, severity: Severity | None = None,
                **data: Any) -> Draft:
        """A finding at the USER line; `severity` only where the rule itself grades the case lower."""
        return Draft(message, fix, self.file, self.line, severity=severity, data=data)


class ImageSubject(msgspec.Struct):
    image: Image
    budget: BudgetEstimate
    max_layer_size: int

    def finding(self, message: str, fix: str | None = None, layer: int | None = None,
                **data: Any) -> Draft:
        """A finding on the image, or on one of its layers."""
        return Draft(message, fix, layer=layer, data=data)
