"""`imagefix merge`: the JSON results of several runs (shards of a fleet audit) as one report."""

from __future__ import annotations

import click

from .app import main
from .options import emit_results, exit_code, format_option


@main.command()
@click.argument("results", metavar="RESULTS.json...", nargs=-1, required=True)
@format_option
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]), default="error",
              show_default=True)
def merge(results: tuple[str, ...], fmt: str, fail_on: str) -> None:
    """Combine JSON results (of scan, lint, kata check or k8s check shards) into one report.

    \b
    Example:
      imagefix merge shard-*.json --format markdown
    """
    from ..rules.finding import Severity
    from ..usecases.merge import merge_results

    merged = merge_results(results)
    threshold = None if fail_on == "never" else Severity.parse(fail_on)
    if merged.totals is not None:
        from ..output import FINDING_FORMATS, RenderOptions

        options = RenderOptions(threshold, merged.profile, merged.errors, merged.key, show_location=True,
                                totals=merged.totals)
        click.echo(FINDING_FORMATS[fmt].render(merged.entries, options), nl=False)
    else:
        emit_results(merged.entries, fmt, threshold, merged.profile, merged.errors, key=merged.key,
                     show_location=True)
    raise SystemExit(exit_code(merged.entries, threshold, merged.errors))
