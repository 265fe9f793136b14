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
from ..kata.budget import BudgetEstimate, BudgetModel

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


@dataclass
class Gate:
    name: str
    limit: str
    actual: str
    crossed: bool


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


def compare(image: Image, baseline: Image, base: dict[str, Any]) -> Baseline:
    now = [layer.diff_id for layer in image.layers]
    before = [layer.diff_id for layer in baseline.layers]
    delta = image.unpacked_size - baseline.unpacked_size
    pct = (delta / baseline.unpacked_size * 100) if baseline.unpacked_size else 0.0
    base_changed = None
    if base["layers"]:
        base_changed = before[: base["layers"]] != base["diff_ids"]
    elif now and before:
        base_changed = now[0] != before[0]
    per_layer = [
        (i, baseline.layers[i].size if i < len(baseline.layers) else None, layer.size or 0)
        for i, layer in enumerate(image.layers)
    ]
    return Baseline(
        baseline.reference,
        baseline.unpacked_size,
        delta,
        pct,
        [i for i, d in enumerate(now) if d not in before],
        sum(1 for d in before if d not in now),
        base_changed,
        per_layer,
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
            layer.size, layer.size_estimated = size, False  # exact, from the walk
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
        model.estimate(image.unpacked_size),
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
    def parse(cls, budget: str | None, max_layer_size: str | None, max_growth: str | None,
              has_baseline: bool) -> Gates:
        from ..sizes import parse_size

        if max_growth and not has_baseline:
            raise ImagefixError("--max-growth needs --baseline REF to compare with")
        return cls(parse_size(budget) if budget else None,
                   parse_size(max_layer_size) if max_layer_size else None, max_growth)


def apply_gates(report: Report, *, budget: int | None, max_layer: int | None, max_growth: str | None) -> None:
    from ..sizes import human_size, parse_size

    if budget is not None:
        report.gates.append(
            Gate("budget", human_size(budget), human_size(report.unpacked), report.unpacked > budget)
        )
    if max_layer is not None:
        biggest = max((row.unpacked for row in report.layers), default=0)
        report.gates.append(
            Gate("max-layer-size", human_size(max_layer), human_size(biggest), biggest > max_layer)
        )
    if max_growth is not None:
        if report.baseline is None:
            raise ImagefixError("--max-growth needs --baseline REF to compare with")
        delta = report.baseline.delta
        if max_growth.strip().endswith("%"):
            try:
                limit = float(max_growth.strip()[:-1])
            except ValueError:
                raise ImagefixError(f"cannot read --max-growth {max_growth!r}: use 50MB or 10%") from None
            report.gates.append(
                Gate(
                    "max-growth",
                    f"{limit:g}%",
                    f"{report.baseline.delta_pct:+.1f}%",
                    report.baseline.delta_pct > limit,
                )
            )
        else:
            limit_bytes = parse_size(max_growth)
            report.gates.append(
                Gate("max-growth", human_size(limit_bytes), f"{human_size(delta)}", delta > limit_bytes)
            )


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
            {"name": g.name, "limit": g.limit, "actual": g.actual, "crossed": g.crossed} for g in report.gates
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
