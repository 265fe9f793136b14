"""Build, verify, tag and push through the Docker SDK's low-level API (the legacy builder).

The new tag is applied only after the build and the checks succeed, so a
failed build leaves no tag; the source image is never retagged or removed.
"""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image import progress
from .plan import FixPlan, compare_configs


@dataclass
class Verification:
    config_user: str
    uid: int | None = None  # from `id -u` in a container, when the image has `id`
    gid: int | None = None
    ran: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _context(dockerfile: str) -> io.BytesIO:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    return context


def build_image(api: Any, plan: FixPlan, *, show_progress: bool) -> str:
    """Build the plan's Dockerfile; returns the image ID. Errors name the failing step."""
    import docker

    step = ""
    image_id = None
    try:
        for event in api.build(fileobj=_context(plan.dockerfile), custom_context=True, rm=True, forcerm=True,
                               network_mode="none", decode=True, pull=False):
            text = event.get("stream", "")
            if text.startswith("Step "):
                step = text.strip()
                if show_progress:
                    progress.step(step)
            if "error" in event:
                detail = event.get("errorDetail", {}).get("message") or event["error"]
                raise ImagefixError(f"build failed at {step or 'the start'}: {detail.strip()}")
            if "aux" in event and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
            match = re.match(r"Successfully built ([0-9a-f]+)", text)
            if match and image_id is None:
                image_id = match.group(1)
    except docker.errors.APIError as exc:
        raise ImagefixError(f"build failed: {exc.explanation or exc}") from None
    if not image_id:
        raise ImagefixError("build finished without an image ID")
    return image_id


def verify(api: Any, image_id: str, plan: FixPlan) -> Verification:
    """The config user, and `id -u`/`id -g` in a container (no network, removed) where `id` exists."""
    import docker

    config_user = (api.inspect_image(image_id).get("Config") or {}).get("User") or ""
    result = Verification(config_user)
    expected = "" if plan.user == '""' else plan.user
    if config_user != expected:
        result.problems.append(f"config user is {config_user!r}, expected {expected!r}")
    container = None
    try:
        container = api.create_container(image_id, entrypoint=["id"], command=["-u"], network_disabled=True,
                                         host_config=api.create_host_config(network_mode="none"))
        api.start(container)
        status = api.wait(container, timeout=60).get("StatusCode")
        uid_text = api.logs(container).decode().strip()
        api.remove_container(container, force=True)
        container = api.create_container(image_id, entrypoint=["id"], command=["-g"], network_disabled=True,
                                         host_config=api.create_host_config(network_mode="none"))
        api.start(container)
        api.wait(container, timeout=60)
        gid_text = api.logs(container).decode().strip()
        if status == 0 and uid_text.isdigit() and gid_text.isdigit():
            result.uid, result.gid, result.ran = int(uid_text), int(gid_text), True
    except docker.errors.APIError:
        pass  # no `id` in the image (distroless): the config is the proof
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(container, force=True)
    if result.ran and (result.uid, result.gid) != (plan.expected_uid, plan.expected_gid):
        result.problems.append(f"id in the container says {result.uid}:{result.gid}, "
                               f"expected {plan.expected_uid}:{plan.expected_gid}")
    return result


def tag_exists(api: Any, tag: str) -> bool:
    import docker

    try:
        api.inspect_image(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def apply_tag(api: Any, image_id: str, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    if "/" in version or not repository:
        repository, version = tag, "latest"
    if not api.tag(image_id, repository, version, force=True):
        raise ImagefixError(f"could not tag {image_id[:19]} as {tag}")


_EVENT_KEYS = ("status", "id", "progressDetail", "aux", "error")


def push(api: Any, tag: str, *, auth_config: dict | None, show_progress: bool,
         events: list[dict] | None = None) -> str:
    """Push with the engine (Docker's own credentials, or the ones given); returns the digest. With
    `events`, the engine's progress events are kept there (status, id, progress detail)."""
    repository, _, version = tag.rpartition(":")
    digest = ""
    for event in api.push(repository, version, stream=True, decode=True, auth_config=auth_config):
        if events is not None:
            events.append({k: v for k, v in event.items() if k in _EVENT_KEYS})
        if "error" in event:
            detail = event.get("errorDetail", {}).get("message") or event["error"]
            raise ImagefixError(f"push of {tag} refused: {detail.strip()}")
        if show_progress and event.get("status") and event.get("id"):
            progress.step(f"{event['id']}: {event['status']}", replace=True)
        aux = event.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
    return digest


@dataclass
class LocalFix:
    tag: str
    image_id: str
    verification: Verification
    pushed_digest: str
    rows: list[tuple[str, Any, Any]]  # (what, before, after)
    added: list[str] = field(default_factory=list)  # config values the new runtime base brought


def build_verify_tag(api: Any, image: Any, plan: FixPlan, tag: str, *, force: bool, push_after: bool,
                     auth_config: dict | None, show_progress: bool) -> LocalFix:
    """The whole local fix: build, prove it (config, `id`, re-scan), then tag, then maybe push."""
    from ..image.reference import parse_docker_reference
    from ..image.sources.daemon import open_daemon_image
    from ..model.budget import BudgetModel
    from ..scan import RuleSelection, scan_image

    parse_docker_reference(tag)
    if tag_exists(api, tag) and not force:
        raise ImagefixError(f"{tag} exists already; --force replaces it (the source image is never touched)")
    image_id = build_image(api, plan, show_progress=show_progress)
    try:
        checked = verify(api, image_id, plan)
        rescan = scan_image(open_daemon_image(image_id, image_id), RuleSelection(), BudgetModel())
        if any(f.rule == "KIF101" for f in rescan.findings):
            checked.problems.append("the rebuilt image still runs as a named user (KIF101)")
        changed, added = compare_configs(image.config.get("config") or {},
                                         api.inspect_image(image_id).get("Config") or {})
        checked.problems += changed
        if not checked.ok:
            raise ImagefixError(f"verification failed: {'; '.join(checked.problems)}")
    except ImagefixError:
        _remove_quietly(api, image_id)
        raise
    apply_tag(api, image_id, tag)
    pushed = push(api, tag, auth_config=auth_config, show_progress=show_progress) if push_after else ""
    after = open_daemon_image(tag, tag)
    before_findings = scan_image(image, RuleSelection(), BudgetModel()).findings
    rows = [("user", image.user or '"" (root)', after.user or '"" (root)'),
            ("unpacked size", image.unpacked_size, after.unpacked_size),
            ("layers", len(image.layers), len(after.layers)),
            ("findings", len(before_findings), len(rescan.findings))]
    return LocalFix(tag, image_id, checked, pushed, rows, added)


def _remove_quietly(api: Any, image_id: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.APIError):
        api.remove_image(image_id, force=True)


def pin_runtime(api: Any, runtime_ref: str) -> str:
    """The runtime stage's image ID; imagefix never pulls behind the user's back."""
    import docker

    try:
        return api.inspect_image(runtime_ref)["Id"]
    except docker.errors.ImageNotFound:
        raise ImagefixError(f"runtime base {runtime_ref} is not in the local engine: load or pull it first "
                            "(imagefix never pulls behind your back)") from None
