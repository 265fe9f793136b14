"""What `imagefix fix` did, as text or JSON."""

from __future__ import annotations

import json

from ..fix.run import FixOutcome
from ..sizes import human_size


def render_fix(outcome: FixOutcome, fmt: str) -> str:
    lines = _json(outcome) if fmt == "json" else _text(outcome)
    return "".join(line + "\n" for line in lines)


def _json(outcome: FixOutcome) -> list[str]:
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
    return [json.dumps(doc, indent=2)]


def _text(outcome: FixOutcome) -> list[str]:
    if outcome.kind == "in-registry":
        done = outcome.registry
        lines = [f"{item['platform']}: {item['change']}" for item in done.platforms]
        lines.append(f"pushed {done.target}@{done.digest} (config and manifests only; the "
                     f"{len(done.platforms[0]['layers'])} layers were reused, verified by a registry scan)")
        return lines
    if outcome.kind == "dockerfile":
        return [f"wrote {outcome.written}: {outcome.plan.change}", *(f"note: {n}" for n in outcome.notes)]
    local, plan = outcome.local, outcome.plan
    checked = local.verification
    how = (f"id in a container says {checked.uid}:{checked.gid}" if checked.ran
           else "config checked (no `id` in the image to run)")
    user = checked.config_user or '""'
    lines = [f"built {local.tag} ({local.image_id[:19]}): {plan.change}",
             f"verified in the engine (as docker run sees it): config user {user}; {how}; no KIF101; Env, "
             "WorkingDir, Entrypoint, Cmd, ports, volumes and labels as in the source"]
    for name, before, after in local.rows:
        if name == "unpacked size":
            before, after = human_size(before), human_size(after)
        lines.append(f"  {name:14} {before!s:>12} -> {after}")
    if local.added:
        lines.append(f"added by the runtime base (allowed): {', '.join(local.added)}")
    lines += [f"note: {note}" for note in outcome.notes]
    if local.pushed_digest:
        lines.append(f"pushed {local.tag}@{local.pushed_digest}")
    return lines
