"""`imagefix kata check|patch` and `imagefix k8s`: what lives around the image."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ImagefixError
from .app import main
from .options import (
    auto_or_int,
    budget_model,
    budget_options,
    config_budget_model,
    emit_results,
    estimates_for,
    exit_code,
    format_option,
    rule_selection,
    selection_options,
)


@main.group()
def kata() -> None:
    """Check and fix Kata runtime configuration (configuration-qemu-tdx.toml)."""


@kata.command("check")
@click.argument("config_file", metavar="CONFIG")
@click.option("--image", "images", multiple=True, metavar="REF",
              help="Images the config must serve (budget: timeout and default_memory).")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@format_option
@selection_options
@budget_options
@click.pass_context
def kata_check(ctx: click.Context, config_file: str, images: tuple[str, ...], runtime: str | None,
               fmt: str, **kw: Any) -> None:
    """Find Kata config settings that are ignored, invalid, or too low for your images."""
    from ..kata.config import load_config
    from ..rules.kata_subject import KataSubject
    from ..scan import ScanResult, run_rules

    selection, fail_on = rule_selection(ctx, kw)
    config = load_config(config_file, runtime)
    model = config_budget_model(ctx, kw, config)
    subject = KataSubject(config, estimates_for(images, model))
    kept, suppressed = run_rules(subject, "kata", selection)
    result = ScanResult(config_file, kept, suppressed)
    dropins = f"; drop-ins: {', '.join(d.path for d in config.dropins)}" if config.dropins else ""
    result.notes.append(f"runtime: {config.runtime} ({config.runtime_reason}); "
                        f"effective create_container_timeout {config.timeout[0]} s, "
                        f"default_memory {config.memory[0]} MiB{dropins}")
    emit_results([result], fmt, fail_on, selection.profile, [], key="files", show_location=True)
    ctx.exit(exit_code([result], fail_on, []))


@kata.command("patch")
@click.argument("config_file", metavar="CONFIG")
@click.option("--create-container-timeout", "timeout", metavar="auto|SECONDS",
              help="Set it (auto: from the images' budget). Misplaced copies are always moved.")
@click.option("--default-memory", "memory", metavar="auto|MiB", help="Set [hypervisor.*] default_memory.")
@click.option("--image", "images", multiple=True, metavar="REF", help="Images for the auto values.")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the patched config here.")
@click.option("--in-place", is_flag=True,
              help="Rewrite CONFIG (through symlinks) atomically, keeping a numbered CONFIG.bak.")
@click.option("--drop-in", type=click.Path(dir_okay=False),
              help="Write only the overrides to this drop-in (e.g. config.d/50-imagefix.toml).")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff.")
@click.option("--force", is_flag=True, help="Write even a read-only file or one with other hard links.")
@budget_options
@click.pass_context
def kata_patch(ctx: click.Context, config_file: str, timeout: str | None, memory: str | None,
               images: tuple[str, ...], runtime: str | None, output: str | None, in_place: bool,
               drop_in: str | None, show_diff: bool, force: bool, **kw: Any) -> None:
    """Put create_container_timeout where Kata reads it and size it; every comment stays."""
    import difflib
    from pathlib import Path

    from ..fileio import write_atomic
    from ..kata.config import dropin_text, load_config, patch_config, repair_main, timeout_to_keep

    if sum(bool(x) for x in (output, in_place, drop_in)) > 1:
        raise ImagefixError("use one of -o OUT, --in-place, --drop-in FILE")
    want_timeout = auto_or_int(timeout, "--create-container-timeout")
    want_memory = auto_or_int(memory, "--default-memory")
    if "auto" in (want_timeout, want_memory) and not images:
        raise ImagefixError("auto needs the images: add --image REF (one or more)")
    config, repairs = repair_main(load_config(config_file, runtime))
    model = config_budget_model(ctx, kw, config)
    estimates = estimates_for(images, model)
    why_timeout = why_memory = ""
    if estimates:
        slowest = max(estimates, key=lambda e: e[1].needed_timeout_seconds)
        biggest = max(estimates, key=lambda e: e[1].unpacked_bytes)
        why_timeout = (f"guest pull + unpack of {slowest[0]} needs ~"
                       f"{slowest[1].needed_timeout_seconds:.0f} s with margin")
        why_memory = f"{biggest[0]} unpacks into a tmpfs of {model.tmpfs_fraction:.0%} of guest memory"
        if want_timeout == "auto":
            needed = slowest[1].recommended_timeout_seconds
            want_timeout = needed if needed > config.timeout[0] else None
        if want_memory == "auto":
            needed = biggest[1].recommended_memory_mib
            want_memory = needed if needed > config.memory[0] else None
    want_timeout, why_timeout = timeout_to_keep(config, want_timeout, why_timeout)
    if drop_in:
        target = Path(drop_in)
        if target.resolve().parent != config.dropin_dir.resolve():
            raise ImagefixError(f"{drop_in} is not in {config.dropin_dir}, the config.d Kata reads for "
                                f"{config_file}: it would change nothing")
        text, changes = dropin_text(config, str(target), timeout=want_timeout, memory=want_memory,
                                    why_timeout=why_timeout or "set by imagefix",
                                    why_memory=why_memory or "set by imagefix")
        write_to = target
    else:
        text, changes = patch_config(config, timeout=want_timeout, memory=want_memory,
                                     why_timeout=why_timeout, why_memory=why_memory)
        write_to = Path(config_file)
    original = Path(write_to).read_text() if Path(write_to).is_file() else ""
    after = config.with_text(str(write_to), text)
    _check_effective(config, after, want_timeout, want_memory, text != original)
    if show_diff and text != original:
        name = str(write_to).lstrip("/")
        click.echo("".join(difflib.unified_diff(original.splitlines(True), text.splitlines(True),
                                                f"a/{name}", f"b/{name}")), nl=False)
    writes = bool(output or in_place or drop_in)
    report = click.echo if writes else (lambda t: click.echo(t, err=True))
    if output:
        write_atomic(output, text.encode(), force=force)
    elif (in_place or drop_in) and text != original:
        target_dir = Path(write_to).parent
        target_dir.mkdir(parents=True, exist_ok=True)
        saved = write_atomic(write_to, text.encode(), backup=in_place, force=force)
        if saved is not None:
            report(f"kept the original as {saved}")
    elif not writes and not show_diff:
        click.echo(text, nl=False)
    for change in repairs + changes or ["unchanged: the config already does what was asked"]:
        report(change)
    if drop_in and _misplaced(config):
        report(f"note: {TIMEOUT_NOTE}")
    if in_place and config.kata_deploy:
        report(f"note: {config.resolved} is managed by kata-deploy and replaced on upgrade; keep "
               f"changes in a drop-in: --drop-in {config.dropin_dir}/90-imagefix.toml")


def _check_effective(before, after, timeout: int | None, memory: int | None, changed: bool) -> None:
    """Fail loudly when Kata would not see the asked values after the write (a later drop-in
    shadows them, a broken entry stops the load)."""
    from ..kata.config import shadowing

    problems = shadowing(after, timeout=timeout, memory=memory)
    if problems:
        verb = "the change" if changed else "the config"
        raise ImagefixError(f"{verb} would not take effect: {'; '.join(problems)}")


TIMEOUT_NOTE = "the misplaced create_container_timeout in the main file is still there (ignored by Kata)"


def _misplaced(config) -> bool:
    from ..kata.config import TIMEOUT_KEY

    return any(e.table != config.timeout_table for e in config.main.entries_named(TIMEOUT_KEY))


@main.command()
@click.argument("ref")
@click.option("--runtime-class", default="kata-qemu-tdx", show_default=True)
@click.option("--fs-group", type=click.IntRange(0), help="Pod fsGroup for volumes.")
@click.option("--image-name", metavar="NAME",
              help="The image as manifests name it [default: REF without its transport].")
@click.option("--patch", "manifest", type=click.Path(dir_okay=False),
              help="Apply to every container running the image in this YAML (multi-document).")
@click.option("--kustomize", is_flag=True, help="With --patch: print strategic-merge patches instead.")
@click.option("--kata-config", "kata_config", type=click.Path(dir_okay=False), metavar="FILE",
              help="The runtime class's Kata config on the nodes: its values in force (drop-ins included) "
                   "and whether it enables the default_memory annotation.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@budget_options
@click.pass_context
def k8s(ctx: click.Context, ref: str, runtime_class: str, fs_group: int | None, image_name: str | None,
        manifest: str | None, kustomize: bool, kata_config: str | None, output: str | None,
        **kw: Any) -> None:
    """Print what a pod needs to run REF on Kata (YAML, a comment on every value)."""
    from .. import __version__
    from ..fileio import decode_text, read_input, write_atomic
    from ..image.reference import parse_image_ref
    from ..image.sources import open_image
    from ..k8s.pod import kustomize_patches, manifest_name, patch_manifest, pod_needs, pod_yaml

    if kustomize and not manifest:
        raise ImagefixError("--kustomize needs --patch MANIFEST (the workloads to patch)")
    model = budget_model(ctx, kw)
    parsed = parse_image_ref(ref)
    manifest_text = None
    if manifest:
        manifest_text = decode_text(read_input(manifest, "manifest"), manifest, "a Kubernetes manifest")
    config = None
    if kata_config:
        from ..kata.config import load_config

        config = load_config(kata_config)
    image = open_image(parsed)
    if image_name is None:
        image_name = manifest_name(parsed, image)
    needs = pod_needs(image, model, image_name=image_name, runtime_class=runtime_class, fs_group=fs_group,
                      config=config)
    if manifest_text is not None:
        if kustomize:
            text = kustomize_patches(manifest_text, needs)
        else:
            text, changed = patch_manifest(manifest_text, needs, manifest)
            for line in changed:
                click.echo(f"patched {line}", err=True)
    else:
        text = pod_yaml(needs, f"imagefix {__version__}: what a pod running {image_name} needs on "
                               f"{runtime_class}")
    if output:
        write_atomic(output, text.encode())
    else:
        click.echo(text, nl=False)
