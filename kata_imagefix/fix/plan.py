"""`imagefix fix`: a Dockerfile rendered from a template, what the fixed image must look like, and why.

Three variants: `user` (FROM the original + a USER the host never looks up),
`multistage` (the original as a build stage, kept paths on a slimmer runtime)
and `distroless` (the same on a distroless runtime). FROM is pinned by repo
digest when the image has one, else by image ID.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..users import USER_MODES, UserKind, UserSpec, resolve_user
from ..users.modes import choose_user
from .render import render

# variant -> its template and what it makes: the one table --variant reads.
VARIANTS = {
    "user": ("user.Dockerfile.j2", "FROM the original + a USER the host never looks up"),
    "multistage": ("multistage.Dockerfile.j2", "the original as a build stage, kept paths on --runtime-base"),
    "distroless": ("distroless.Dockerfile.j2", "the kept paths on a distroless runtime"),
}
# Distroless language images exist only on -debian13; debian12 reached end of life in Sept 2026.
DISTROLESS = {
    "static": "gcr.io/distroless/static-debian13",
    "base": "gcr.io/distroless/base-debian13",
    "base-nossl": "gcr.io/distroless/base-nossl-debian13",
    "cc": "gcr.io/distroless/cc-debian13",
    "java17": "gcr.io/distroless/java17-debian13",
    "java21": "gcr.io/distroless/java21-debian13",
    "python3": "gcr.io/distroless/python3-debian13",
    "nodejs22": "gcr.io/distroless/nodejs22-debian13",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class FixPlan:
    variant: str
    user_mode: str
    user: str  # the USER the fixed image will have
    expected_uid: int | None
    expected_gid: int | None
    base_ref: str
    dockerfile: str
    change: str
    notes: list[str] = field(default_factory=list)
    runtime_ref: str | None = None


def target_user(image: Image, mode: str) -> tuple[str, int | None, int | None, str]:
    """(USER value, uid, gid, what changes) for the chosen mode, decided as `patch` decides (users.modes)."""
    spec = UserSpec.parse(image.user)
    if spec.kind is UserKind.INVALID:
        raise ImagefixError(f"{image.reference}: USER {spec.raw!r} is not a user containerd accepts "
                            f"({spec.problem})")
    try:
        choice = choose_user(spec, mode, lambda: resolve_user(spec, image.read_file))
    except ImagefixError as exc:
        raise ImagefixError(f"{image.reference}: {exc}; use --user-mode reset or root") from None
    if choice.kept:
        change = f"USER {spec.display()} is {choice.how}"
    elif choice.uid == 0:
        change = f"USER {spec.display()} -> {choice.value} (the container runs as root)"
    else:
        change = f"USER {spec.raw} -> {choice.value} ({choice.how})"
    return choice.value, choice.uid, choice.gid, change


def pinned_reference(image: Image) -> tuple[str, str, str]:
    """(FROM reference, base name, base digest).

    A repo digest of the same repository as the image's name when there is
    one; else the engine's RepoDigests entry as listed (a mirror's name: the
    engine resolves it locally, never from another repository); else the
    image ID. A registry image is pinned by its manifest digest.
    """
    name = image.name or image.reference
    repository = _repository(name)
    if image.transport == "docker" and image.digest and repository:
        return f"{repository}@{image.digest}", name, image.digest
    if image.transport == "docker-daemon" and image.repo_digests:
        same = [d for d in image.repo_digests if repository and _repository(d) == repository]
        chosen = (same or image.repo_digests)[0]
        return chosen, name, chosen.partition("@")[2]
    if image.image_id:
        return image.image_id, name, image.image_id
    raise ImagefixError(f"{image.reference}: no digest or image ID to pin FROM to")


def _repository(name: str) -> str | None:
    """The canonical repository of a reference (docker.io/library/x for x), or None."""
    from ..image.reference import parse_docker_reference

    try:
        return parse_docker_reference(name).repository
    except ImagefixError:
        return None


def _runtime_values(image: Image) -> dict[str, Any]:
    config = image.config.get("config") or {}
    env = []
    for item in config.get("Env") or []:
        name, _, value = item.partition("=")
        if not _ENV_NAME.match(name):
            raise ImagefixError(f"{image.reference}: refusing environment variable name {name!r}")
        env.append({"name": name, "value": value})
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if k not in _OUR_LABELS}
    return {
        "env": env,
        "workdir": config.get("WorkingDir") or "",
        "expose": sorted(config.get("ExposedPorts") or {}),
        "volumes": sorted(config.get("Volumes") or {}),
        "labels": sorted(labels.items()),
        "entrypoint": config.get("Entrypoint") or [],
        "cmd": config.get("Cmd") or [],
    }


_OUR_LABELS = ("org.opencontainers.image.base.name", "org.opencontainers.image.base.digest",
               "io.imagefix.change")
CARRIED = ("Env", "WorkingDir", "Entrypoint", "Cmd", "ExposedPorts", "Volumes", "Labels")


def compare_configs(source: dict[str, Any], fixed: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems, additions): every runtime value of the source must be in the fixed image unchanged
    (only USER may differ); keys the new runtime base adds are allowed and listed."""
    problems: list[str] = []
    added: list[str] = []
    for key in CARRIED:
        before, after = source.get(key), fixed.get(key)
        if key == "Env":
            before, after = _env_map(before), _env_map(after)
        if key in ("Env", "ExposedPorts", "Volumes", "Labels"):
            before, after = dict(before or {}), dict(after or {})
            ours = _OUR_LABELS if key == "Labels" else ()
            for name, value in before.items():
                if name in ours:
                    continue
                if name not in after:
                    problems.append(f"{key} {name} is missing")
                elif after[name] != value:
                    problems.append(f"{key} {name} is {after[name]!r}, the source has {value!r}")
            added += [f"{key} {name}" for name in after if name not in before and name not in ours]
        elif (before or None) != (after or None):
            problems.append(f"{key} is {after!r}, the source has {before!r}")
    return problems, added


