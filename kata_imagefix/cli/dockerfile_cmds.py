"""`imagefix lint` and `imagefix patch`: Dockerfiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..errors import ImagefixError
from ..output.untrusted import for_terminal
from .app import main
from .options import (
    edit_options,
    edit_policy,
    emit_results,
    exit_code,
    format_option,
    rule_selection,
    selection_options,
    stacked,
    user_mode_option,
)


def _build_args(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ImagefixError(f"--build-arg takes NAME=VALUE, not {item!r}")
        out[name] = value
    return out


def _base_opener(resolve: bool):
    """Opens FROM images for --resolve-base (daemon first, as `scan` does), once per name."""
    if not resolve:
        return None
    from ..image.sources import open_image

    cache: dict[str, Any] = {}

    def open_base(ref: str):
        if ref not in cache:
            cache[ref] = open_image(ref)
        return cache[ref]

    return open_base


def _load_dockerfile(path: str, build_args: dict[str, str]):
    from ..dockerfile.parse import MAX_BYTES, parse_dockerfile
    from ..fileio import read_input

    data = read_input(path, "Dockerfile", MAX_BYTES)
    return parse_dockerfile(data, "<stdin>" if path == "-" else path, build_args)


def dockerfile_options(func: Callable) -> Callable:
    options = [
        click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE",
                     help="Override an ARG, as docker build does."),
        click.option("--target", metavar="STAGE", help="Check this stage instead of the last one."),
        click.option("--resolve-base", is_flag=True,
                     help="Look up the FROM image (local engine) for inherited users and their ids."),
    ]
    return stacked(options, func)


@main.command()
@click.argument("dockerfiles", nargs=-1, required=True)
@format_option
@selection_options
@dockerfile_options
@click.pass_context
def lint(ctx: click.Context, dockerfiles: tuple[str, ...], fmt: str, build_args: tuple[str, ...],
         target: str | None, resolve_base: bool, **kw: Any) -> None:
    """Find USER problems in Dockerfiles ('-' reads stdin), at the line that causes them.

    \b
    Example:
      imagefix lint Dockerfile --resolve-base --format gnu
    """
    from ..dockerfile.lint import lint as lint_one

    selection, fail_on = rule_selection(ctx, kw)
    args = _build_args(build_args)
    open_base = _base_opener(resolve_base)
    results, errors = [], []
    for path in dockerfiles:
        try:
            results.append(lint_one(_load_dockerfile(path, args), selection, target=target,
                                    open_base=open_base))
        except ImagefixError as exc:
            errors.append((path, str(exc)))
            click.echo(f"imagefix: error: {for_terminal(exc)}", err=True)
    emit_results(results, fmt, fail_on, selection.profile, errors, key="files", show_location=True)
    ctx.exit(exit_code(results, fail_on, errors))


@main.command()
@click.argument("dockerfiles", nargs=-1, required=True)
@edit_options("Dockerfile")
@user_mode_option
@dockerfile_options
@click.pass_context
def patch(ctx: click.Context, dockerfiles: tuple[str, ...], user_mode: str, build_args: tuple[str, ...],
          target: str | None, resolve_base: bool, **kw: Any) -> None:
    """Write Dockerfiles whose USER works on kata-qemu-tdx; every other byte stays as it was.

    \b
    Example:
      imagefix patch Dockerfile --in-place
    """
    from ..dockerfile.patch import patch_file
    from ..writing import Edit

    policy = edit_policy(kw)
    policy.check_usage(dockerfiles, what="Dockerfile")
    args, open_base = _build_args(build_args), _base_opener(resolve_base)
    failed = would_change = False
    report = (lambda text: click.echo(text, err=True)) if policy.messages_to_stderr else click.echo
    for path in dockerfiles:
        try:
            outcome = patch_file(path, user_mode, target=target, build_args=args, open_base=open_base)
            written = policy.apply(Edit(outcome.path, outcome.original, outcome.text,
                                        write_to=None if path == "-" else path))
        except ImagefixError as exc:
            failed = True
            click.echo(f"imagefix: error: {for_terminal(exc)}", err=True)
            continue
        would_change |= outcome.changed
        if written.backup is not None:
            report(f"kept the original as {written.backup}")
        if outcome.changed:
            dest = f" -> {written.where}" if written.where not in (None, "<stdout>", path) else ""
            report(f"{policy.said(written, 'patched', 'would patch')} {outcome.path}{dest}: "
                   f"{outcome.description}")
            for note in outcome.notes:
                report(f"  note: {note}")
        else:
            report(f"unchanged {outcome.path}: its USER needs no change in {user_mode} mode")
    ctx.exit(policy.exit_code(would_change, failed))
