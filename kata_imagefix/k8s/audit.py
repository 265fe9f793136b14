"""`imagefix k8s check`: every Kata workload of the manifests through the pod rules (KIF4xx).

Images are read the way a node pulls them - from the registry, without
pulling (the registry source, its layer cache and credentials) - each
distinct image once, `jobs` at a time. The values in force for a pod are its
annotations, else its runtime class's Kata config, else the budget defaults.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from ..errors import ImagefixError
from ..kata.annotations import MEMORY_ANNOTATION, TIMEOUT_ANNOTATION, number_or_none
from ..model.budget import BudgetModel
from ..model.workload import Workload
from ..rules.pod_subject import ContainerView, PodSubject
from ..rules.result import ScanResult
from ..scan import RuleSelection, run_rules
from .class_values import ClassValues, class_values
from .manifests import Problem, iter_workloads, manifest_paths, read_manifest
from .pod import pull_limit

MIB = 2**20


@dataclass
class AuditOptions:
    runtime_classes: tuple[str, ...] = ()  # empty: any class whose name starts with "kata"
    all_pods: bool = False
    prefer_local: bool = False
    jobs: int = 4
    kata_configs: dict[str, Any] = field(default_factory=dict)  # class ("" for every class) -> KataConfig
    shard: tuple[int, int] | None = None  # (I, N): only the I-th of N stable slices of the workloads


def in_shard(workload: Workload, shard: tuple[int, int] | None) -> bool:
    """Stable across runs and machines: a hash of namespace/kind/name, not of the input order."""
    if shard is None:
        return True
    import hashlib

    index, count = shard
    return int(hashlib.sha256(workload.title.encode()).hexdigest()[:16], 16) % count == index


def is_kata(workload: Workload, options: AuditOptions) -> bool:
    if options.all_pods:
        return True
    name = workload.runtime_class or ""
    return name in options.runtime_classes if options.runtime_classes else name.startswith("kata")


NOT_KATA = "not for Kata (--all, --runtime-class)"  # said after "N workload(s)"
OTHER_SHARD = "in another shard"


def read_sources(args: tuple[str, ...] | list[str],
                 problems: list[Problem] | None = None) -> list[tuple[str, str]]:
    """(name, text) of every manifest the arguments name (files, folders, '-'). With `problems`, a file
    that cannot be read (binary, not UTF-8) is one problem there, and the others are read."""
    out = []
    for path in manifest_paths(args):
        try:
            out.append(read_manifest(path))
        except ImagefixError as exc:
            if problems is None:
                raise
            problems.append(Problem("<stdin>" if path == "-" else path, None,
                                    str(exc).removeprefix(f"{path}: ")))
    return out


@dataclass
class AuditRun:
    """What one audit saw: results per audited workload, what it left out and why, the images it read.
    A streamed audit (`audit_stream`) keeps no results or workloads, only their counts and images."""

    results: list[ScanResult] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)  # the audited ones, beside `results`
    problems: list[Problem] = field(default_factory=list)  # errors and patch fragments
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> workloads left out
    images: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
    audited: int = 0  # workloads audited
    containers: int = 0  # their containers
    refs: set[str] = field(default_factory=set)  # the images they run

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(file:line, message) of every input error, the shape the formats take."""
        return [(p.where, p.message) for p in self.problems if not p.reason]

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def all_skipped(self) -> dict[str, int]:
        out = dict(self.skipped)
        for problem in self.problems:
            if problem.reason:
                out[problem.reason] = out.get(problem.reason, 0) + 1
        return out


def audit(sources: list[tuple[str, str]], options: AuditOptions, model: BudgetModel, selection: RuleSelection,
          open_image: Callable[[str], Any], images: dict | None = None,
          problems: list[Problem] | None = None) -> AuditRun:
    """One result per audited workload, and what was left out. `images` are images read already
    (reused by `k8s fix` to check what it wrote); `problems` found before (files that could not be read)."""
    run = AuditRun()
    stream = audit_stream(run, sources, options, model, selection, open_image, images, problems)
    for workload, result in stream:
        run.workloads.append(workload)
        run.results.append(result)
    return run


