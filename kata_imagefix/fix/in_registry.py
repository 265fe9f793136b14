"""`imagefix fix --in-registry`: a new config and manifest that reuse the original layers.

Nothing is pulled, built or run, and no layer byte moves: the layers stay
where they are (or are cross-repository mounted), only a config blob and the
manifests are uploaded. Every platform of an index is fixed.
"""

from __future__ import annotations

import copy
import datetime
import json
from dataclasses import dataclass, field

from ..errors import ImagefixError
from ..image.platforms import describe, runnable
from ..image.reference import DockerReference, parse_docker_reference
from ..image.sources.remote import read_manifest, registry_client, registry_image
from ..registry.client import INDEX_TYPES, RegistryClient
from ..registry.errors import NotFound, RegistryError
from ..registry.options import RegistryOptions
from ..registry.tls import api_host
from .plan import target_user


@dataclass
class RegistryFix:
    target: str
    digest: str
    platforms: list[dict] = field(default_factory=list)  # platform, user, change, manifest digest


def _fixed_config(config: dict, user: str, change: str) -> bytes:
    new = copy.deepcopy(config)
    section = new.setdefault("config", {}) or {}
    new["config"] = section
    section["User"] = "" if user == '""' else user
    labels = section.get("Labels") or {}
    labels["io.imagefix.change"] = f"imagefix --in-registry: {change}"
    section["Labels"] = labels
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new.setdefault("history", []).append({"created": now, "created_by": f"imagefix: USER {user}",
                                          "comment": change, "empty_layer": True})
    return json.dumps(new, separators=(",", ":")).encode()


def fix_in_registry(source: str, target: str | None, user_mode: str, options: RegistryOptions,
                    *, force: bool) -> RegistryFix:
    """The rewrite; every error names the image (a bare name's registry is not what the user typed)."""
    try:
        return _fix_in_registry(source, target, user_mode, options, force=force)
    except ImagefixError as exc:
        if source in str(exc):
            raise
        raise ImagefixError(f"{source}: {exc}") from None


def _fix_in_registry(source: str, target: str | None, user_mode: str, options: RegistryOptions,
                     *, force: bool) -> RegistryFix:
    ref = parse_docker_reference(source)
    host = api_host(ref.domain)
    if target:
        new_ref = parse_docker_reference(target)
        if api_host(new_ref.domain) != host:
            raise ImagefixError("--in-registry writes into the same registry: --tag must name a repository "
                                f"on {ref.domain}")
    else:
        new_ref = DockerReference(ref.domain, ref.path, f"{ref.tag or 'latest'}-kata", None)
    if not new_ref.tag or new_ref.digest:
        raise ImagefixError("--tag needs a tag (repository:tag), not a digest")
    client = registry_client(ref.domain, options)
    if not force:
        _refuse_existing(client, new_ref)
    top, top_digest, _ = read_manifest(client, ref.path, ref.digest or ref.tag or "latest")
    is_index = top.get("mediaType") in INDEX_TYPES or "manifests" in top
    children = runnable(top.get("manifests") or []) if is_index else [None]
    result = RegistryFix(new_ref.familiar, "")
    replaced: dict[str, dict] = {}
    for descriptor in children:
        if descriptor is None:
            manifest, digest = top, top_digest
        else:
            manifest, digest, _ = read_manifest(client, ref.path, descriptor["digest"])
        image = registry_image(client, ref.path, manifest, digest, source, ref.familiar, options)
        user, _uid, _gid, change = target_user(image, user_mode)
        config_raw = _fixed_config(image.config, user, change)
        config_digest = client.push_blob(new_ref.path, config_raw)
        if new_ref.path != ref.path:
            for layer in manifest.get("layers") or []:
                client.mount_blob(new_ref.path, layer["digest"], ref.path)
        new_manifest = copy.deepcopy(manifest)
        new_manifest["config"] = {**manifest["config"], "digest": config_digest, "size": len(config_raw)}
        raw = json.dumps(new_manifest, separators=(",", ":")).encode()
        media_type = manifest.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
        reference = new_ref.tag if descriptor is None else None
        new_digest = client.put_manifest(new_ref.path, reference or _digest(raw), raw, media_type)
        result.platforms.append({"platform": describe(descriptor) if descriptor else image.platform,
                                 "user": user, "change": change, "manifest": new_digest,
                                 "layers": [layer["digest"] for layer in manifest.get("layers") or []]})
        if descriptor is not None:
            replaced[descriptor["digest"]] = {**descriptor, "digest": new_digest, "size": len(raw)}
    if is_index:
        index = copy.deepcopy(top)
        index["manifests"] = [replaced.get(d["digest"], d) for d in top.get("manifests") or []
                              if d["digest"] in replaced]  # attestations of the old manifests are dropped
        raw = json.dumps(index, separators=(",", ":")).encode()
        result.digest = client.put_manifest(new_ref.path, new_ref.tag, raw,
                                            top.get("mediaType") or INDEX_TYPES[0])
    else:
        result.digest = result.platforms[0]["manifest"]
    result.uploads = client.stats  # type: ignore[attr-defined]
    return result


def _refuse_existing(client: RegistryClient, new_ref: DockerReference) -> None:
    """Without --force the target tag must be absent: only the registry's 404 says so. Any other
    answer (401/403: we may not look, 5xx: it could not tell) leaves that unknown, so nothing is written."""
    try:
        client.manifest_bytes(new_ref.path, new_ref.tag or "latest")
    except NotFound:
        return
    except RegistryError as exc:
        if exc.status is None:
            raise  # no answer at all: the registry's own error, named with the image like any other
        raise ImagefixError(f"cannot tell whether {new_ref.familiar} exists (HTTP {exc.status}: {exc}); "
                            "nothing was written (--force replaces it without asking)") from None
    raise ImagefixError(f"{new_ref.familiar} exists already; --force replaces it")


def _digest(raw: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


def verify_in_registry(done: RegistryFix, options: RegistryOptions) -> None:
    """Scan the new manifests from the registry (nothing pulled): every platform has the new user."""
    from msgspec.structs import replace

    from ..image.sources.remote import open_registry_images

    check = open_registry_images(done.target, done.target, replace(options, all_platforms=True))
    pairs = zip(check, done.platforms, strict=False)
    problems = [f"{img.reference}: user {img.user!r}" for img, want in pairs
                if img.user != ("" if want["user"] == '""' else want["user"])]
    if problems or len(check) != len(done.platforms):
        raise ImagefixError(f"verification failed: {'; '.join(problems) or 'platforms missing'}")
