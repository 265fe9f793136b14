"""`imagefix scan` and `imagefix rules`."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ImagefixError
from ..output.untrusted import for_terminal
from .app import main
from .options import (
    SIZE,
    budget_model,
    budget_options,
    emit_results,
    exit_code,
    format_option,
    registry_flags,
    registry_options,
    rule_selection,
    selection_options,
    setting,
)


@main.command()
@click.argument("refs", nargs=-1)
@format_option
@selection_options
@click.option("--max-layer-size", type=SIZE, metavar="SIZE",
              help="Per-layer limit for KIF201. [default: 100MB]")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from a multi-platform image. [default: this host's]")
@click.option("--all-platforms", is_flag=True, help="Scan every platform of a multi-platform image.")
@click.option("--exact", is_flag=True,
              help="Registry images: stream the layers to count unpacked sizes (else estimated).")
@registry_flags(max_platforms="With --all-platforms")
@click.option("--jobs", type=click.IntRange(1, 64), help="Images scanned at once. [default: 4]")
@click.option("--from-file", metavar="FILE", help="Read references from FILE, one per line ('-': stdin).")
@budget_options
@click.pass_context
def scan(ctx: click.Context, refs: tuple[str, ...], fmt: str, **kw: Any) -> None:
    """Scan images for what breaks on Kata (named users, size against the guest budget).

    REF is NAME[:TAG] (the local engine if it has it, else the registry),
    docker://REGISTRY/REPO[:TAG|@DIGEST] (the registry, without pulling),
    docker-daemon:NAME[:TAG|@DIGEST], docker-archive:PATH[:NAME:TAG],
    oci:DIR[:TAG] or oci-archive:TAR[:TAG].

    \b
    Example:
      imagefix scan spark:3.5.3 docker://registry.example/app:2.0 --format sarif
    """
    from ..scan import DEFAULT_MAX_LAYER_SIZE
    from ..sizes import parse_size
    from ..usecases.scan_refs import ScanRequest, scan_refs

    selection, fail_on = rule_selection(ctx, kw)
    registry = registry_options(ctx, kw)
    from ..output import progress

    progress.enable_on_terminal(fmt == "text")
    model = budget_model(ctx, kw)
    max_layer = setting(ctx, kw["max_layer_size"], "max-layer-size", DEFAULT_MAX_LAYER_SIZE, parse_size)
    jobs = setting(ctx, kw["jobs"], "jobs", 4, int)
    run = scan_refs(ScanRequest(refs, kw["from_file"], kw["platform"], registry, selection, model, max_layer,
                                jobs))
    results, errors = run.results, run.errors
    for _, message in errors:
        click.echo(f"imagefix: error: {for_terminal(message)}", err=True)
    emit_results(results, fmt, fail_on, selection.profile, errors)
    ctx.exit(exit_code(results, fail_on, errors))


@main.command()
@click.argument("rule_ids", nargs=-1)
def rules(rule_ids: tuple[str, ...]) -> None:
    """Explain the rules (all, or the ids given) and the budget model.

    \b
    Example:
      imagefix rules KIF101
    """
    from ..model import budget
    from ..rules import all_rules

    wanted = [r.upper() for r in rule_ids]
    chosen = [r for r in all_rules() if not wanted or any(r.id.startswith(w) for w in wanted)]
    if not chosen:
        raise ImagefixError(f"no rule matches {', '.join(rule_ids)}")
    for rule in chosen:
        click.echo(click.style(f"{rule.id}  {rule.name}", bold=True) + f"  [{rule.severity.label}]")
        click.echo("    " + rule.doc.replace("\n", "\n    ").replace("    \n", "\n"))
        other = "; ".join(f"--profile {name}: {severity.label if severity else 'off'}"
                          for name, severity in rule.profiles.items())
        click.echo(f"    ({other})\n" if other else "")
    if not wanted:
        click.echo(click.style("Budget model (KIF202-KIF204, kata, k8s)", bold=True))
        doc = budget.__doc__ or ""
        click.echo("    " + doc.strip().replace("\n", "\n    "))
        defaults = ", ".join(f"{k}={v}" for k, v in budget.BudgetModel().as_dict().items())
        click.echo(f"\n    defaults: {defaults}")


if __name__ == "__main__":  # pragma: no cover
    main()
