"""The size report before push: layers, base boundary, baseline diff, Kata budget, file-level waste, gates.

Every format renders the same Report object. The base boundary comes from the
base image's own layer digests (its label, --base, or the baseline's label),
never from assuming "layer 0".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImagefixError
from ..image.layerwalk import FileView, merge
from ..image.model import Image, short_created_by
from ..model.budget import BudgetEstimate, BudgetModel

BASE_LABEL = "org.opencontainers.image.base.name"


@dataclass
class LayerRow:
    index: int
    digest: str
    created_by: str
    unpacked: int
    compressed: int | None
    share: float
    in_base: bool
    estimated: bool
    full_created_by: str = ""  # the whole command, for the HTML tooltip


@dataclass
class Baseline:
    reference: str
    unpacked: int
    delta: int
    delta_pct: float
    added: list[int]  # indexes in the image
    removed: int  # layers of the baseline no longer present
    base_changed: bool | None
    per_layer: list[tuple[int, int | None, int]]  # (index, baseline bytes at that position, now)
    basis: str = "files"  # what both totals count: "files" (as `docker history`), "tar" (layer tars)
    estimated: bool = False  # a side's size is only estimated, or the two count differently
    why: str = ""  # why it is not exact
    now: int = 0  # the image's total on the same basis


@dataclass
class Gate:
    name: str
    limit: str
    actual: str
    crossed: bool
    estimated: bool = False  # decided on an estimated size
    note: str = ""  # why an estimate kept it from passing


@dataclass
class Report:
    reference: str
    name: str | None
    digest: str | None
    platform: str
    user: str
    unpacked: int
    compressed: int | None
    estimated: bool
    layers: list[LayerRow]
    base: dict[str, Any]
    budget: BudgetEstimate
    baseline: Baseline | None = None
    files: FileView | None = None
    walk: str | None = None  # how layers were read for --files
    gates: list[Gate] = field(default_factory=list)
    push: Any = None  # report.push.PushOutcome, with --push
    image: Image | None = field(default=None, repr=False)  # what the report is about

    @property
    def failed(self) -> bool:
        return any(g.crossed for g in self.gates)

    @property
    def base_bytes(self) -> int:
        return sum(row.unpacked for row in self.layers if row.in_base)


def _common_prefix(a: list[str | None], b: list[str | None]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x is None or x != y:
            break
        count += 1
    return count


def find_base(
    image: Image, opener: Callable[[str], Image], base_ref: str | None, baseline: Image | None
) -> dict[str, Any]:
    """Which leading layers are the base image's, from the base's own diff IDs."""
    candidates: list[tuple[str, str]] = []
    if base_ref:
        candidates.append((base_ref, "--base"))
    if image.labels.get(BASE_LABEL):
        candidates.append((image.labels[BASE_LABEL], f"label {BASE_LABEL}"))
    if baseline is not None and baseline.labels.get(BASE_LABEL):
        candidates.append((baseline.labels[BASE_LABEL], "the baseline's base label"))
    notes = []
    for ref, how in candidates:
        try:
            base = opener(ref)
        except ImagefixError as exc:
            if how == "--base":
                raise
            notes.append(f"{how} names {ref}, which could not be read: {exc}")
            continue
        count = _common_prefix(
            [layer.diff_id for layer in image.layers], [layer.diff_id for layer in base.layers]
        )
        if count < len(base.layers):
            notes.append(f"{ref} ({how}) is not the base of this image: its layers are not at the bottom")
            if how == "--base":
                raise ImagefixError(
                    f"--base {ref}: its layers are not the bottom layers of {image.reference}"
                )
            continue
        return {
            "reference": ref,
            "found_by": how,
            "layers": count,
            "diff_ids": [layer.diff_id for layer in base.layers],
            "notes": notes,
        }
    return {
        "reference": None,
        "found_by": None,
        "layers": 0,
        "diff_ids": [],
        "notes": notes or ["base unknown: give --base REF (imagefix does not assume layer 0 is the base)"],
    }


def _counted(image: Image, basis: str) -> list[int | None]:
    """Each layer's size on `basis`, None where the image does not know it exactly."""
    if basis == "files":
        return [None if layer.size_estimated or layer.size_basis != "files" else layer.size
                for layer in image.layers]
    known = [layer.tar_size for layer in image.layers]
    if None in known:  # the engine's layer store knows its tars: asked only when a comparison needs them
        stored = getattr(image.contents, "tar_sizes", lambda: None)()
        if stored is not None and len(stored) == len(known):
            known = [k if k is not None else s for k, s in zip(known, stored, strict=True)]
    return known


