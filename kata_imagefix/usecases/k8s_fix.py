"""`k8s fix` as one call: audit the manifests (reading each image once), fix every file, write each
through the caller's write policy, then audit again only the documents changed, as the nodes will see
them (their images are read already). What is left - error findings, workloads that could not be
edited, input errors - comes back for the command line to print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..k8s.audit import AuditOptions, audit
from ..k8s.fixing import FixedManifest, fix_manifest
from ..k8s.manifests import Problem
from ..model.budget import BudgetModel
from ..scan import RuleSelection
from ..writing import Edit, Written


@dataclass
class K8sFixRequest:
    sources: list[tuple[str, str]]  # (name, text) of every manifest, as read_sources reads them
    options: AuditOptions
    model: BudgetModel
    open_image: Callable[[str], Any]
    problems: list[Problem] = field(default_factory=list)  # files that could not be read


@dataclass
class K8sFix:
    written: list[tuple[Written, FixedManifest]]  # each file as the write policy handled it, in order
    not_fixed: list[str]  # "subject: RULE message" of each error left, then "file:line: why" refusals
    errors: list[tuple[str, str]]  # (file:line, message) of each input error

    @property
    def unfixed(self) -> bool:
        return bool(self.not_fixed)

    @property
    def changed(self) -> bool:
        return any(item.changed for _, item in self.written)


def fix_k8s(request: K8sFixRequest, write: Callable[[Edit], Written]) -> K8sFix:
    """Fix, write (each file through `write`), audit what changed again; nothing printed."""
    options, model, opener = request.options, request.model, request.open_image
    before = audit(request.sources, options, model, RuleSelection(), opener,
                   problems=request.problems)  # reads the images
    written = []
    for name, original in request.sources:
        item = fix_manifest(name, original, before.images, options, model)
        written.append((write(Edit(item.name, original, item.text)), item))
    changed = {item.name: item for _, item in written if item.changed}
    after = audit([(item.name, item.edited_only()) for item in changed.values()], options, model,
                  RuleSelection(), opener, before.images)
    left = [r for r, w in zip(before.results, before.workloads, strict=True)
            if w.file not in changed or not changed[w.file].was_edited(w.line)]
    not_fixed = [f"{r.subject}: {f.rule} {f.message}" for r in left + after.results for f in r.findings
                 if f.severity.label == "error"]
    not_fixed += [refusal for _, item in written for refusal in item.refused]
    return K8sFix(written, not_fixed, before.errors)
