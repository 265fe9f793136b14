"""Stable JSON: numbers are bytes and seconds. Documented in README (JSON output)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..image.model import Image
from ..rules import catalogue
from ..rules.base import CATALOGUE
from ..rules.finding import Finding, Severity
from ..rules.result import ScanResult

if TYPE_CHECKING:
    from ..fix.run import FixOutcome
    from . import Rendered, RenderOptions

SCHEMA_VERSION = 1


def _head() -> dict[str, Any]:
    return {"tool": {"name": "imagefix", "version": __version__}, "schema_version": SCHEMA_VERSION}


def render(data: Rendered, options: RenderOptions) -> str:
    """Findings (each subject with its findings, errors, a summary), a size report, or what fix did."""
    if isinstance(data, list):
        return findings_json(data, options.fail_on, profile=options.profile, errors=options.errors,
                             key=options.key, totals=options.totals)
    from ..report.model import Report, to_dict

    if isinstance(data, Report):
        return json.dumps({**_head(), **to_dict(data)}, indent=2) + "\n"
    return json.dumps({**_head(), **fix_dict(data)}, indent=2) + "\n"


def _title(rule_id: str) -> str:
    """The rule's title; the findings of another run (`imagefix merge`) may name a rule not loaded here."""
    rule = CATALOGUE.get(rule_id) or catalogue().get(rule_id)
    return rule.title if rule else rule_id


def finding_dict(finding: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": finding.rule,
        "severity": finding.severity.label,
        "title": _title(finding.rule),
        "message": finding.message,
        "fix": finding.fix,
    }
    if finding.file is not None:
        out["file"] = finding.file
        out["line"] = finding.line
    if finding.layer is not None:
        out["layer"] = finding.layer
    if finding.data:
        out["data"] = finding.data
    return out


def image_dict(image: Image) -> dict[str, Any]:
    return {
        "transport": image.transport,
        "name": image.name,
        "digest": image.digest,
        "image_id": image.image_id,
        "platform": image.platform,
        "user": image.user,
        "unpacked_bytes": image.unpacked_size,
        "compressed_bytes": image.compressed_size,
        "size_estimated": image.size_estimated,
        **({"transfer": {"requests": image.transfer.requests, "bytes": image.transfer.bytes,
                         "by_kind": image.transfer.by_kind}} if image.transfer is not None else {}),
        "layers": [
            {
                "index": layer.index,
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "unpacked_bytes": layer.size,
                "compressed_bytes": layer.compressed_size,
                "size_estimated": layer.size_estimated,
                "size_counts": "estimate" if layer.size_estimated else layer.size_basis,
                "tar_bytes": layer.tar_size,
                **({"size_note": layer.size_note} if layer.size_estimated and layer.size_note else {}),
                "created_by": layer.created_by,
            }
            for layer in image.layers
        ],
    }


def result_dict(result: ScanResult, fail_on: Severity | None,
                subject_key: str = "reference") -> dict[str, Any]:
    out: dict[str, Any] = {subject_key: result.subject}
    if result.image is not None:
        out.update(image_dict(result.image))
    if result.budget is not None:
        out["budget"] = result.budget.as_dict()
    if result.size_estimated is not None:
        out["size_estimated"] = result.size_estimated
    out["findings"] = [finding_dict(f) for f in result.findings]
    out["suppressed"] = [finding_dict(f) for f in result.suppressed]
    if result.notes:
        out["notes"] = result.notes
    out["passed"] = not (fail_on is not None and any(f.severity >= fail_on for f in result.findings))
    return out


def findings_json(results: list[ScanResult], fail_on: Severity | None, *, profile: str,
                  errors: list[tuple[str, str]], key: str = "images", totals: dict | None = None) -> str:
    counts = {s.label: sum(1 for r in results for f in r.findings if f.severity is s) for s in Severity}
    doc = {
        **_head(),
        "profile": profile,
        "fail_on": fail_on.label if fail_on else "never",
        key: [result_dict(r, fail_on, {"files": "file", "workloads": "workload"}.get(key, "reference"))
              for r in results],
        "errors": [{"reference": ref, "error": msg} for ref, msg in errors],
        "summary": counts,
    }
    if totals is not None:
        doc["totals"] = totals
    return json.dumps(doc, indent=2) + "\n"


def fix_dict(outcome: FixOutcome) -> dict[str, Any]:
    """What `imagefix fix` did."""
    request = outcome.request
    if outcome.kind == "in-registry":
        done = outcome.registry
        doc = {"source": request.ref, "target": done.target, "digest": done.digest,
               "platforms": done.platforms, "uploaded": done.uploads.by_kind}
    elif outcome.kind == "dockerfile":
        doc = {"source": request.ref, "written": str(outcome.written), "change": outcome.plan.change,
               "dockerfile": outcome.plan.dockerfile, "notes": outcome.notes}
    else:
        local, plan = outcome.local, outcome.plan
        checked = local.verification
        doc = {
            "source": request.ref, "tag": local.tag, "image_id": local.image_id,
            "pushed_digest": local.pushed_digest or None, "variant": request.variant,
            "user_mode": request.user_mode, "change": plan.change, "dockerfile": plan.dockerfile,
            "verification": {"config_user": checked.config_user, "ran_id": checked.ran, "uid": checked.uid,
                             "gid": checked.gid},
            "notes": outcome.notes,
            "before": {k.replace(" ", "_"): b for k, b, _ in local.rows},
            "after": {k.replace(" ", "_"): a for k, _, a in local.rows},
            "added_by_runtime_base": local.added,
        }
    return doc
