"""`imagefix k8s check`: every Kata workload of the manifests through the pod rules (KIF4xx).

Images are read the way a node pulls them - from the registry, without
pulling (the registry source, its layer cache and credentials) - each
distinct image once, `jobs` at a time. The values in force for a pod are its
annotations, else its runtime class's Kata config, else the budget defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ImagefixError
from ..kata.budget import BudgetModel
from ..rules.pod_subject import ContainerView, PodSubject
from ..scan import RuleSelection, ScanResult, run_rules
from .manifests import Workload, manifest_paths, read_manifest, workloads_in
from .pod import MEMORY_ANNOTATION, TIMEOUT_ANNOTATION, _int_or_none, class_values

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


def read_sources(args: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(name, text) of every manifest the arguments name (files, folders, '-')."""
    return [read_manifest(path) for path in manifest_paths(args)]


def audit(sources: list[tuple[str, str]], options: AuditOptions, model: BudgetModel, selection: RuleSelection,
          open_image: Callable[[str], Any], images: dict | None = None) -> tuple[list[ScanResult], int]:
    """(one result per audited workload, how many workloads were skipped as not Kata). `images` are
    images read already (reused by `k8s fix` to check what it wrote)."""
    workloads = [w for name, text in sources for w in workloads_in(name, text)]
    chosen = [w for w in workloads if is_kata(w, options) and in_shard(w, options.shard)]
    images = images if images is not None else read_images(image_users(chosen), options, open_image)
    results = []
    for workload in chosen:
        views = [ContainerView(c, workload.security, *images[c.image]) for c in workload.containers]
        subject = _subject(workload, views, model, options)
        kept, suppressed = run_rules(subject, "pod", selection)
        result = ScanResult(workload.title, kept, suppressed)
        result.notes.append(f"{workload.file}: runtime class {workload.runtime_class or '(none)'}; "
                            f"create_container_timeout {subject.model.create_timeout_s} s "
                            f"({subject.timeout_source}); guest {subject.model.guest_memory_mib} MiB "
                            f"({subject.memory_source})")
        results.append(result)
    return results, len(workloads) - len(chosen)


def image_users(workloads: list[Workload]) -> dict[str, list[ContainerView]]:
    """image -> the containers that run it (without the image yet)."""
    users: dict[str, list[ContainerView]] = {}
    for workload in workloads:
        for container in workload.containers:
            users.setdefault(container.image, []).append(ContainerView(container, workload.security))
    return users


def read_images(users: dict[str, list[ContainerView]], options: AuditOptions,
                open_image: Callable[[str], Any]) -> dict[str, tuple[Any, str | None]]:
    """image -> (Image or None, error): each distinct image once, `jobs` at a time. The account files
    the rules will read for the containers that use it (`users`) are read here too, in parallel."""
    def one(ref: str) -> tuple[Any, str | None]:
        try:
            image = open_image(ref if options.prefer_local else f"docker://{ref}")
        except ImagefixError as exc:
            return None, str(exc)
        if image.transport == "docker" and any(view.reads_accounts(image) for view in users[ref]):
            with suppress(ImagefixError):  # the rule that needs it reads it again and says what failed
                image.read_file("/etc/passwd")  # and /etc/group, in the same pass
        return image, None

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        ordered = sorted(users)
        return dict(zip(ordered, pool.map(one, ordered), strict=True))


def _subject(workload: Workload, views: list[ContainerView], model: BudgetModel,
             options: AuditOptions) -> PodSubject:
    """The model with the values in force for this pod: annotation, else class config, else defaults."""
    config = options.kata_configs.get(workload.runtime_class or "") or options.kata_configs.get("")
    in_force = class_values(workload.runtime_class or "", model, config)
    timeout = _int_or_none(workload.annotations.get(TIMEOUT_ANNOTATION))
    memory = _int_or_none(workload.annotations.get(MEMORY_ANNOTATION))
    timeout_source = "its annotation" if timeout is not None else in_force.source
    memory_source = "its annotation" if memory is not None else in_force.source
    limits = sum(c.memory_limit or 0 for c in workload.containers if not c.init) // MIB
    if limits:
        memory_source += f" + {limits} MiB of memory limits (static sizing)"
    pod_model = replace(model, create_timeout_s=timeout if timeout is not None else in_force.timeout_s,
                        guest_memory_mib=(memory if memory is not None else in_force.memory_mib) + limits)
    return PodSubject(workload, views, pod_model, timeout_source, memory_source)
