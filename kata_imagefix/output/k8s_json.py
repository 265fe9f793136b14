"""`k8s pod --format json` and `k8s fix --format json`: the values written, and the image facts (size,
whether it is exact) they came from - what the YAML comments and the text summary say, as data.
Same head as every JSON output (json_out.py): `tool`, `schema_version`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..kata.annotations import MEMORY_ANNOTATION, TIMEOUT_ANNOTATION
from .json_out import _head


def image_facts(reference: str, image: Any) -> dict[str, Any]:
    """What a size-derived value came from: the image, its unpacked size and whether that is exact."""
    return {"reference": reference, "digest": image.digest, "user": image.user,
            "unpacked_bytes": image.unpacked_size, "compressed_bytes": image.compressed_size,
            "size_estimated": image.size_estimated}


def pod_json(needs: Any, reference: str, image: Any, model: Any, *, pod: Any = None,
             documents: Iterable[Any] | None = None, patched: list[str] | None = None) -> str:
    """`k8s pod`: the pod (or the patched documents), and why each value is what it is."""
    from ..k8s.pod import annotation_reasons

    in_force = needs.in_force
    annotations = needs.annotations()
    reasons = annotation_reasons(needs)
    estimate = needs.estimate or model.estimate(image.unpacked_size, size_estimated=image.size_estimated)
    doc: dict[str, Any] = {
        **_head(),
        "image": {**image_facts(reference, image), "name": needs.image_name},
        "size_estimated": image.size_estimated,
        "runtime_class": needs.runtime_class,
        "in_force": {"create_container_timeout": in_force.timeout_s, "default_memory": in_force.memory_mib,
                     "source": in_force.source, "known_class": in_force.known,
                     "memory_annotation_enabled": in_force.memory_annotation,
                     "kernel_params_annotation_enabled": in_force.kernel_params_annotation},
        "create_container_timeout": {"seconds": needs.timeout_s, "size_estimated": estimate.size_estimated,
                                     "annotation": annotations.get(TIMEOUT_ANNOTATION),
                                     "why": needs.timeout_why},
        "default_memory": {"mib": needs.memory_mib, "size_estimated": estimate.size_estimated,
                           "annotation": annotations.get(MEMORY_ANNOTATION), "why": needs.memory_why},
        "user": {"run_as_user": needs.run_as_user, "run_as_group": needs.run_as_group,
                 "supplemental_groups": list(needs.supplemental_groups), "fs_group": needs.fs_group,
                 "level": "pod" if needs.ids_for_pod else "container", "why": needs.user_why},
        "annotations": [{"key": key, "value": value, "why": reasons.get(key)}
                        for key, value in annotations.items()],
        "budget": estimate.as_dict(),
        "notes": list(needs.notes),
    }
    if pod is not None:
        doc["pod"] = pod
    if documents is not None:
        doc["documents"] = list(documents)
        doc["patched"] = patched or []
    return json.dumps(doc, indent=2, default=str) + "\n"


def yaml_documents(texts: Iterable[str]) -> list[Any]:
    """The documents of YAML texts as data (libyaml; a value JSON lacks, a timestamp, is dumped as text)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all("".join(texts), Loader=loader) if doc is not None]


def fix_json(outcome: Any, check: bool) -> Iterator[str]:
    """`k8s fix`: per file, each workload written - what was set per container and for the pod, each
    container's image with its unpacked size and whether that is exact, the annotations with what they
    were sized from -, then the error findings left, refusals and input errors. Written one workload at
    a time (json.dumps' indented layout): 30,000 workloads are never one document in memory."""
    yield json.dumps({**_head(), "check": check}, indent=2)[:-2] + ',\n  "files": ['
    after = "]"
    for written, item in outcome.written:
        head = {"file": item.name, "written": written.where,
                "backup": str(written.backup) if written.backup is not None else None,
                "changed": item.changed}
        yield ("\n    " if after == "]" else ",\n    ") + \
            _nested(json.dumps(head, indent=2)[:-2] + ',\n  "workloads": [', 4)
        close = "]"
        for done in item.fixes or []:
            yield ("\n" if close == "]" else ",\n") + " " * 8 + \
                _nested(json.dumps(_workload_json(done, outcome.images), indent=2), 8)
            close = "\n      ]"
        yield close + ',\n      "refused": ' + _nested(json.dumps(item.refused, indent=2), 6) + "\n    }"
        after = "\n  ]"
    tail = {
        "left": [{"subject": subject, "finding": said} for subject, said in outcome.left],
        "errors": [{"where": where, "error": message} for where, message in outcome.errors],
        "changed": outcome.changed,
        "fixed_all": not outcome.unfixed,
    }
    yield after + "," + json.dumps(tail, indent=2)[1:] + "\n"


def _nested(text: str, depth: int) -> str:
    """json.dumps' indented text as it reads `depth` spaces in."""
    return text.replace("\n", "\n" + " " * depth)


def _workload_json(done: Any, images: dict[str, tuple[Any, str | None]]) -> dict[str, Any]:
    """One workload written: each container (what was set in it, its image and size), the pod's values,
    the annotations and the image whose size they come from."""
    plan = done.plan
    read = {ref: image for _, ref in done.containers
            if (image := images.get(ref, (None, None))[0]) is not None}
    largest = max(read, key=lambda ref: read[ref].unpacked_size) if read else None  # as plan_workload
    values = {entry.index: entry.values for entry in plan.containers}
    out: dict[str, Any] = {
        "workload": done.title, "line": done.line,
        "containers": [{"name": name, "image": ref, "set": values.get(index, {}), **_size_of(read.get(ref))}
                       for index, (name, ref) in enumerate(done.containers)],
        "pod_security_context": plan.pod_security,
        "annotations": [{"key": key, "value": value, "why": plan.annotation_why.get(key)}
                        for key, value in plan.annotations.items()],
        "changes": plan.changes,
    }
    if plan.annotations and largest is not None:
        out["sized_from"] = {"image": largest, **_size_of(read[largest])}
    return out


def _size_of(image: Any) -> dict[str, Any]:
    if image is None:
        return {"unpacked_bytes": None, "size_estimated": None}
    return {"unpacked_bytes": image.unpacked_size, "size_estimated": image.size_estimated}
