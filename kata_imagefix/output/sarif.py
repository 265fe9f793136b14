"""SARIF 2.1.0: one run, the rule catalogue as the driver's rules, one result per finding."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..rules import all_rules
from ..rules.finding import Severity
from ..scan import ScanResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule_descriptor(rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.doc},
        "help": {"text": rule.doc},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
    }


def render(results: list[ScanResult]) -> str:
    rules = all_rules()
    index = {rule.id: i for i, rule in enumerate(rules)}
    sarif_results: list[dict[str, Any]] = []
    for result in results:
        for finding in result.findings:
            entry: dict[str, Any] = {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": _LEVEL[finding.severity],
                "message": {"text": finding.message + (f" Fix: {finding.fix}" if finding.fix else "")},
            }
            if finding.file is not None:
                location: dict[str, Any] = {"artifactLocation": {"uri": finding.file}}
                if finding.line is not None:
                    location["region"] = {"startLine": finding.line}
                entry["locations"] = [{"physicalLocation": location}]
            else:
                entry["locations"] = [{"logicalLocations": [
                    {"name": result.subject, "kind": "resource"}
                ]}]
            sarif_results.append(entry)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "imagefix",
                "version": __version__,
                "rules": [_rule_descriptor(rule) for rule in rules],
            }},
            "results": sarif_results,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"