WINDOW = 512  # workloads read ahead of the one audited: their images are being read meanwhile


def audit_stream(run: AuditRun, sources: Iterable[tuple[str, str]], options: AuditOptions, model: BudgetModel,
                 selection: RuleSelection, open_image: Callable[[str], Any], images: dict | None = None,
                 problems: list[Problem] | None = None) -> Iterator[tuple[Workload, ScanResult]]:
    """(workload, result) of each audited workload of the sources in input order, as soon as its images
    are in; what was left out, the counts and the images read go into `run` (complete once the
    iteration ends). See audit_workloads."""
    run.problems.extend(problems or [])
    found = (workload for name, text in sources for workload in iter_workloads(name, text, run.problems))
    return audit_workloads(run, found, options, model, selection, open_image, images)


def audit_workloads(run: AuditRun, found: Iterable[Workload], options: AuditOptions, model: BudgetModel,
                    selection: RuleSelection, open_image: Callable[[str], Any],
                    images: dict | None = None) -> Iterator[tuple[Workload, ScanResult]]:
    """(workload, result) of each workload in scope, as audit_stream says. A pipeline: each image is
    asked for as soon as the first workload naming it is read, and a workload's rules run once its
    images are in (or once WINDOW workloads wait behind it), while the workers read the others.
    Nothing is kept per workload: a 100,000-item List is audited in the memory of its images and of
    WINDOW workloads."""
    reader = ImageReader(options, open_image, images)
    waiting: deque[Workload] = deque()
    try:
        for workload in found:
            if not is_kata(workload, options):
                run.skip(NOT_KATA)
            elif not in_shard(workload, options.shard):
                run.skip(OTHER_SHARD)
            else:
                run.audited += 1
                run.containers += len(workload.containers)
                run.refs.update(c.image for c in workload.containers)
                reader.want(workload)
                waiting.append(workload)
                while waiting and (len(waiting) > WINDOW or reader.ready(waiting[0])):
                    first = waiting.popleft()
                    yield first, _audit_one(first, reader, model, options, selection)
        while waiting:
            first = waiting.popleft()
            yield first, _audit_one(first, reader, model, options, selection)
        run.images = dict(reader.done)
    finally:
        reader.close()


def _audit_one(workload: Workload, reader: ImageReader, model: BudgetModel, options: AuditOptions,
               selection: RuleSelection) -> ScanResult:
    sole = len(workload.containers) == 1
    views = [ContainerView(c, workload.security, *reader.result(c.image), sole=sole)
             for c in workload.containers]
    subject = pod_subject(workload, views, model, options)
    subject.guest_pull = selection.profile != "kata"  # kata-tdx pulls in the guest; `kata` on the host
    kept, suppressed = run_rules(subject, "pod", selection)
    result = ScanResult(workload.title, kept, suppressed)
    result.notes.append(f"{workload.file}: runtime class {workload.runtime_class or '(none)'}; "
                        f"create_container_timeout {subject.model.create_timeout_s} s "
                        f"({subject.timeout_source}); guest {subject.model.guest_memory_mib} MiB "
                        f"({subject.memory_source}); agent.image_pull_timeout "
                        f"{subject.model.image_pull_timeout_s} s; kubelet runtimeRequestTimeout "
                        f"{subject.model.kubelet_timeout_s} s")
    read = [view.image for view in views if view.image is not None]
    result.size_estimated = any(image.size_estimated for image in read)
    guessed = sorted({view.container.image for view in views if view.image is not None
                      and view.image.size_estimated})
    if guessed:
        result.notes.append(f"unpacked sizes of {', '.join(guessed)} are ESTIMATED from compressed sizes: "
                            "--exact counts")
    return result


