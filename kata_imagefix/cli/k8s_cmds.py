"""`imagefix k8s`: pods on Kata - audit manifests (check), or what one image's pod needs (pod)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ImagefixError
from .app import main
from .options import (
    budget_model,
    budget_options,
    emit_results,
    exit_code,
    format_option,
    registry_flags,
    registry_options,
    rule_selection,
    selection_options,
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


@k8s.command("check")
@click.argument("manifests", metavar="MANIFEST...|-", nargs=-1, required=True)
@click.option("--runtime-class", "runtime_classes", multiple=True, metavar="NAME",
              help="Audit pods of this runtime class (repeatable) [default: any name starting with kata].")
@click.option("--all", "all_pods", is_flag=True, help="Audit every pod (a preview before a migration).")
@click.option("--kata-config", "kata_configs", multiple=True, metavar="[CLASS=]FILE",
              help="A runtime class's Kata config on the nodes (drop-ins included): its values in force.")
@click.option("--prefer-local", is_flag=True, help="Read images from the local engine when it has them.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Images read at once (each distinct image once).")
@click.option("--platform", metavar="OS/ARCH", help="The nodes' platform [default: this machine's].")
@format_option
@selection_options
@registry_flags
@budget_options
@click.pass_context
def k8s_check(ctx: click.Context, manifests: tuple[str, ...], runtime_classes: tuple[str, ...],
              all_pods: bool, kata_configs: tuple[str, ...], prefer_local: bool, jobs: int,
              platform: str | None, fmt: str, **kw: Any) -> None:
    """Find the containers of Kata workloads that will not start, and why (KIF4xx).

    Reads YAML or JSON files, folders (*.yaml, *.yml, *.json) or - (stdin):
    helm template, kustomize build, kubectl get -o json. The user each
    container runs as is what containerd computes: securityContext first,
    the image's USER only without runAsUser.

    \b
    Example:
      helm template charts/spark | imagefix k8s check - --kata-config kata-qemu-tdx=config.toml
    """
    from ..image.sources import open_image
    from ..k8s.audit import AuditOptions, audit
    from ..kata.config import load_config

    selection, fail_on = rule_selection(ctx, kw)
    kw.update(exact=False, all_platforms=False, platform=platform)
    registry = registry_options(ctx, kw)
    model = budget_model(ctx, kw)
    configs = {}
    for item in kata_configs:
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        configs[name] = load_config(path)
    options = AuditOptions(runtime_classes, all_pods, prefer_local, jobs, configs)
    results, skipped = audit(manifests, options, model, selection,
                             lambda ref: open_image(ref, platform=platform, registry=registry))
    if not results:
        raise ImagefixError(f"no Kata workload in {', '.join(manifests)} ({skipped} other workload(s) "
                            "skipped; --all audits every pod, --runtime-class names the classes)")
    emit_results(results, fmt, fail_on, selection.profile, [], key="workloads", show_location=True)
    ctx.exit(exit_code(results, fail_on, []))


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
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@budget_options
@click.pass_context
def k8s_pod(ctx: click.Context, ref: str, runtime_class: str, fs_group: int | None, image_name: str | None,
        manifest: str | None, kustomize: bool, kata_config: str | None, output: str | None,
        **kw: Any) -> None:
    """Print what a pod needs to run REF on Kata (YAML, a comment on every value); `imagefix k8s REF` too.

    \b
    Example:
      imagefix k8s spark:3.5.3 --patch deploy.yaml -o deploy.kata.yaml
    """
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
