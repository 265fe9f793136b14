"""Run the rules over a subject: profiles, --select/--ignore, suppression."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .image.model import Image
from .model.budget import BudgetModel
from .rules import ImageSubject, Rule, UserSubject, rules_for
from .rules.finding import Finding, Severity
from .rules.result import ScanResult
from .users import UserSpec, resolve_user

DEFAULT_MAX_LAYER_SIZE = 100 * 10**6

class RuleSelection(msgspec.Struct, frozen=True):
    profile: str = "kata-tdx"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def severity_for(self, rule: Rule) -> Severity | None:
        """The rule's severity under this profile (declared on the rule); None when it does not apply."""
        return rule.profiles.get(self.profile, rule.severity)

    def active(self, rule: Rule) -> bool:
        if self.severity_for(rule) is None:
            return False
        return not self.select or any(rule.id.startswith(prefix) for prefix in self.select)

    def ignored(self, rule_id: str) -> bool:
        return any(rule_id.startswith(prefix) for prefix in self.ignore)


def run_rules(subject: object, target: str, selection: RuleSelection,
              extra_ignored: Iterable[str] = ()) -> tuple[list[Finding], list[Finding]]:
    """Findings of the active rules for one target kind, split into kept and suppressed."""
    extra = tuple(extra_ignored)
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for rule in rules_for(target):
        if not selection.active(rule):
            continue
        severity = selection.severity_for(rule) or rule.severity  # never None: active() checked it
        for finding in rule.check(subject):
            if severity != rule.severity:  # the profile re-grades the rule
                finding = finding.with_severity(severity)
            if selection.ignored(finding.rule) or finding.rule in extra:
                suppressed.append(finding)
            else:
                kept.append(finding)
    return kept, suppressed


def scan_image(image: Image, selection: RuleSelection, model: BudgetModel,
               max_layer_size: int = DEFAULT_MAX_LAYER_SIZE) -> ScanResult:
    spec = UserSpec.parse(image.user)
    user = UserSubject(spec, lambda: resolve_user(spec, image.read_file), read_file=image.read_file)
    budget = model.estimate(image.unpacked_size, size_estimated=image.size_estimated)
    result = ScanResult(image.reference, image=image, budget=budget)
    subjects: list[tuple[str, object]] = [("image", ImageSubject(image, budget, max_layer_size))]
    if image.os == "windows":
        result.notes.append("a Windows image is not a Kata workload: no user rules")
    else:
        subjects.insert(0, ("user", user))
    if image.size_estimated and image.transport == "docker":
        guessed = [layer for layer in image.layers if layer.size_estimated]
        why = f" ({guessed[0].size_note})" if guessed[0].size_note else ""
        result.notes.append(f"unpacked sizes of {len(guessed)} of {len(image.layers)} layers are ESTIMATED "
                            f"from the compressed sizes (x3){why}: a layer that compresses better (up to a "
                            "compression bomb) unpacks larger; --exact counts")
    for target, subject in subjects:
        kept, suppressed = run_rules(subject, target, selection)
        result.findings += kept
        result.suppressed += suppressed
    result.findings.sort(key=lambda f: (-f.severity, f.rule, f.layer or 0))
    return result
