"""`merge`: the JSON results of several runs (shards of a fleet audit) read back and combined into one
set of results, with the k8s check totals of the whole; refused when they are not of one command or one
sharded run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ImagefixError
from ..rules.result import ScanResult

KEYS = {"images": "reference", "files": "file", "workloads": "workload"}


@dataclass
class MergedResults:
    key: str  # images, files or workloads: what the runs checked
    entries: list[ScanResult]
    errors: list[tuple[str, Any]]  # each once, and a missing shard
    profile: str
    totals: dict[str, Any] | None  # k8s check's totals of the whole (None: not workloads, or no totals)


def merge_results(paths: tuple[str, ...] | list[str]) -> MergedResults:
    """Every result file read (the first that is not an imagefix JSON result, or holds another command's
    results, stops the merge) and combined."""
    key, entries, errors, profile = None, [], [], "kata-tdx"
    totals: list[tuple[str, dict]] = []
    for path in paths:
        doc_key, doc_entries, doc_errors, profile, doc_totals = _read(path)
        if key not in (None, doc_key):
            raise ImagefixError(f"{path}: holds {doc_key}, the others {key}: merge results of one command")
        key = doc_key
        entries += doc_entries
        errors += [e for e in doc_errors if e not in errors]  # each shard reads every file: once
        if doc_totals is not None:
            totals.append((path, doc_totals))
    errors += shard_gaps(totals)
    whole = merged_totals(totals) if key == "workloads" and totals else None
    return MergedResults(key or "images", entries, errors, profile, whole)


def shard_gaps(totals: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """`k8s check --shard I/N` results: the same N everywhere, each I once (a shard merged twice would
    count its workloads twice: refused); a missing one is an error in the report."""
    shards = [(path, doc.get("shard")) for path, doc in totals]
    given = [(path, shard) for path, shard in shards if shard is not None]
    if not given:
        return []
    if len(given) != len(shards):
        path = next(path for path, shard in shards if shard is None)
        raise ImagefixError(f"{path}: not a shard, the others are: merge the shards of one run")
    seen: dict[int, str] = {}
    count = None
    for path, shard in given:
        index_text, _, count_text = str(shard).partition("/")
        if not (index_text.isdigit() and count_text.isdigit()):
            raise ImagefixError(f"{path}: totals.shard must be I/N, not {shard!r}")
        index, n = int(index_text), int(count_text)
        if count is not None and n != count:
            raise ImagefixError(f"{path}: shard {shard}, the others of {count}: merge the shards of one run")
        count = n
        if index in seen:
            raise ImagefixError(f"{path}: shard {shard} again (also {seen[index]}): merged twice, its "
                                "workloads would count twice")
        seen[index] = path
    return [("shards", f"shard {i}/{count} is missing: its workloads are not in this report")
            for i in range(count or 0) if i not in seen]


def merged_totals(totals: list[tuple[str, dict]]) -> dict[str, Any]:
    """The totals of the whole: audited counts added, images and skipped files once. Every shard reads
    every file, so what they skip (not Kata, patch fragments) is the same in each: counted once."""
    from ..k8s.audit import OTHER_SHARD

    sharded = any(doc.get("shard") for _, doc in totals)
    out: dict[str, Any] = {"workloads": 0, "containers": 0, "image_refs": [], "unreadable_refs": [],
                           "skipped": {}, "skipped_files": [], "shard": None, "notes": []}
    for _, doc in totals:
        for name in ("workloads", "containers"):
            value = doc.get(name)
            out[name] += value if isinstance(value, int) else 0
        for name in ("image_refs", "unreadable_refs", "skipped_files", "notes"):
            for item in doc.get(name) or []:
                if item not in out[name]:
                    out[name].append(item)
        for reason, n in (doc.get("skipped") or {}).items():
            if reason == OTHER_SHARD or not isinstance(n, int):
                continue
            before = out["skipped"].get(reason, 0)
            out["skipped"][reason] = max(before, n) if sharded else before + n
    out["image_refs"].sort()
    out["unreadable_refs"].sort()
    return out


def _read(path: str) -> tuple[str, list, list, str, dict | None]:
    from ..fileio import read_input
    from ..image.documents import load_json, mapping, sequence, text
    from ..rules.finding import Finding, Severity

    doc = mapping(load_json(read_input(path, "JSON result"), path), path)
    key = next((k for k in KEYS if k in doc), None)
    if key is None:
        raise ImagefixError(f"{path}: not an imagefix JSON result (no images, files or workloads)")
    out = []
    for number, entry in enumerate(sequence(doc[key], f"{path}: {key}")):
        entry = mapping(entry, f"{path}: {key}[{number}]")
        subject = text(entry.get(KEYS[key]), f"{path}: {key}[{number}].{KEYS[key]}")
        lists: dict[str, list[Finding]] = {"findings": [], "suppressed": []}
        for name in lists:
            for index, item in enumerate(sequence(entry.get(name), f"{path}: {key}[{number}].{name}",
                                                  optional=True)):
                where = f"{path}: {key}[{number}].{name}[{index}]"
                item = mapping(item, where)
                try:
                    severity = Severity.parse(str(item.get("severity")))
                except ValueError:
                    raise ImagefixError(f"{where}.severity is not error, warning or info") from None
                lists[name].append(Finding(text(item.get("rule"), f"{where}.rule"), severity,
                                           text(item.get("message"), f"{where}.message"),
                                           text(item.get("fix"), f"{where}.fix", optional=True),
                                           item.get("file"), item.get("line"), item.get("layer"),
                                           data=mapping(item.get("data"), f"{where}.data", optional=True)))
        result = ScanResult(subject, lists["findings"], lists["suppressed"])
        result.notes = [str(n) for n in sequence(entry.get("notes"), f"{path}: notes", optional=True)]
        out.append(result)
    errors: list[tuple[str, Any]] = [(str(e.get("reference")), str(e.get("error")))
                                     for e in sequence(doc.get("errors"), f"{path}: errors", optional=True)
                                     if isinstance(e, dict)]
    totals = mapping(doc.get("totals"), f"{path}: totals", optional=True) if "totals" in doc else None
    return key, out, errors, str(doc.get("profile") or "kata-tdx"), totals