def like_with_like(image: Image, baseline: Image) -> tuple[str, list[int] | None, list[int] | None]:
    """Both images' layer sizes on one basis, exactly: file bytes if both sides know them, else tar
    lengths. A layer one side cannot count takes the other side's count for the same diff ID (the same
    tar). (basis, sizes now, sizes before), or sizes None when no basis is exact on both sides."""
    for basis in ("files", "tar"):
        now, before = _counted(image, basis), _counted(baseline, basis)
        known = {layer.diff_id: size for layers, sizes in ((image.layers, now), (baseline.layers, before))
                 for layer, size in zip(layers, sizes, strict=True) if size is not None and layer.diff_id}
        now = [size if size is not None else known.get(layer.diff_id or "")
               for layer, size in zip(image.layers, now, strict=True)]
        before = [size if size is not None else known.get(layer.diff_id or "")
                  for layer, size in zip(baseline.layers, before, strict=True)]
        exact_now = [size for size in now if size is not None]
        exact_before = [size for size in before if size is not None]
        if len(exact_now) == len(now) and len(exact_before) == len(before):
            return basis, exact_now, exact_before
    return "mixed", None, None


def _why_not_exact(image: Image, baseline: Image) -> str:
    for side in (image, baseline):
        guessed = [layer for layer in side.layers if layer.size_estimated]
        if guessed:
            note = f": {guessed[0].size_note}" if guessed[0].size_note else ""
            return (f"{side.reference}: {len(guessed)} layer size(s) estimated from compressed sizes{note}")
    return (f"{image.reference} counts file bytes and {baseline.reference} tar lengths (or the other way "
            "round), and neither can count the other's way here")


def compare(image: Image, baseline: Image, base: dict[str, Any]) -> Baseline:
    now = [layer.diff_id for layer in image.layers]
    before = [layer.diff_id for layer in baseline.layers]
    basis, sizes_now, sizes_before = like_with_like(image, baseline)
    why = ""
    if sizes_now is None or sizes_before is None:
        why = _why_not_exact(image, baseline)
        sizes_now = [layer.size or 0 for layer in image.layers]
        sizes_before = [layer.size or 0 for layer in baseline.layers]
    total_now, total_before = sum(sizes_now), sum(sizes_before)
    delta = total_now - total_before
    pct = (delta / total_before * 100) if total_before else 0.0
    base_changed = None
    if base["layers"]:
        base_changed = before[: base["layers"]] != base["diff_ids"]
    elif now and before:
        base_changed = now[0] != before[0]
    per_layer = [
        (i, sizes_before[i] if i < len(sizes_before) else None, sizes_now[i])
        for i in range(len(image.layers))
    ]
    return Baseline(
        baseline.reference,
        total_before,
        delta,
        pct,
        [i for i, d in enumerate(now) if d not in before],
        sum(1 for d in before if d not in now),
        base_changed,
        per_layer,
        basis=basis if not why else "mixed",
        estimated=bool(why),
        why=why,
        now=total_now,
    )


def build_report(
    image: Image,
    model: BudgetModel,
    *,
    opener: Callable[[str], Image],
    base_ref: str | None = None,
    baseline_ref: str | None = None,
    files: int = 0,
    walk: str = "auto",
) -> Report:
    """The report; with `files`, the layer walk runs beside the baseline's opening (`docker save` keeps
    the engine busy for seconds before its first byte)."""
    from concurrent.futures import ThreadPoolExecutor

    view = None
    how = None
    baseline = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer-walk") as pool:
        walked = pool.submit(image.layer_entries, walk) if files else None
        if baseline_ref:
            try:
                baseline = opener(baseline_ref)
            except ImagefixError as exc:
                raise ImagefixError(f"baseline {baseline_ref}: {exc}") from None
        if walked is not None:
            entries, how = walked.result()
    if files:
        view = merge(entries, files)
        for layer, size in zip(image.layers, view.layer_sizes, strict=False):
            layer.size, layer.size_estimated, layer.size_basis = size, False, "files"  # exact, from the walk
    base = find_base(image, opener, base_ref, baseline)
    total = image.unpacked_size or 1
    rows = [
        LayerRow(
            layer.index,
            layer.diff_id or layer.digest or "",
            short_created_by(layer.created_by, 70),
            layer.size or 0,
            layer.compressed_size,
            (layer.size or 0) / total,
            layer.index < base["layers"],
            layer.size_estimated,
            short_created_by(layer.created_by, len(layer.created_by) + 1),
        )
        for layer in image.layers
    ]
    report = Report(
        image.reference,
        image.name,
        image.digest,
        image.platform,
        image.user,
        image.unpacked_size,
        image.compressed_size,
        image.size_estimated,
        rows,
        base,
        model.estimate(image.unpacked_size, size_estimated=image.size_estimated),
        files=view,
        walk=how,
        image=image,
    )
    if baseline is not None:
        report.baseline = compare(image, baseline, base)
    return report


