"""SARIF 2.1.0: one run, the rule catalogue as the driver's rules, one result per finding.

GitHub code scanning drops a result without a physical location (and may refuse the upload), so
every result has one: the file and line for Dockerfile, Kata and manifest findings; for an image,
the image as the artifact (the layout or archive path, else the repository name) at line 1, as
image scanners do. Paths under the working directory (the checkout) are relative to it, others
are `file://` URIs. The requirements are GitHub's "SARIF support for code scanning" page; the
test suite checks every SARIF the commands emit against them and against the SARIF 2.1.0 schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import __version__
from ..rules import all_rules
from ..rules.finding import Severity
from ..rules.result import ScanResult
from .untrusted import for_terminal

if TYPE_CHECKING:
    from . import RenderOptions

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule_descriptor(rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": _first_paragraph(rule.doc)},
        "help": {"text": rule.doc},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
    }


FULL_DESCRIPTION_MAX = 1000  # GitHub shows at most this many characters of fullDescription


def _first_paragraph(doc: str) -> str:
    text = doc.strip().split("\n\n")[0].replace("\n", " ")
    return text if len(text) <= FULL_DESCRIPTION_MAX else text[: FULL_DESCRIPTION_MAX - 1] + "…"


def file_uri(path: str) -> str:
    """A file as code scanning wants it: relative to the checkout (cwd) when inside it, else file://."""
    if path == "-":
        return "stdin"
    here = Path.cwd().resolve()
    try:
        relative = Path(os.path.abspath(path)).relative_to(here)
    except ValueError:
        return Path(os.path.abspath(path)).as_uri()
    return quote(PurePosixPath(relative).as_posix() or ".", safe="/-._~")


def image_uri(reference: str) -> str:
    """The image as an artifact: its layout or archive path, else its repository without tag or digest."""
    from ..errors import ImagefixError
    from ..image.reference import DOCKER_HUB, parse_docker_reference, parse_image_ref, split_path_and_suffix

    try:
        ref = parse_image_ref(reference)
        if ref.kind.file:
            path, _ = split_path_and_suffix(ref.target, parts=2 if ref.transport == "docker-archive" else 1)
            return file_uri(path)
        docker = parse_docker_reference(ref.target)
    except ImagefixError:  # a subject that is not a reference (merged reports): the text itself
        return quote(reference, safe="/-._~")
    name = docker.path.removeprefix("library/") if docker.domain == DOCKER_HUB else docker.repository
    return quote(name, safe="/-._~")  # ':' of a port is escaped: the URI stays relative


def _fingerprint(*parts: object) -> str:
    import hashlib

    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:16] + ":1"


def _location(result: ScanResult, finding) -> tuple[dict[str, Any], dict[str, str] | None]:
    """(the physical location, partialFingerprints when the artifact is no file GitHub could hash)."""
    if finding.file is not None:
        line = finding.line or 1
        uri, fingerprints = file_uri(finding.file), None
    else:
        # the subject, as `imagefix merge` has it too: a scan and its merged JSON give the same alerts
        line, uri = 1, image_uri(result.subject)
        fingerprints = {"primaryLocationLineHash": _fingerprint(finding.rule, result.subject, finding.layer)}
    location = {"artifactLocation": {"uri": uri},
                "region": {"startLine": line, "startColumn": 1, "endLine": line, "endColumn": 1}}
    return location, fingerprints


def _result(result: ScanResult, finding, index: dict[str, int]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": _LEVEL[finding.severity],
        "message": {"text": for_terminal(finding.message + (f" Fix: {finding.fix}" if finding.fix else ""))},
    }
    physical, fingerprints = _location(result, finding)
    entry["locations"] = [{"physicalLocation": physical,
                           "logicalLocations": [{"name": result.subject, "kind": "resource"}]}]
    if fingerprints:
        entry["partialFingerprints"] = fingerprints
    return entry


_RESULTS = "imagefix:results"  # where the results go in the document's text
_RESULT_INDENT = " " * 8  # a result's depth in the document: runs, run, results


def chunks(results: Iterable[ScanResult], options: RenderOptions) -> Iterator[str]:
    """The document in pieces, the results as they come: a 100,000-workload audit is never one string."""
    rules = all_rules()
    index = {rule.id: i for i, rule in enumerate(rules)}
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "imagefix",
                "version": __version__,
                "rules": [_rule_descriptor(rule) for rule in rules],
            }},
            "results": _RESULTS,
        }],
    }
    head, tail = json.dumps(doc, indent=2).split(json.dumps(_RESULTS))
    yield head
    first = True
    for result in results:
        for finding in result.findings:
            text = json.dumps(_result(result, finding, index), indent=2)
            yield ("[\n" if first else ",\n") + _RESULT_INDENT + text.replace("\n", "\n" + _RESULT_INDENT)
            first = False
    yield ("[]" if first else "\n" + _RESULT_INDENT[:-2] + "]") + tail + "\n"
