"""`imagefix fix`: rebuild (or rewrite in the registry) and prove it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ImagefixError
from ..fix.plan import DISTROLESS, VARIANTS
from .app import main
from .options import registry_flags, registry_options, user_mode_option


@main.command()
@click.argument("ref")
@click.option("--variant", type=click.Choice(list(VARIANTS)), default="user", show_default=True,
              help="; ".join(f"{name}: {what}" for name, (_, what) in VARIANTS.items()))
@user_mode_option
@click.option("--runtime-base", metavar="REF",
              help="Runtime stage image (multistage; overrides distroless).")
@click.option("--keep", multiple=True, metavar="PATH",
              help="Path to copy into the runtime stage (repeatable).")
@click.option("--distroless", default="static", show_default=True, type=click.Choice(list(DISTROLESS)),
              help="Which distroless runtime (-debian13).")
@click.option("--template-dir", type=click.Path(file_okay=False, exists=True),
              help="Your own templates (same names as the shipped ones win).")
@click.option("--tag", "new_tag", metavar="NEWREF",
              help="Tag for the fixed image [default: <repo>:<tag>-kata].")
@click.option("--no-build", is_flag=True, help="Only write the rendered Dockerfile (needs -o DIR).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the Dockerfile.")
@click.option("--push", "do_push", is_flag=True, help="Push the new tag after it is verified.")
@click.option("--in-registry", is_flag=True,
              help="Registry images: new config + manifest reusing the layers; nothing pulled or built.")
@click.option("--force", is_flag=True, help="Replace the target tag if it exists.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@registry_flags
@click.pass_context
def fix(ctx: click.Context, ref: str, variant: str, user_mode: str, runtime_base: str | None,
        keep: tuple[str, ...], distroless: str, template_dir: str | None, new_tag: str | None, no_build: bool,
        out_dir: str | None, do_push: bool, in_registry: bool, force: bool, fmt: str, **kw: Any) -> None:
    """Turn REF into an image that runs on kata-qemu-tdx, and prove it."""
    import json as jsonlib

    from ..fix.plan import plan_fix
    from ..image.reference import parse_image_ref

    kw.update(exact=False, all_platforms=False, platform=None)
    registry = registry_options(ctx, kw)
    parsed = parse_image_ref(ref)
    if in_registry:
        if variant != "user":
            raise ImagefixError(f"--in-registry cannot make a {variant} image: that needs a real build "
                                "(drop --in-registry, or use --variant user)")
        if not parsed.kind.remote:
            raise ImagefixError("--in-registry works on registry images: docker://REGISTRY/REPO:TAG")
        from ..fix.in_registry import fix_in_registry, verify_in_registry

        done = fix_in_registry(parsed.target, new_tag, user_mode, registry, force=force)
        verify_in_registry(done, registry)
        summary = {"source": ref, "target": done.target, "digest": done.digest, "platforms": done.platforms,
                   "uploaded": done.uploads.by_kind}
        if fmt == "json":
            click.echo(jsonlib.dumps(summary, indent=2))
        else:
            for item in done.platforms:
                click.echo(f"{item['platform']}: {item['change']}")
            click.echo(f"pushed {done.target}@{done.digest} (config and manifests only; the "
                       f"{len(done.platforms[0]['layers'])} layers were reused, verified by a registry scan)")
        ctx.exit(0)

    from ..image.sources import open_image

    image = open_image(parsed, registry=registry)
    plan = plan_fix(image, variant=variant, user_mode=user_mode, runtime_base=runtime_base, keep=keep,
                    distroless=distroless, template_dir=Path(template_dir) if template_dir else None)
    if no_build:
        if not out_dir:
            raise ImagefixError("--no-build writes the Dockerfile to a folder: add -o DIR")
        from ..fileio import write_atomic

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out_dir) / "Dockerfile", plan.dockerfile.encode())
        click.echo(f"wrote {Path(out_dir) / 'Dockerfile'}: {plan.change}")
        for note in plan.notes:
            click.echo(f"note: {note}")
        ctx.exit(0)
    if not parsed.kind.buildable:
        raise ImagefixError(f"{ref}: load it into the engine first (docker load), or use --no-build -o DIR")

    from ..fix import build
    from ..fix.plan import default_tag
    from ..image.sources.daemon import api_client

    api = api_client()
    if plan.runtime_ref and variant != "user":  # pin the runtime stage to what the engine has
        plan = plan_fix(image, variant=variant, user_mode=user_mode, runtime_base=runtime_base, keep=keep,
                        distroless=distroless, template_dir=Path(template_dir) if template_dir else None,
                        runtime_pin=build.pin_runtime(api, plan.runtime_ref))
    auth = None
    if registry.credentials is not None:
        auth = {"username": registry.credentials.username, "password": registry.credentials.password}
    done = build.build_verify_tag(api, image, plan, new_tag or default_tag(image), force=force,
                                  push_after=do_push, auth_config=auth, show_progress=fmt == "text")
    tag, image_id, checked, pushed, rows = (done.tag, done.image_id, done.verification, done.pushed_digest,
                                           done.rows)
    if fmt == "json":
        click.echo(jsonlib.dumps({
            "source": ref, "tag": tag, "image_id": image_id, "pushed_digest": pushed or None,
            "variant": variant, "user_mode": user_mode, "change": plan.change, "dockerfile": plan.dockerfile,
            "verification": {"config_user": checked.config_user, "ran_id": checked.ran, "uid": checked.uid,
                             "gid": checked.gid},
            "before": {k.replace(" ", "_"): b for k, b, _ in rows},
            "after": {k.replace(" ", "_"): a for k, _, a in rows},
            "added_by_runtime_base": done.added,
        }, indent=2))
    else:
        from ..sizes import human_size

        click.echo(f"built {tag} ({image_id[:19]}): {plan.change}")
        how = (f"id in a container says {checked.uid}:{checked.gid}" if checked.ran
               else "config checked (no `id` in the image to run)")
        shown_user = checked.config_user or '""'
        click.echo(f"verified: config user {shown_user}; {how}; no KIF101; Env, WorkingDir, Entrypoint, "
                   "Cmd, ports, volumes and labels as in the source")
        for name, before, after_value in rows:
            if name == "unpacked size":
                before, after_value = human_size(before), human_size(after_value)
            click.echo(f"  {name:14} {before!s:>12} -> {after_value}")
        if done.added:
            click.echo(f"added by the runtime base (allowed): {', '.join(done.added)}")
        for note in plan.notes:
            click.echo(f"note: {note}")
        if pushed:
            click.echo(f"pushed {tag}@{pushed}")
