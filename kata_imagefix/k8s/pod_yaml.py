"""The YAML `k8s pod` writes for what a pod needs (pod.py): a Pod, or kustomize strategic-merge patches
for the workloads that run the image, every value with its reason as a comment."""

from __future__ import annotations

import io
import re
from typing import Any

from ..errors import ImagefixError
from ..image.model import Image
from ..image.reference import parse_docker_reference
from .pod import PodNeeds, annotation_reasons
from .walk import WORKLOAD_PATHS, matching_containers, pod_annotations, pod_spec, split_documents, workloads


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _dump(data: Any, yaml=None) -> str:
    stream = io.StringIO()
    (yaml or _yaml()).dump(data, stream)
    return stream.getvalue()


def _quoted(value: str):
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(value)


def _security_context(needs: PodNeeds, context=None):
    """runAsUser/runAsGroup (into `context` when given); empty where the ids belong to the pod."""
    from ruamel.yaml.comments import CommentedMap

    context = CommentedMap() if context is None else context
    if needs.run_as_user is not None:
        context["runAsUser"] = needs.run_as_user
        context.yaml_add_eol_comment(needs.user_why, "runAsUser")
    if needs.run_as_group is not None:
        context["runAsGroup"] = needs.run_as_group
    return context


def _pod_security_context(needs: PodNeeds, *, fs_group_comment: bool = False):
    """The pod-level part of the identity: fsGroup (asked for) and the image's supplementary groups."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    context = CommentedMap()
    if needs.ids_for_pod:
        _security_context(needs, context)
    if needs.fs_group is not None:
        context["fsGroup"] = needs.fs_group
        if fs_group_comment:
            context.yaml_add_eol_comment("--fs-group: volumes writable by this group", "fsGroup")
    if needs.supplemental_groups:
        groups = CommentedSeq(needs.supplemental_groups)
        groups.fa.set_flow_style()
        context["supplementalGroups"] = groups
        context.yaml_add_eol_comment("the image's /etc/group groups: lost under guest pull otherwise",
                                     "supplementalGroups")
    return context


def _annotate(annotations, needs: PodNeeds, existing: dict[str, Any] | None = None) -> None:
    why = annotation_reasons(needs)
    for key, value in needs.annotations(existing if existing is not None else dict(annotations)).items():
        annotations[key] = _quoted(value)
        annotations.yaml_add_eol_comment(why[key], key)


def manifest_name(parsed: Any, image: Image) -> str:
    """How manifests name the image: the reference itself for registry and engine images; for a
    layout or archive, its recorded name when that is a full reference (not just a tag)."""
    if parsed.kind.named:
        return parsed.target
    name = image.name or ""
    if "/" in name or ":" in name:
        try:
            parse_docker_reference(name)
            return name
        except ImagefixError:
            pass
    recorded = f" (it records only {name!r})" if name else ""
    raise ImagefixError(f"{parsed.original}: say how manifests name this image with --image-name NAME, "
                        f"e.g. --image-name spark:3.5.3{recorded}")


def container_name(image_name: str) -> str:
    base = image_name.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-")[:63] or "app"


def pod_yaml(needs: PodNeeds, header: str) -> str:
    lines = [f"# {header}"] + [f"# note: {note}" for note in needs.notes]
    return "\n".join(lines) + "\n" + _dump(pod_manifest(needs))


def pod_manifest(needs: PodNeeds) -> Any:
    """The Pod as data (a mapping whose values carry their reasons as comments; plain JSON too)."""
    from ruamel.yaml.comments import CommentedMap

    pod = CommentedMap()
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    metadata = CommentedMap(name=container_name(needs.image_name))
    if needs.annotations():
        metadata["annotations"] = CommentedMap()
        _annotate(metadata["annotations"], needs)
    pod["metadata"] = metadata
    spec = CommentedMap()
    spec["runtimeClassName"] = needs.runtime_class
    pod_context = _pod_security_context(needs, fs_group_comment=True)
    if pod_context:
        spec["securityContext"] = pod_context
    container = CommentedMap(name=container_name(needs.image_name), image=needs.image_name)
    context = _security_context(needs) if not needs.ids_for_pod else None
    if context:
        container["securityContext"] = context
    spec["containers"] = [container]
    pod["spec"] = spec
    return pod


def kustomize_patches(text: str, needs: PodNeeds) -> str:
    """Strategic-merge patches, one per workload that runs the image."""
    from ruamel.yaml.comments import CommentedMap

    docs = []
    for doc in (d for chunk in split_documents(text) for d in workloads(_yaml().load(chunk))):
        spec = pod_spec(doc)
        containers = matching_containers(spec, needs.image_name)
        if not containers:
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise ImagefixError(f"{doc['kind']} without metadata.name: a kustomize patch needs the name")
        patch = CommentedMap(apiVersion=doc.get("apiVersion", "v1"), kind=doc["kind"])
        patch["metadata"] = CommentedMap(name=metadata["name"])
        if metadata.get("namespace"):
            patch["metadata"]["namespace"] = metadata["namespace"]
        patch_spec = CommentedMap(runtimeClassName=needs.runtime_class)
        pod_context = _pod_security_context(needs)
        if pod_context:
            patch_spec["securityContext"] = pod_context
        patch_spec["containers"] = []
        for container in containers:
            entry = CommentedMap(name=container.get("name"))
            context = _security_context(needs) if not needs.ids_for_pod else None
            if context:
                entry["securityContext"] = context
            patch_spec["containers"].append(entry)
        annotations = CommentedMap()
        _annotate(annotations, needs, pod_annotations(doc, "the manifest"))
        template = CommentedMap(metadata=CommentedMap(annotations=annotations)) if annotations else \
            CommentedMap()  # no `annotations: {}` when nothing is raised
        template["spec"] = patch_spec
        node = patch
        path = WORKLOAD_PATHS[doc["kind"]]
        if doc["kind"] == "Pod":
            if annotations:
                patch["metadata"]["annotations"] = annotations
            patch["spec"] = patch_spec
        else:
            for key in path[:-2]:
                node[key] = CommentedMap()
                node = node[key]
            node[path[-2]] = template
        docs.append(_dump(patch))
    if not docs:
        raise ImagefixError(f"no Pod/Deployment/StatefulSet/Job/CronJob container uses {needs.image_name}")
    return "---\n".join(docs)
