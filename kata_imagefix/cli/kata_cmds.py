"""`imagefix kata check|patch`: the Kata configuration as Kata loads it."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ImagefixError
from .app import main
from .options import (
    AUTO_OR_INT,
    budget_options,
    edit_options,
    edit_policy,
    emit_results,
    exact_option,
    exit_code,
    format_option,
    kata_budget,
    rule_selection,
    selection_options,
)


@main.group()
def kata() -> None:
    """Check and fix Kata runtime configuration (configuration-qemu-tdx.toml).

    \b
    Example:
      imagefix kata check /etc/kata-containers/configuration-qemu-tdx.toml
    """


@kata.command("check")
@click.argument("config_files", metavar="CONFIG...", nargs=-1, required=True)
@click.option("--image", "images", multiple=True, metavar="REF",
              help="Images the config must serve (budget: timeout and default_memory).")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@exact_option
@format_option
@selection_options
@budget_options
@click.pass_context
def kata_check(ctx: click.Context, config_files: tuple[str, ...], images: tuple[str, ...],
               runtime: str | None, exact: bool, fmt: str, **kw: Any) -> None:
    """Find Kata config settings that are ignored, invalid, or too low for your images.

    A drop-in (a file in config.d/) checks the configuration*.toml files it belongs to.

    \b
    Example:
      imagefix kata check configuration-qemu-tdx.toml --image mysql:8.4
    """
    from ..usecases.budgets import ImageSizes
    from ..usecases.kata_check import check_configs

    selection, fail_on = rule_selection(ctx, kw)
    results = check_configs(config_files, runtime, selection, kata_budget(ctx, kw), ImageSizes(images, exact))
    emit_results(results, fmt, fail_on, selection.profile, [], key="files", show_location=True)
    ctx.exit(exit_code(results, fail_on, []))


@kata.command("patch")
@click.argument("config_file", metavar="CONFIG")
@click.option("--create-container-timeout", "timeout", type=AUTO_OR_INT, metavar="auto|SECONDS",
              help="Set it (auto: from the images' budget). Misplaced copies are always moved.")
@click.option("--default-memory", "memory", type=AUTO_OR_INT, metavar="auto|MiB",
              help="Set [hypervisor.*] default_memory.")
@click.option("--image", "images", multiple=True, metavar="REF", help="Images for the auto values.")
@click.option("--runtime", type=click.Choice(["go", "rs"]), help="Kata runtime [default: detected].")
@edit_options("config")
@click.option("--drop-in", type=click.Path(dir_okay=False),
              help="Write only the overrides to this drop-in (e.g. config.d/50-imagefix.toml).")
@click.option("--shared-drop-in", "shared", is_flag=True,
              help="Write the drop-in even where other configurations read the same config.d (each is "
                   "named with its values before and after).")
@exact_option
@budget_options
@click.pass_context
def kata_patch(ctx: click.Context, config_file: str, timeout: str | int | None, memory: str | int | None,
               images: tuple[str, ...], runtime: str | None, drop_in: str | None, shared: bool,
               exact: bool, **kw: Any) -> None:
    """Put create_container_timeout where Kata reads it and size it; every comment stays.

    \b
    Example:
      imagefix kata patch configuration-qemu-tdx.toml --in-place --create-container-timeout auto
    """
    from dataclasses import replace

    from ..usecases.kata_patch import KataPatchRequest, plan_kata_patch
    from ..writing import Edit

    policy = edit_policy(kw)
    if drop_in and (policy.output is not None or policy.in_place or policy.check):
        raise ImagefixError("use one of -o OUT, --in-place, --drop-in FILE, --check")
    policy.check_usage([config_file], what="config")
    if drop_in:
        policy = replace(policy, in_place=True)  # the drop-in is written as --in-place writes CONFIG
    request = KataPatchRequest(config_file, timeout, memory, runtime, drop_in, images, exact=exact,
                               shared=shared)
    patch = plan_kata_patch(request, kata_budget(ctx, kw))
    report = (lambda t: click.echo(t, err=True)) if policy.messages_to_stderr else click.echo
    # no backup beside a drop-in: Kata loads every file of config.d, a .bak too
    written = policy.apply(Edit(config_file, patch.original, patch.text, write_to=patch.write_to,
                                backup=not drop_in))
    if written.backup is not None:
        report(f"kept the original as {written.backup}")
    would = "" if written.where is not None or not patch.changes else \
        f"{policy.said(written, 'written', 'would change')}: "
    for change in patch.changes or ["unchanged: the config already does what was asked"]:
        report(f"{would}{change}")
    for note in patch.notes if policy.in_place else []:
        report(f"note: {note}")
    ctx.exit(policy.exit_code(patch.changed))
