"""`imagefix fix`: rebuild (or rewrite in the registry) and prove it."""

from __future__ import annotations

from typing import Any

import click

from ..fix.plan import DISTROLESS, VARIANTS
from ..output import FIX_FORMATS
from .app import main
from .options import registry_flags, registry_options, user_mode_option


@main.command()
@click.argument("ref")
@click.option("--variant", type=click.Choice(list(VARIANTS)), default="user", show_default=True,
              help="; ".join(f"{name}: {what}" for name, (_, what) in VARIANTS.items()))
@user_mode_option
@click.option("--runtime-base", metavar="REF",
              help="Runtime stage image (multistage; overrides distroless). It must be in the local "
                   "engine (docker pull it first): the build pulls nothing.")
@click.option("--keep", multiple=True, metavar="PATH",
              help="Path to copy into the runtime stage (repeatable).")
@click.option("--distroless", default="static", show_default=True, type=click.Choice(list(DISTROLESS)),
              help="Which distroless runtime (-debian13); like --runtime-base, it must be in the "
                   "local engine.")
@click.option("--template-dir", type=click.Path(file_okay=False, exists=True),
              help="Your own templates (same names as the shipped ones win).")
@click.option("--tag", "new_tag", metavar="NEWREF",
              help="Tag for the fixed image [default: <repo>:<tag>-kata].")
@click.option("--no-build", is_flag=True, help="Only write the rendered Dockerfile (needs -o DIR).")
@click.option("-o", "--output", "out_dir", metavar="DIR|-",
              help="Folder for the Dockerfile ('-': the Dockerfile on stdout, the summary on stderr).")
@click.option("--push", "do_push", is_flag=True, help="Push the new tag after it is verified.")
@click.option("--in-registry", is_flag=True,
              help="Registry images: new config + manifest reusing the layers; nothing pulled or built.")
@click.option("--force", is_flag=True,
              help="Replace the target tag if it exists; write even a read-only or hard-linked Dockerfile.")
@click.option("--format", "fmt", type=click.Choice(FIX_FORMATS), default="text", show_default=True)
@registry_flags(max_platforms="With --in-registry")
@click.pass_context
def fix(ctx: click.Context, ref: str, variant: str, user_mode: str, runtime_base: str | None,
        keep: tuple[str, ...], distroless: str, template_dir: str | None, new_tag: str | None, no_build: bool,
        out_dir: str | None, do_push: bool, in_registry: bool, force: bool, fmt: str, **kw: Any) -> None:
    """Turn REF into an image that runs on kata-qemu-tdx, and prove it.

    \b
    Example:
      imagefix fix spark:3.5.3 --push
    """
    from ..fix.run import FixRequest, run_fix
    from ..output import render
    from ..output.progress import steps_on_terminal

    kw.update(exact=False, all_platforms=False, platform=None)
    registry = registry_options(ctx, kw)
    steps_on_terminal(fmt == "text")  # the build's steps and the push's statuses, dimmed on a terminal
    request = FixRequest(ref, variant, user_mode, runtime_base, keep, distroless, template_dir, new_tag,
                         no_build, out_dir, do_push, in_registry, force, show_progress=fmt == "text")
    click.echo(render(fmt, run_fix(request, registry)), nl=False, err=out_dir == "-")
