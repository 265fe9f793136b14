"""`k8s fix` as one call: audit the manifests (reading each image once), fix every file, write each
through the caller's write policy, then audit again only the documents changed, as the nodes will see
them (their images are read already). What is left - error findings, workloads that could not be
edited, input errors - comes back for the command line to print.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..k8s.audit import AuditOptions, AuditRun, audit_stream, audit_workloads
from ..k8s.fixing import FixedManifest, fix_manifest
from ..k8s.manifests import Problem, Workload, document_workloads
from ..model.budget import BudgetModel
from ..rules.result import ScanResult
from ..scan import RuleSelection
from ..writing import Edit, Written


@dataclass
class K8sFixRequest:
    sources: list[tuple[str, str]]  # (name, text) of every manifest, as read_sources reads them
    options: AuditOptions
    model: BudgetModel
    open_image: Callable[[str], Any]
    problems: list[Problem] = field(default_factory=list)  # files that could not be read
    record: bool = False  # keep each workload written as values, and the images read (--format json)


@dataclass
class K8sFix:
    written: list[tuple[Written, FixedManifest]]  # each file as the write policy handled it, in order
    not_fixed: list[str]  # "subject: RULE message" of each error left, then "file:line: why" refusals
    errors: list[tuple[str, str]]  # (file:line, message) of each input error
    images: dict[str, tuple[Any, str | None]] = field(default_factory=dict)  # `record`: ref -> (image, error)
    left: list[tuple[str, str]] = field(default_factory=list)  # (subject, "RULE message") of each error left

    @property
    def unfixed(self) -> bool:
        return bool(self.not_fixed)

    @property
    def changed(self) -> bool:
        return any(item.changed for _, item in self.written)


def fix_k8s(request: K8sFixRequest, write: Callable[[Edit], Written]) -> K8sFix:
    """Fix, write (each file through `write`), audit what changed again; nothing printed. Both audits
    stream: of each workload only its error findings are kept (a 100,000-item List is never held as
    results)."""
    options, model, opener = request.options, request.model, request.open_image
    before = AuditRun()  # reads the images
    found = _errors(audit_stream(before, request.sources, options, model, RuleSelection(), opener,
                                 problems=request.problems))
    written = []
    for name, original in request.sources:
        item = fix_manifest(name, original, before.images, options, model, record=request.record)
        done = write(Edit(item.name, original, item))  # its fixed text made as it is written
        # what is kept of the write: where it went (the texts are the manifest's size, twice)
        written.append((Written(Edit(item.name, "", ""), done.where, done.backup), item))
    changed = {item.name: item for _, item in written if item.changed}
    after = _errors(audit_workloads(AuditRun(), _edited_workloads(changed.values()), options, model,
                                    RuleSelection(), opener, before.images))
    left = [(subject, said) for file, line, subject, said in found
            if file not in changed or not changed[file].was_edited(line)]
    left += [(subject, said) for _, _, subject, said in after]
    not_fixed = [f"{subject}: {said}" for subject, said in left]
    not_fixed += [refusal for _, item in written for refusal in item.refused]
    return K8sFix(written, not_fixed, before.errors, before.images if request.record else {}, left)


def _edited_workloads(items: Iterable[FixedManifest]) -> Iterator[Workload]:
    """The workloads of each changed document, as the nodes will see them: each document (a List's
    item) read alone where it is in the fixed manifest, one at a time."""
    problems: list[Problem] = []  # the fixed text is valid YAML: what was not is left as it was
    for item in items:
        for line, text in item.edited_documents():
            yield from document_workloads(item.name, text, line, problems)


def _errors(stream: Iterable[tuple[Workload, ScanResult]]) -> list[tuple[str, int | None, str, str]]:
    """(file, line, subject, "RULE message") of each error finding of an audit's stream, the rest of
    each result dropped as it comes; a message many workloads share is held once."""
    return [(workload.file, workload.line, result.subject, sys.intern(f"{finding.rule} {finding.message}"))
            for workload, result in stream for finding in result.findings
            if finding.severity.label == "error"]
