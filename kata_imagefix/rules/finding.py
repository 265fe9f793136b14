"""What every rule returns and every output format renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgspec


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    fix: str | None = None
    file: str | None = None
    line: int | None = None  # 1-based
    layer: int | None = None  # 0-based layer index, for image findings
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_severity(self, severity: Severity) -> Finding:
        return Finding(self.rule, severity, self.message, self.fix, self.file, self.line,
                       self.layer, self.data)


class Draft(msgspec.Struct, frozen=True):
    """A finding as a check states it, at a place of its subject: its rule adds the id and severity
    (Rule.check), so a rule module names its id once."""

    message: str
    fix: str | None = None
    file: str | None = None
    line: int | None = None
    layer: int | None = None
    severity: Severity | None = None  # only where the rule itself grades this case lower
    data: dict[str, Any] = msgspec.field(default_factory=dict)

    def stamped(self, rule: str, severity: Severity) -> Finding:
        return Finding(rule, self.severity or severity, self.message, self.fix, self.file, self.line,
                       self.layer, self.data)
