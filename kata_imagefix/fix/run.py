"""`imagefix fix` as one call: the in-registry rewrite, the Dockerfile only, or build-verify-tag(-push)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..errors import ImagefixError
from ..image.reference import parse_image_ref
from ..registry.options import RegistryOptions


@dataclass
class FixRequest:
    ref: str
    variant: str = "user"
    user_mode: str = "numeric"
    runtime_base: str | None = None
    keep: tuple[str, ...] = ()
    distroless: str = "static"
    template_dir: str | None = None
    tag: str | None = None
    no_build: bool = False
    out_dir: str | None = None
    push: bool = False
    in_registry: bool = False
    force: bool = False
    show_progress: bool = False


class _PlanOptions(TypedDict):
    """plan_fix's keywords from the request (given twice when the runtime stage gets pinned)."""

    variant: str
    user_mode: str
    runtime_base: str | None
    keep: tuple[str, ...]
    distroless: str
    template_dir: Path | None


@dataclass
class FixOutcome:
    """What was done: `kind` is "in-registry", "dockerfile" or "built"; the rest fits the kind."""

    kind: str
    request: FixRequest
    plan: Any = None  # fix.plan.FixPlan
    written: Path | None = None  # the Dockerfile of --no-build
    registry: Any = None  # fix.in_registry result
    local: Any = None  # fix.build.LocalFix
    notes: list[str] = field(default_factory=list)


def run_fix(request: FixRequest, registry: RegistryOptions) -> FixOutcome:
    parsed = parse_image_ref(request.ref)
    if request.in_registry:
        return _in_registry(request, parsed, registry)
    from ..image.sources import open_image
    from .plan import plan_fix

    image = open_image(parsed, registry=registry)
    template_dir = Path(request.template_dir) if request.template_dir else None
    options = _PlanOptions(variant=request.variant, user_mode=request.user_mode,
                           runtime_base=request.runtime_base, keep=request.keep,
                           distroless=request.distroless, template_dir=template_dir)
    plan = plan_fix(image, **options)
    if request.no_build:
        outcome = _dockerfile_only(request, plan)
        if request.variant == "user":  # the same files as the source, with the new USER
            outcome.notes += _pod_notes(plan.user.strip('"'), image.read_file)
        return outcome
    if not parsed.kind.buildable:
        raise ImagefixError(f"{request.ref}: load it into the engine first (docker load), "
                            "or use --no-build -o DIR")
    from ..image.sources.daemon import api_client
    from . import build
    from .plan import default_tag

    api = api_client()
    if plan.runtime_ref and request.variant != "user":  # pin the runtime stage to what the engine has
        plan = plan_fix(image, **options, runtime_pin=build.pin_runtime(api, plan.runtime_ref))
    auth = None
    if registry.credentials is not None:
        auth = {"username": registry.credentials.username, "password": registry.credentials.password}
    local = build.build_verify_tag(api, image, plan, request.tag or default_tag(image), force=request.force,
                                   push_after=request.push, auth_config=auth,
                                   show_progress=request.show_progress)
    built = open_image(f"docker-daemon:{local.tag}")  # the fixed image's own files, not the source's
    return FixOutcome("built", request, plan=plan, local=local,
                      notes=list(plan.notes) + _pod_notes(built.user or "", built.read_file))


def _pod_notes(user: str, read_file) -> list[str]:
    """What a Kubernetes pod must set beside the fixed image's USER (guest pull: users/identity.py)."""
    from ..users.identity import pod_settings

    text = pod_settings(user, read_file)
    return [text] if text else []


def _in_registry(request: FixRequest, parsed, registry: RegistryOptions) -> FixOutcome:
    if request.variant != "user":
        raise ImagefixError(f"--in-registry cannot make a {request.variant} image: that needs a real build "
                            "(drop --in-registry, or use --variant user)")
    if not parsed.kind.remote:
        raise ImagefixError("--in-registry works on registry images: docker://REGISTRY/REPO:TAG")
    from .in_registry import fix_in_registry, verify_in_registry

    done = fix_in_registry(parsed.target, request.tag, request.user_mode, registry, force=request.force)
    verify_in_registry(done, registry)
    return FixOutcome("in-registry", request, registry=done)


def _dockerfile_only(request: FixRequest, plan) -> FixOutcome:
    if not request.out_dir:
        raise ImagefixError("--no-build writes the Dockerfile to a folder: add -o DIR (or -o - for stdout)")
    from ..writing import STDOUT, to_stdout, write_file

    if request.out_dir == STDOUT:
        to_stdout(plan.dockerfile.encode())
        return FixOutcome("dockerfile", request, plan=plan, written=Path("<stdout>"), notes=list(plan.notes))
    target = Path(request.out_dir) / "Dockerfile"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file(target, plan.dockerfile.encode(), force=request.force)
    return FixOutcome("dockerfile", request, plan=plan, written=target, notes=list(plan.notes))