def _env_map(items: Any) -> dict[str, str]:
    return {name: value for name, _, value in (str(i).partition("=") for i in items or [])}


def _check_keep(paths: tuple[str, ...]) -> list[str]:
    out = []
    for path in paths:
        if not path.startswith("/") or any(ch in path for ch in "\r\n\0"):
            raise ImagefixError(f"--keep takes absolute paths, not {path!r}")
        out.append(posixpath.normpath(path))
    return out


def plan_fix(image: Image, *, variant: str = "user", user_mode: str = "numeric",
             runtime_base: str | None = None, keep: tuple[str, ...] = (), distroless: str = "static",
             template_dir=None, runtime_pin: str | None = None) -> FixPlan:
    if variant not in VARIANTS:
        raise ImagefixError(f"unknown variant {variant!r}: use {', '.join(VARIANTS)}")
    if user_mode not in USER_MODES:
        raise ImagefixError(f"unknown user mode {user_mode!r}: use {', '.join(USER_MODES)}")
    user, uid, gid, change = target_user(image, user_mode)
    base_ref, base_name, base_digest = pinned_reference(image)
    values: dict[str, Any] = {
        "reason": f"{change}; kata-qemu-tdx cannot look up user names on the host",
        "base_ref": base_ref, "base_name": base_name, "base_digest": base_digest,
        "change": f"imagefix {variant}: {change}", "user": user,
    }
    plan = FixPlan(variant, user_mode, user, uid, gid, base_ref, "", change)
    if variant != "user":
        kept = _check_keep(keep)
        if not kept:
            raise ImagefixError(f"--variant {variant} needs the paths to keep: --keep /opt/app (repeatable)")
        if variant == "multistage":
            if not runtime_base:
                raise ImagefixError("--variant multistage needs --runtime-base REF (the slimmer runtime)")
            runtime = runtime_base
        else:
            if distroless not in DISTROLESS:
                raise ImagefixError(f"unknown distroless image {distroless!r}: use {', '.join(DISTROLESS)}")
            tag = "nonroot" if uid not in (0, None) else "latest"
            runtime = runtime_base or f"{DISTROLESS[distroless]}:{tag}"
            plan.notes.append("distroless has no shell: the ENTRYPOINT must be a binary you kept")
        plan.runtime_ref = runtime_pin or runtime
        values.update(runtime_ref=plan.runtime_ref, keep=kept, image=_runtime_values(image),
                      distroless=distroless)
    plan.dockerfile = render(VARIANTS[variant][0], values, template_dir)
    return plan


def default_tag(image: Image) -> str:
    """`<repo>:<tag>-kata` (the source's own tag is never reused)."""
    name = image.name or ""
    if "@" in name:
        name = name.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
    else:
        repository, tag = name, "latest"
    if not repository or repository.startswith("sha256"):
        raise ImagefixError(f"{image.reference}: name the new image with --tag NAME:TAG")
    return f"{repository}:{tag}-kata"
