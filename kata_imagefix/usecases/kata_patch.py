"""`kata patch` as one call: what to set (asked, auto from images, the recipe's misplaced value), where
(main file, through links, or a drop-in), checked against the effective value before anything is written.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImagefixError
from ..kata.config import KataConfig, load_config
from ..kata.config_edits import (
    dropin_text,
    kernel_params_for,
    patch_config,
    repair_main,
    shadowing,
    timeout_to_keep,
)
from ..kata.toml_lines import TIMEOUT_KEY
from ..model.budget import BudgetEstimate, BudgetModel
from .budgets import ImageSizes, KataBudget


@dataclass
class KataPatchRequest:
    config_file: str
    timeout: str | int | None = None  # "auto", seconds, or None
    memory: str | int | None = None  # "auto", MiB, or None
    runtime: str | None = None
    drop_in: str | None = None
    images: tuple[str, ...] = ()  # the images the auto values are for
    exact: bool = False  # registry layers streamed and counted, not sized from their trailers
    shared: bool = False  # write a drop-in whose config.d other configurations read too


@dataclass
class KataPatch:
    """The new text of one file, why, and what a user should know; nothing written yet."""

    config: KataConfig
    write_to: Path
    original: str
    text: str
    changes: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def diff(self) -> str:
        name = str(self.write_to).lstrip("/")
        return "".join(difflib.unified_diff(self.original.splitlines(True), self.text.splitlines(True),
                                            f"a/{name}", f"b/{name}"))


def plan_kata_patch(request: KataPatchRequest, budget: KataBudget) -> KataPatch:
    """Everything `kata patch` decides; raises when the change would not take effect."""
    if "auto" in (request.timeout, request.memory) and not request.images:
        raise ImagefixError("auto needs the images: add --image REF (one or more)")
    config, repairs = repair_main(load_config(request.config_file, request.runtime))
    if repairs and request.drop_in:
        raise ImagefixError(f"{request.config_file} is not valid TOML (imagefix would have {repairs[0]}"
                            f"): a drop-in cannot repair it and Kata would not load the configuration; run "
                            f"`imagefix kata patch {request.config_file} --in-place` first (it repairs the "
                            "file atomically and keeps a backup)")
    model = budget.for_config(config)
    estimates = ImageSizes(request.images, request.exact).estimates(model)
    timeout, memory, why_timeout, why_memory = _auto_values(config, model, estimates, request)
    timeout, why_timeout = timeout_to_keep(config, timeout, why_timeout)
    if request.drop_in:
        write_to = Path(request.drop_in)
        if write_to.resolve().parent != config.dropin_dir.resolve():
            raise ImagefixError(f"{request.drop_in} is not in {config.dropin_dir}, the config.d Kata reads "
                                f"for {request.config_file}: it would change nothing")
        text, changes = dropin_text(config, str(write_to), timeout=timeout, memory=memory,
                                    why_timeout=why_timeout or "set by imagefix",
                                    why_memory=why_memory or "set by imagefix")
    else:
        write_to = Path(request.config_file)
        text, changes = patch_config(config, timeout=timeout, memory=memory, why_timeout=why_timeout,
                                     why_memory=why_memory,
                                     kernel_params=kernel_params_for(config, config.main, timeout))
    # what each auto value was sized from, and whether that size is exact or estimated (#23)
    changes += [f"auto: {why}" for asked, value, why in ((request.timeout, timeout, why_timeout),
                                                         (request.memory, memory, why_memory))
                if asked == "auto" and value is not None and why]
    original = write_to.read_text() if write_to.is_file() else ""
    misplaced = any(e.table != config.timeout_table for e in config.main.entries_named(TIMEOUT_KEY))
    config.main.release()  # its parsed form is not needed again: free it before the result is parsed
    problems = shadowing(config.with_text(str(write_to), text), timeout=timeout, memory=memory)
    if problems:
        verb = "the change" if text != original else "the config"
        raise ImagefixError(f"{verb} would not take effect: {'; '.join(problems)}")
    patch = KataPatch(config, write_to, original, text, repairs + changes)
    if request.drop_in:
        patch.notes += _shared_dropin(config, write_to, text, request.shared)
    if request.drop_in and misplaced:
        patch.notes.append("the misplaced create_container_timeout in the main file is still there "
                           "(ignored by Kata)")
    if not request.drop_in and config.kata_deploy:
        patch.notes.append(f"{config.resolved} is managed by kata-deploy and replaced on upgrade; keep "
                           f"changes in a drop-in: --drop-in {config.dropin_dir}/90-imagefix.toml")
    return patch


def _auto_values(config: KataConfig, model: BudgetModel, estimates: list[tuple[str, BudgetEstimate]],
                 request: KataPatchRequest) -> tuple[int | None, int | None, str, str]:
    """The asked values, with `auto` turned into what the images need (only when above what is in force)."""
    timeout, memory = request.timeout, request.memory
    why_timeout = why_memory = ""
    if estimates:
        slowest = max(estimates, key=lambda e: e[1].needed_timeout_seconds)
        biggest = max(estimates, key=lambda e: e[1].unpacked_bytes)
        why_timeout = (f"guest pull + unpack of {slowest[0]} needs ~"
                       f"{slowest[1].needed_timeout_seconds:.0f} s with margin (size {slowest[1].size_said})")
        why_memory = (f"{biggest[0]} unpacks ({biggest[1].size_said} size) into a tmpfs of "
                      f"{model.tmpfs_fraction:.0%} of guest memory")
        if timeout == "auto":
            needed = slowest[1].recommended_timeout_seconds
            timeout = needed if needed > config.timeout[0] else None
        if memory == "auto":
            needed = biggest[1].recommended_memory_mib
            memory = needed if needed > config.memory[0] else None
    return timeout, memory, why_timeout, why_memory  # type: ignore[return-value]


def _shared_dropin(config: KataConfig, write_to: Path, text: str, allowed: bool) -> list[str]:
    """Every other configuration that reads the same config.d (the files beside the resolved one -
    /etc/kata-containers, /opt/kata/share/defaults/kata-containers outside kata-deploy's per-shim
    folders), with what the drop-in would change for it; refused unless asked for."""
    folder = config.dropin_dir.parent.resolve()
    own = (config.resolved or Path(config.main.path)).resolve()
    others = sorted(p for p in folder.glob("configuration*.toml")
                    if p.resolve() != own and p.resolve().parent == folder and p.is_file())
    lines = []
    for path in others:
        try:
            before = load_config(path)
        except ImagefixError:
            continue
        after = before.with_text(str(write_to), text)
        lines.append(f"{path.name}: {_values(before)} -> {_values(after)}")
    if not lines:
        return []
    if not allowed:
        raise ImagefixError(f"{config.dropin_dir} is read by {len(lines)} other configuration(s) too, and "
                            f"the drop-in would change them: {'; '.join(lines)}; use a config.d of its own "
                            "(a per-shim folder, as kata-deploy 4.1 installs) or add --shared-drop-in")
    return [f"this config.d is shared: {line}" for line in lines]


def _values(config: KataConfig) -> str:
    hypervisors = config.hypervisors()
    two = f", {len(hypervisors)} hypervisor tables ({', '.join(hypervisors)})" if len(hypervisors) > 1 else ""
    if not config.loads:
        return "refused by the runtime"
    return (f"create_container_timeout {config.timeout[0]} s, default_memory {config.memory[0]} MiB, "
            f"agent.image_pull_timeout {config.image_pull_timeout} s{two}")
