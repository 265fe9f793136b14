"""`imagefix report`: what the image weighs, where, against the last release and the Kata budget."""

from __future__ import annotations

from typing import Any

import click

from ..output import REPORT_FORMATS
from .app import main
from .options import (
    GROWTH,
    SIZE,
    budget_model,
    budget_options,
    output_option,
    registry_flags,
    registry_options,
)


@main.command()
@click.argument("ref")
@click.option("--baseline", metavar="REF", help="The previous release to compare with.")
@click.option("--base", "base_ref", metavar="REF", help="The base image (else its label, else unknown).")
@click.option("--budget", type=SIZE, metavar="SIZE",
              help="Gate: the unpacked image must stay at or below SIZE.")
@click.option("--max-layer-size", type=SIZE, metavar="SIZE", help="Gate: no layer above SIZE.")
@click.option("--max-growth", type=GROWTH, metavar="SIZE|PCT",
              help="Gate: growth against --baseline, e.g. 50MB or 10%.")
@click.option("--files", type=click.IntRange(0, 10_000), default=0, metavar="N",
              help="Read every layer once: the N largest files and directories, and the waste.")
@click.option("--walk", type=click.Choice(["auto", "direct", "export"]), default="auto", show_default=True,
              help="Daemon images: read overlay2 layer folders directly, or export the image.")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True)
@output_option("the report")
@click.option("--exact", is_flag=True,
              help="Registry images: stream every layer and count its files (else sizes come from each "
                   "blob's gzip trailer / zstd header, or are estimated and marked).")
@click.option("--accept-estimates", is_flag=True,
              help="Let a gate pass on an estimated size (by default it refuses: FAIL, exit 1).")
@click.option("--push", "do_push", is_flag=True,
              help="Pre-push gate: push REF (a local image with a registry name) only if every gate passes.")
@registry_flags
@budget_options
@click.pass_context
def report(ctx: click.Context, ref: str, baseline: str | None, base_ref: str | None, budget: int | None,
           max_layer_size: int | None, max_growth: str | None, files: int, walk: str, fmt: str,
           output: str | None, force: bool, exact: bool, accept_estimates: bool, do_push: bool,
           **kw: Any) -> None:
    """Size report before push: layers, base vs app, baseline diff, waste, Kata budget; gates exit 1.

    \b
    Example:
      imagefix report myapp:2.0 --baseline myapp:1.9 --budget 800MB
    """
    from ..image.sources import open_image
    from ..output import RenderOptions, progress, render
    from ..output.report_lines import verdict
    from ..report.model import Gates, apply_gates, build_report
    from ..writing import Output

    gates = Gates.parse(budget, max_layer_size, max_growth, bool(baseline))  # bad limits fail before any work
    kw.update(exact=exact, all_platforms=False, platform=None)
    registry = registry_options(ctx, kw)
    model = budget_model(ctx, kw)
    destination = Output(output, force)
    showing = fmt == "text" and destination.is_stdout
    progress.enable_on_terminal(showing)

    def opener(reference: str):
        return open_image(reference, registry=registry)

    result = build_report(opener(ref), model, opener=opener, base_ref=base_ref, baseline_ref=baseline,
                          files=files, walk=walk)
    apply_gates(result, budget=gates.budget, max_layer=gates.max_layer, max_growth=gates.max_growth,
                accept_estimates=accept_estimates)
    if do_push:
        from ..report.push import push_if_passed

        result.push = push_if_passed(result, registry, show_progress=showing)
    text = render(fmt, result, RenderOptions(to_terminal=destination.is_stdout))
    if destination.is_stdout:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {destination.write(text.encode())}: {verdict(result)}")
    if result.push is not None and fmt != "json":
        click.echo(result.push.summary, err=not result.push.pushed)
    ctx.exit(1 if result.failed else 0)