class ImageReader:
    """Each distinct image read once, `jobs` at a time, from the moment a workload names it. With it,
    the account files the rules read (/etc/passwd and /etc/group, in one pass)."""

    def __init__(self, options: AuditOptions, open_image: Callable[[str], Any],
                 done: dict[str, tuple[Any, str | None]] | None = None) -> None:
        self.options, self.open_image = options, open_image
        self.done = dict(done or {})
        self.refs: set[str] = set()
        self.pending: dict[str, Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=max(1, options.jobs))

    def want(self, workload: Workload) -> None:
        for container in workload.containers:
            self.refs.add(container.image)
            if container.image not in self.done and container.image not in self.pending:
                self.pending[container.image] = self.pool.submit(self._read, container.image)

    def ready(self, workload: Workload) -> bool:
        """Whether every image the workload runs is read (its rules would not wait)."""
        return all(c.image in self.done or self.pending[c.image].done() for c in workload.containers)

    def result(self, ref: str) -> tuple[Any, str | None]:
        """(Image or None, why it could not be read)."""
        if ref not in self.done:
            self.done[ref] = self.pending.pop(ref).result()
        return self.done[ref]

    def results(self) -> dict[str, tuple[Any, str | None]]:
        return {ref: self.result(ref) for ref in sorted(self.refs)}

    def close(self) -> None:
        """Nothing waits for reads nobody will use (an input error stops the run)."""
        self.pool.shutdown(wait=not self.pending, cancel_futures=True)

    def _read(self, ref: str) -> tuple[Any, str | None]:
        try:
            image = self.open_image(ref if self.options.prefer_local else f"docker://{ref}")
        except ImagefixError as exc:
            return None, str(exc)
        if image.transport == "docker":  # every pod rule reads the account files (identity.py)
            with suppress(ImagefixError):  # the rule that needs it reads it again and says what failed
                image.read_file("/etc/passwd")  # and /etc/group, in the same pass
        return image, None


def read_images(workloads: list[Workload], options: AuditOptions,
                open_image: Callable[[str], Any]) -> dict[str, tuple[Any, str | None]]:
    """image -> (Image or None, error) for every image the workloads run."""
    reader = ImageReader(options, open_image)
    try:
        for workload in workloads:
            reader.want(workload)
        return reader.results()
    finally:
        reader.close()


def pod_in_force(workload: Workload, model: BudgetModel, options: AuditOptions) -> ClassValues:
    """What the pod's runtime class has in force: its --kata-config, else what the class ships."""
    config = options.kata_configs.get(workload.runtime_class or "") or options.kata_configs.get("")
    return class_values(workload.runtime_class or "", model, config)


def pod_subject(workload: Workload, views: list[ContainerView], model: BudgetModel,
             options: AuditOptions) -> PodSubject:
    """The model with the values in force for this pod: annotation (as Kata parses it), else the
    class's config, else what the class ships; the guest's pull limit from kernel_params."""
    in_force = pod_in_force(workload, model, options)
    timeout = number_or_none(workload.raw_annotations.get(TIMEOUT_ANNOTATION), in_force.runtime)
    memory = number_or_none(workload.raw_annotations.get(MEMORY_ANNOTATION), in_force.runtime)
    if not in_force.memory_annotation:
        memory = None  # not enabled: Go refuses the pod (KIF410 says so), runtime-rs ignores it
    timeout_source = "its annotation" if timeout is not None else in_force.source
    memory_source = "its annotation" if memory is not None else in_force.source
    limits = sum(c.memory_limit or 0 for c in workload.containers if not c.init) // MIB
    if limits:
        memory_source += f" + {limits} MiB of memory limits (static sizing)"
    limit = pull_limit(in_force, workload.raw_annotations)
    pod_model = replace(model, create_timeout_s=timeout if timeout is not None else in_force.timeout_s,
                        guest_memory_mib=(memory if memory is not None else in_force.memory_mib) + limits,
                        image_pull_timeout_s=limit)
    return PodSubject(workload, views, pod_model, timeout_source, memory_source)