@dataclass(frozen=True)
class Gates:
    """The limits a report is held to, read (and refused when unreadable) before any work."""

    budget: int | None = None
    max_layer: int | None = None
    max_growth: str | None = None

    @classmethod
    def parse(cls, budget: str | int | None, max_layer_size: str | int | None, max_growth: str | None,
              has_baseline: bool) -> Gates:
        from ..sizes import parse_growth, parse_size

        if max_growth and not has_baseline:
            raise ImagefixError("--max-growth needs --baseline REF to compare with")
        if max_growth:
            parse_growth(max_growth)
        return cls(parse_size(budget) if budget is not None else None,
                   parse_size(max_layer_size) if max_layer_size is not None else None, max_growth)


REFUSED = ("refuses to pass on an estimated size ({why}): --exact counts the registry's layers, "
           "--accept-estimates lets an estimate decide")


def _gate(name: str, limit: str, actual: str, crossed: bool, estimated: bool, why: str,
          accept_estimates: bool) -> Gate:
    """A gate; one that would pass on an estimate fails instead, unless estimates are accepted."""
    if estimated and not crossed and not accept_estimates:
        return Gate(name, limit, actual + " (estimated)", True, True, REFUSED.format(why=why))
    return Gate(name, limit, actual + (" (estimated)" if estimated else ""), crossed, estimated)


def apply_gates(report: Report, *, budget: int | None, max_layer: int | None, max_growth: str | None,
                accept_estimates: bool = False) -> None:
    from ..sizes import human_size, parse_growth

    guessed = [row for row in report.layers if row.estimated]
    why = f"{len(guessed)} layer size(s) of {report.reference} estimated from compressed sizes"
    if budget is not None:
        report.gates.append(_gate("budget", human_size(budget), human_size(report.unpacked),
                                  report.unpacked > budget, report.estimated, why, accept_estimates))
    if max_layer is not None:
        biggest = max(report.layers, key=lambda row: row.unpacked, default=None)
        size = biggest.unpacked if biggest else 0
        report.gates.append(_gate("max-layer-size", human_size(max_layer), human_size(size), size > max_layer,
                                  report.estimated, why, accept_estimates))
    if max_growth is not None:
        if report.baseline is None:
            raise ImagefixError("--max-growth needs --baseline REF to compare with")
        b = report.baseline
        kind, limit = parse_growth(max_growth)
        if kind == "pct":
            report.gates.append(_gate("max-growth", f"{limit:g}%", f"{b.delta_pct:+.1f}%",
                                      b.delta_pct > limit, b.estimated, b.why, accept_estimates))
        else:
            report.gates.append(_gate("max-growth", human_size(limit), f"{human_size(b.delta)}",
                                      b.delta > limit, b.estimated, b.why, accept_estimates))


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON form (bytes and seconds)."""
    out: dict[str, Any] = {
        "reference": report.reference,
        "name": report.name,
        "digest": report.digest,
        "platform": report.platform,
        "user": report.user,
        "unpacked_bytes": report.unpacked,
        "compressed_bytes": report.compressed,
        "size_estimated": report.estimated,
        "base": {k: v for k, v in report.base.items() if k != "diff_ids"} | {"bytes": report.base_bytes},
        "layers": [
            {
                "index": r.index,
                "digest": r.digest,
                "created_by": r.created_by,
                "unpacked_bytes": r.unpacked,
                "compressed_bytes": r.compressed,
                "share": round(r.share, 4),
                "in_base": r.in_base,
                "size_estimated": r.estimated,
            }
            for r in report.layers
        ],
        "budget": report.budget.as_dict(),
        "gates": [
            {"name": g.name, "limit": g.limit, "actual": g.actual, "crossed": g.crossed,
             "size_estimated": g.estimated, **({"note": g.note} if g.note else {})} for g in report.gates
        ],
        "passed": not report.failed,
        **({"push": {"pushed": report.push.pushed, "reference": report.push.reference,
                     "digest": report.push.digest, "why": report.push.why or None,
                     "events": report.push.events}} if report.push else {}),
    }
    if report.baseline is not None:
        b = report.baseline
        out["baseline"] = {
            "reference": b.reference,
            "unpacked_bytes": b.unpacked,
            "delta_bytes": b.delta,
            "delta_percent": round(b.delta_pct, 2),
            "added_layers": b.added,
            "removed_layers": b.removed,
            "base_changed": b.base_changed,
            "compared_by": b.basis,
            "size_estimated": b.estimated,
            **({"why_estimated": b.why} if b.why else {}),
            "now_bytes": b.now,
        }
    if report.files is not None:
        f = report.files
        out["files"] = {
            "read_by": report.walk,
            "visible_files": f.file_count,
            "waste_bytes": f.waste_bytes,
            "largest_files": [{"path": "/" + p, "bytes": s, "layer": layer} for p, s, layer in f.files],
            "largest_directories": [{"path": "/" + p, "bytes": s} for p, s in f.directories],
            "waste": [
                {
                    "path": "/" + w.path,
                    "bytes": w.bytes,
                    "layer": w.layer,
                    "hidden_by": w.hidden_by,
                    "how": w.how,
                }
                for w in f.waste
            ],
        }
    return out
