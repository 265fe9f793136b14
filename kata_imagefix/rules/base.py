"""Rule metadata and registry. A rule's docstring is its documentation (`imagefix rules`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..image.model import Image
from ..model.budget import BudgetEstimate
from ..users import Resolution, UserSpec
from .finding import Finding, Severity

TARGETS = ("user", "image", "kata", "pod")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    target: str  # what check() receives: "user" -> UserSubject, "image" -> ImageSubject
    check: Callable[[Any], Iterable[Finding]]
    doc: str
    # profile -> the severity there (None: the rule does not apply); kata-tdx is the rule's own severity
    profiles: dict[str, Severity | None] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.doc.splitlines()[0].rstrip(".")


CATALOGUE: dict[str, Rule] = {}


def rule(id: str, name: str, severity: Severity, target: str, *,
         profiles: dict[str, Severity | None] | None = None):
    """Register a check function as a rule; its docstring is the rule's docs entry, `profiles` how it
    weighs where there is no guest pull (`kata`) or no Kata at all (`generic`)."""
    assert target in TARGETS, target

    def register(func: Callable[[Any], Iterable[Finding]]) -> Callable[[Any], Iterable[Finding]]:
        assert id not in CATALOGUE, f"duplicate rule id {id}"
        CATALOGUE[id] = Rule(id, name, severity, target, func, inspect.cleandoc(func.__doc__ or ""),
                             dict(profiles or {}))
        return func

    return register


@dataclass
class UserSubject:
    """The effective USER of an image or of a Dockerfile's final stage."""

    spec: UserSpec
    resolver: Callable[[], Resolution]
    where: str = "the image"
    file: str | None = None
    line: int | None = None
    unknown: str | None = None  # why the user cannot be known (then only KIF106 speaks)
    written: str | None = None  # the USER as the Dockerfile spells it, when that differs
    read_file: Callable[[str], bytes | None] | None = None  # the image's files (None for a Dockerfile)
    _resolution: Resolution | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.written if self.written is not None else self.spec.raw

    def resolve(self) -> Resolution:
        if self._resolution is None:
            self._resolution = self.resolver()
        return self._resolution

    def finding(self, rule_id: str, message: str, fix: str | None = None,
                severity: Severity | None = None, **data: Any) -> Finding:
        """A finding at the USER line; `severity` only where the rule itself grades the case lower."""
        return Finding(rule_id, severity or CATALOGUE[rule_id].severity, message, fix, self.file,
                       self.line, data=data)


@dataclass
class ImageSubject:
    image: Image
    budget: BudgetEstimate
    max_layer_size: int

    def finding(self, rule_id: str, message: str, fix: str | None = None,
                layer: int | None = None, **data: Any) -> Finding:
        return Finding(rule_id, CATALOGUE[rule_id].severity, message, fix, layer=layer, data=data)
