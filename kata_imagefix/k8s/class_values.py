"""What a runtime class gives a pod before any annotation: from the node's Kata config when given, else
what the class ships (kata/classes.py), else - a class Kata does not ship - floors that nothing written
may go below."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..kata.classes import image_pull_timeout
from ..model.budget import BudgetModel


# Runtime classes whose shipped configs enable the default_memory annotation (Kata 4.1, kata/classes.py);
# on any other class the Go runtime refuses a pod carrying it (docs/kata-config.md).
def _memory_annotation_classes() -> tuple[str, ...]:
    from ..kata.classes import SHIPPED

    return tuple(name for name, c in SHIPPED.items() if c.enables("default_memory"))


MEMORY_ANNOTATION_CLASSES = _memory_annotation_classes()


@dataclass(frozen=True)
class ClassValues:
    """What a runtime class gives a pod without annotations, and what it lets a pod annotate.

    `floor_*` is the least imagefix may write: the value in force when known, else the highest any
    shipped class has (an unknown class must never be given less than it ships)."""

    timeout_s: int
    memory_mib: int
    memory_annotation: bool
    source: str  # the config file read, the shipped class, or why the values are unknown
    known: bool = True
    floor_timeout_s: int = 0
    floor_memory_mib: int = 0
    kernel_params_annotation: bool = False
    image_pull_timeout_s: int = 1200  # agent.image_pull_timeout in force (the kernel_params)
    kernel_params: str = ""  # as the class's config has them (for a kernel_params annotation)
    runtime: str = "go"  # how annotation values are parsed (Go: the strictest, when unknown)

    @property
    def timeout_floor(self) -> int:
        return max(self.timeout_s, self.floor_timeout_s)

    @property
    def memory_floor(self) -> int:
        return max(self.memory_mib, self.floor_memory_mib)


def class_values(runtime_class: str, model: BudgetModel, config: Any = None) -> ClassValues:
    """From the node's Kata config when given (main file + drop-ins), else what the class ships
    (kata/classes.py), else - a class Kata does not ship - the budget model's values for judging,
    with floors so that nothing written could be below what a shipped class has.

    --create-timeout/--guest-memory, when set to other than their defaults, say what is in force."""
    from ..kata.annotations import annotation_enabled

    if config is not None:
        patterns = config.effective((*config.hypervisor_table(), "enable_annotations"), [])[0] or []
        params = config.kernel_params
        return ClassValues(int(config.timeout[0]), int(config.memory[0]),
                           annotation_enabled(patterns, "default_memory", config.runtime), config.main.path,
                           kernel_params_annotation=annotation_enabled(patterns, "kernel_params",
                                                                       config.runtime),
                           image_pull_timeout_s=image_pull_timeout(params), kernel_params=params,
                           runtime=config.runtime)
    try:
        return _without_config(runtime_class, model)
    except TypeError:  # a model that cannot be a key (an unhashable field): worked out every time
        return _without_config.__wrapped__(runtime_class, model)


@functools.lru_cache(maxsize=256)
def _without_config(runtime_class: str, model: BudgetModel) -> ClassValues:
    """class_values without a Kata config: the same for every pod of a class (the webhook asks per pod)."""
    from ..kata.classes import (
        DEFAULT_IMAGE_PULL_TIMEOUT,
        HIGHEST_MEMORY_MIB,
        HIGHEST_TIMEOUT_S,
        shipped_class,
    )

    timeout_set, memory_set = model.says("create_timeout_s"), model.says("guest_memory_mib")
    shipped = shipped_class(runtime_class)
    if shipped is not None:
        return ClassValues(model.create_timeout_s if timeout_set else shipped.timeout_s,
                           model.guest_memory_mib if memory_set else shipped.memory_mib,
                           shipped.enables("default_memory"), shipped.source,
                           kernel_params_annotation=shipped.enables("kernel_params"),
                           image_pull_timeout_s=DEFAULT_IMAGE_PULL_TIMEOUT, runtime=shipped.runtime)
    return ClassValues(model.create_timeout_s, model.guest_memory_mib, False,
                       f"runtime class {runtime_class or '(none)'} is not one Kata 4.1 ships: its values "
                       "are unknown (pass --kata-config CLASS=FILE)", known=False,
                       floor_timeout_s=0 if timeout_set else HIGHEST_TIMEOUT_S,
                       floor_memory_mib=0 if memory_set else HIGHEST_MEMORY_MIB,
                       image_pull_timeout_s=DEFAULT_IMAGE_PULL_TIMEOUT)


def unknown_class_note(in_force: ClassValues, runtime_class: str, needed_s: int) -> str | None:
    """What to say when an unknown class keeps imagefix from writing a timeout the image needs."""
    if in_force.known or needed_s <= in_force.timeout_s or needed_s > in_force.timeout_floor:
        return None
    return (f"{runtime_class or 'this runtime class'} is not a class Kata 4.1 ships, so its values are "
            f"unknown: imagefix writes no create_container_timeout below {in_force.timeout_floor} s (a "
            f"shipped class has that much); pass --kata-config {runtime_class or 'CLASS'}=FILE (the "
            f"node's config) or --create-timeout S (the value in force) to size it to the {needed_s} s "
            "needed")
