"""`imagefix k8s`: pods on Kata - audit manifests (check), or what one image's pod needs (pod)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from ..errors import ImagefixError
from ..output.untrusted import for_terminal
from .app import main
from .options import (
    budget_model,
    budget_options,
    edit_options,
    edit_policy,
    exact_option,
    fails,
    format_option,
    output_option,
    registry_flags,
    registry_options,
    rule_selection,
    selection_options,
    stacked,
)


class ShortcutGroup(click.Group):
    """`imagefix k8s REF ...` (a reference, not a subcommand) still means `imagefix k8s pod REF ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["pod", *args]
        return super().parse_args(ctx, args)


@main.group(cls=ShortcutGroup)
def k8s() -> None:
    """Kubernetes: audit workloads for Kata (check), or print what one image's pod needs (pod).

    \b
    Example:
      kubectl get deploy,sts,ds,job,cronjob,pod -A -o json | imagefix k8s check -
    """


mirror_flags = [
    click.option("--registry-config", "registry_configs", multiple=True, metavar="DIR|FILE",
                 help="Read images where the nodes pull them: containerd's config_path (a folder of "
                      "<registry>/hosts.toml), one hosts.toml, or /etc/containers/registries.conf."),
    click.option("--registry-mirror", "registry_mirrors", multiple=True, metavar="FROM=TO",
                 help="Read images of registry FROM (e.g. docker.io) from mirror TO (host[:port]); "
                      "repeatable, tried in order, then FROM itself."),
]


def workload_flags(func):
    """Which pods, the nodes' Kata configs and platform, how images are read: shared by check and fix."""
    options = [
        click.argument("manifests", metavar="MANIFEST...|-", nargs=-1, required=True),
        click.option("--runtime-class", "runtime_classes", multiple=True, metavar="NAME",
                     help="Pods of this runtime class (repeatable) [default: any name starting with kata]."),
        click.option("--all", "all_pods", is_flag=True, help="Every pod, Kata or not (a preview before a "
                                                              "migration)."),
        click.option("--kata-config", "kata_configs", multiple=True, metavar="[CLASS=]FILE",
                     help="A runtime class's Kata config on the nodes (drop-ins included): its values in "
                          "force."),
        click.option("--prefer-local", is_flag=True, help="Read images from the local engine when it has "
                                                          "them."),
        click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="Images read at once (each distinct image once)."),
        click.option("--platform", metavar="OS/ARCH", help="The nodes' platform [default: this machine's]."),
        exact_option,
        *mirror_flags,
    ]
    return stacked(options, func)


@k8s.command("check")
@workload_flags
@click.option("--shard", metavar="I/N",
              help="Only the I-th (0-based) of N stable slices of the workloads: split a fleet audit "
                   "across an Indexed Job or a CI matrix, then `imagefix merge` the JSON results.")
@format_option
@output_option("the whole report (markdown on stdout stops at a PR comment's 65,536 characters)")
@selection_options
@registry_flags
@budget_options
@click.pass_context
def k8s_check(ctx: click.Context, manifests: tuple[str, ...], runtime_classes: tuple[str, ...],
              all_pods: bool, kata_configs: tuple[str, ...], prefer_local: bool, jobs: int,
              platform: str | None, shard: str | None, fmt: str, output: str | None, force: bool,
              **kw: Any) -> None:
    """Find the containers of Kata workloads that will not start, and why (KIF4xx).

    Reads YAML or JSON files, folders (*.yaml, *.yml, *.json) or - (stdin):
    helm template, kustomize build, kubectl get -o json. The user each
    container runs as is what containerd computes: securityContext first,
    the image's USER only without runAsUser. A file that is not valid YAML is
    an error in the report (exit 2 after the report), a kustomize patch (a
    container without image:) is skipped with a note; the rest is audited.

    \b
    Example:
      helm template charts/spark | imagefix k8s check - --kata-config kata-qemu-tdx=config.toml
    """
    from ..k8s.audit import AuditOptions, AuditRun, audit_stream, read_sources
    from ..output import FINDING_FORMATS, RenderOptions

    selection, fail_on = rule_selection(ctx, kw)
    kw.update(all_platforms=False, platform=platform)
    opener = _opener(platform, registry_options(ctx, kw), kw)
    model = budget_model(ctx, kw)
    options = AuditOptions(runtime_classes, all_pods, prefer_local, jobs, _kata_configs(kata_configs),
                           _shard(shard))
    problems: list = []
    sources = read_sources(manifests, problems)  # a missing file stops here, before any output
    run = AuditRun()
    failing = False

    def results() -> Any:  # one workload at a time (a 100,000-item List is never held whole)
        nonlocal failing
        for _, result in audit_stream(run, sources, options, model, selection, opener,
                                      problems=problems):
            failing = failing or fails(result, fail_on)
            yield result

    def finish() -> tuple[list, dict[str, Any]]:
        totals = audit_totals(run, shard)
        if not run.audited and options.shard is None:
            from ..output.words import no_kata_workload

            totals["notes"].insert(0, no_kata_workload(", ".join(manifests), sum(run.skipped.values())))
        for where, message in run.errors:
            click.echo(for_terminal(f"imagefix: error: {where}: {message}"), err=True)
        return run.errors, totals

    from ..writing import Output

    destination = Output(output, force)
    if fmt == "json":
        from ..output.k8s_report import render_json_stream

        chunks = render_json_stream(results(), fail_on, selection.profile, finish)
    elif fmt == "text":  # folded as the results come: the counts and each cause's first places
        from ..output.k8s_report import render_text, tally

        counted = tally(results(), fail_on)
        errors, totals = finish()
        chunks = iter([render_text(counted, fail_on, totals, errors)])
    elif fmt == "markdown":  # the same fold: totals, and each cause's first places for its cell
        from ..output.k8s_report import MARKDOWN_LIMIT, MARKDOWN_PLACES, render_markdown, tally

        counted = tally(results(), fail_on, places=MARKDOWN_PLACES)
        errors, totals = finish()
        limit = MARKDOWN_LIMIT if destination.is_stdout else None  # a file: all of it
        chunks = iter([render_markdown(counted, totals, errors, limit)])
    else:  # sarif, gnu, gitlab: a finding a piece, as the results come (none of them shows totals)
        shown = RenderOptions(fail_on, selection.profile, key="workloads", show_location=True)

        def streamed() -> Any:
            yield from FINDING_FORMATS[fmt].chunks(results(), shown)
            finish()

        chunks = streamed()
    if destination.is_stdout:
        for chunk in chunks:
            click.echo(chunk, nl=False)
    else:
        destination.write(chunk.encode() for chunk in chunks)
    ctx.exit(2 if run.errors else 1 if failing else 0)  # exit_code's rule, decided as the results streamed


def audit_totals(run: Any, shard: str | None) -> dict[str, Any]:
    """What the report says beside the findings: counts, images, what was skipped and why."""
    refs = sorted(run.refs)
    return {
        "workloads": run.audited,
        "containers": run.containers,
        "image_refs": refs,
        "unreadable_refs": [ref for ref in refs if run.images.get(ref, (None, None))[0] is None],
        "skipped": run.all_skipped(),
        "skipped_files": [{"file": p.file, "line": p.line, "reason": p.reason, "message": p.message}
                          for p in run.problems if p.reason],
        "shard": shard,
        "notes": [f"{p.where}: {p.message}" for p in run.problems if p.reason][:20],
    }


@k8s.command("pod")
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
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="yaml: the manifest, every value with its reason as a comment; json: the pod (or the "
                   "patched documents) with the image's size, whether it is exact, and each value's reason.")
@output_option("the pod (or the patched manifest)")
@exact_option
@lambda func: stacked(mirror_flags, func)
@budget_options
@click.pass_context
def k8s_pod(ctx: click.Context, ref: str, runtime_class: str, fs_group: int | None, image_name: str | None,
        manifest: str | None, kustomize: bool, kata_config: str | None, fmt: str, output: str | None,
        force: bool, exact: bool, **kw: Any) -> None:
    """Print what a pod needs to run REF on Kata (YAML, a comment on every value); `imagefix k8s REF` too.

    \b
    Example:
      imagefix k8s spark:3.5.3 --patch deploy.yaml -o deploy.kata.yaml
    """
    from .. import __version__
    from ..fileio import decode_text, read_input
    from ..image.reference import parse_image_ref
    from ..image.sources import open_image
    from ..k8s.pod import pod_needs
    from ..k8s.pod_yaml import kustomize_patches, manifest_name, pod_manifest, pod_yaml

    if kustomize and not manifest:
        raise ImagefixError("--kustomize needs --patch MANIFEST (the workloads to patch)")
    model = budget_model(ctx, kw)
    parsed = parse_image_ref(ref)
    manifest_text = None
    if manifest:
        from ..k8s.manifests import MAX_MANIFESTS

        manifest_text = decode_text(read_input(manifest, "manifest", MAX_MANIFESTS), manifest,
                                    "a Kubernetes manifest")
    config = None
    if kata_config:
        from ..kata.config import load_config

        config = load_config(kata_config)
    from ..registry.options import RegistryOptions

    if parsed.transport == "docker" and (kw.get("registry_configs") or kw.get("registry_mirrors")):
        image = _opener(None, RegistryOptions(exact=exact), kw)(parsed.original)
    else:
        image = open_image(parsed, registry=RegistryOptions(exact=exact))
    if image_name is None:
        image_name = manifest_name(parsed, image)
    needs = pod_needs(image, model, image_name=image_name, runtime_class=runtime_class, fs_group=fs_group,
                      config=config)
    patched: list[str] = []
    if manifest_text is not None and kustomize:
        pieces: Iterable[str] = [kustomize_patches(manifest_text, needs)]
    elif manifest is not None and manifest_text is not None:
        pieces, patched = _migrate(manifest, manifest_text, needs, image, model)  # made as they are written
        del manifest_text  # a 50 MB manifest is held once: as its pieces
    elif fmt == "json":
        pieces = []
    else:
        pieces = [pod_yaml(needs, f"imagefix {__version__}: what a pod running {image_name} needs on "
                                  f"{runtime_class}")]
    if fmt == "json":
        from ..output.k8s_json import pod_json, yaml_documents

        if manifest is None:
            pieces = [pod_json(needs, ref, image, model, pod=pod_manifest(needs))]
        else:
            documents = yaml_documents(pieces)
            if kustomize:
                patched = [f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}" for doc in documents]
            pieces = [pod_json(needs, ref, image, model, documents=documents, patched=patched)]
    from ..writing import Output

    destination = Output(output, force)
    if destination.is_stdout:
        for piece in pieces:
            click.echo(piece, nl=False)
    else:
        destination.write(piece.encode() for piece in pieces)


def _migrate(name: str, text: str, needs: Any, image: Any, model: Any) -> tuple[Iterable[str], list[str]]:
    """`--patch`: `k8s fix` narrowed to the workloads that run the image, moved to its runtime class;
    the manifest's pieces (made as they are written) and a line per workload patched."""
    from ..k8s.audit import AuditOptions
    from ..k8s.fixing import Migration, fix_manifest

    fixed = fix_manifest(name, text, {}, AuditOptions(all_pods=True), model, Migration(needs, image))
    if not fixed.changes:
        raise ImagefixError(f"no Pod/Deployment/StatefulSet/Job/CronJob container (or init container) "
                            f"uses {needs.image_name}")
    for line in fixed.changes:
        click.echo(f"patched {line}", err=True)
    return fixed.pieces(), fixed.changes


@k8s.command("fix")
@workload_flags
@edit_options("manifest")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The summary of what was fixed: text lines, or JSON on stdout (per file, workload and "
                   "container: the values set, the image, its unpacked size and whether that is exact, what "
                   "is left); json needs -o FILE, --in-place or --check (stdout is not the manifest's).")
@registry_flags
@budget_options
@click.pass_context
def k8s_fix(ctx: click.Context, manifests: tuple[str, ...], runtime_classes: tuple[str, ...], all_pods: bool,
            kata_configs: tuple[str, ...], prefer_local: bool, jobs: int, platform: str | None, fmt: str,
            **kw: Any) -> None:
    """Write numeric users and the timeout annotation into Kata workloads; every other byte stays.

    YAML (block or flow style) and JSON (kubectl get -o json) are edited in
    their own style. Exit 0 when nothing error-level is left, 1 listing what
    could not be fixed (or, with --check, when a change is needed or an error
    would be left), 2 for bad usage or a file that is not valid YAML (named
    with its line; the other files are still fixed).

    \b
    Example:
      imagefix k8s fix deploy/ --in-place
    """
    from ..k8s.audit import AuditOptions, read_sources
    from ..usecases.k8s_fix import K8sFixRequest, fix_k8s

    policy = edit_policy(kw)
    policy.check_usage(manifests, what="manifest")
    if fmt == "json" and policy.messages_to_stderr and \
            ctx.get_parameter_source("fmt") is click.core.ParameterSource.DEFAULT_MAP:
        fmt = "text"  # a config's `format = "json"` (for the reports) does not refuse the manifest on stdout
    if fmt == "json" and policy.messages_to_stderr:
        carries = "the diff" if policy.diff else "the fixed manifest"
        raise ImagefixError(f"--format json needs -o FILE, --in-place or --check: stdout carries {carries}")
    problems: list = []
    sources = read_sources(manifests, problems)
    policy.check_usage([name for name, _ in sources] + [str(p) for p in problems], what="manifest")
    kw.update(all_platforms=False, platform=platform)
    opener = _opener(platform, registry_options(ctx, kw), kw)
    options = AuditOptions(runtime_classes, all_pods, prefer_local, jobs, _kata_configs(kata_configs))
    outcome = fix_k8s(K8sFixRequest(sources, options, budget_model(ctx, kw), opener, problems,
                                    record=fmt == "json"), policy.apply)
    if fmt == "json":  # what is left is in the JSON; input errors still go to stderr too
        from ..output.k8s_json import fix_json

        for chunk in fix_json(outcome, policy.check):
            click.echo(chunk, nl=False)
    else:
        _fix_summary(outcome, policy)
    for where, message in outcome.errors:
        click.echo(for_terminal(f"imagefix: error: {where}: {message}"), err=True)
    if outcome.errors:
        ctx.exit(2)
    ctx.exit(1 if outcome.unfixed or (policy.check and outcome.changed) else 0)


def _fix_summary(outcome: Any, policy: Any) -> None:
    """`k8s fix`'s text summary: a line per change (stderr when stdout carries the manifest), then what
    is not fixed."""
    report = (lambda t: click.echo(t, err=True)) if policy.messages_to_stderr else click.echo
    for written, item in outcome.written:
        if written.backup is not None:
            report(f"kept the original as {written.backup}")
        for change in item.changes:
            report(f"{policy.said(written, 'fixed', 'would fix')} {item.name}: {change}")
    for line in outcome.not_fixed:
        click.echo(for_terminal(f"not fixed: {line}"), err=True)


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise ImagefixError(f"--shard takes I/N with 0 <= I < N, not {text!r}")
    return int(index), int(count)


def _kata_configs(items: tuple[str, ...]) -> dict[str, Any]:
    from ..kata.config import load_config

    configs = {}
    for item in items:
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        configs[name] = load_config(path)
    return configs


def _opener(platform: str | None, registry: Any, kw: dict[str, Any] | None = None):
    """How the audit opens an image: through the mirrors the flags name, when they name any."""
    from ..image.sources import open_image

    kw = kw or {}
    configs, flags = kw.pop("registry_configs", ()), kw.pop("registry_mirrors", ())
    if not (configs or flags):
        return lambda ref: open_image(ref, platform=platform, registry=registry)
    from ..registry import mirrors

    config = mirrors.load(configs, flags)
    if config.trust:  # each mirror's own ca / client / skip_verify, applied by registry/tls.py
        from msgspec.structs import replace

        registry = replace(registry, tls=(*registry.tls, *config.trust))
    return lambda ref: open_mirrored(ref, config, platform, registry)


def open_mirrored(ref: str, config: Any, platform: str | None, registry: Any) -> Any:
    """`docker://REF` read from its mirrors in order, then from its registry; the image keeps the
    reference the manifest names. Errors name every place tried."""
    from msgspec.structs import replace

    from ..image.reference import parse_docker_reference
    from ..image.sources import open_image
    from ..registry import mirrors

    if not ref.startswith("docker://"):  # --prefer-local: the engine first, as before
        return open_image(ref, platform=platform, registry=registry)
    target = ref.removeprefix("docker://")
    parsed = parse_docker_reference(target)
    config = mirrors.resolve_default(config, parsed.domain)
    failures = []
    for candidate, mirror in config.candidates(str(parsed)):
        options = registry if mirror is None or not mirror.insecure else \
            replace(registry, insecure=(*registry.insecure, mirror.host))
        try:
            image = open_image(f"docker://{candidate}", platform=platform, registry=options)
        except ImagefixError as exc:
            said = str(exc).removeprefix(candidate + ": ")
            failures.append(f"mirror {mirror.host}: {said.removeprefix(mirror.host + ': ')}" if mirror
                            else f"the registry: {said}")
            continue
        image.reference = target
        return image
    raise ImagefixError(f"{target}: " + "; ".join(failures))

