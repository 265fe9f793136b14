"""GitHub code scanning's documented SARIF requirements, as a checker for the tests.

Source: "SARIF support for code scanning" (docs.github.com/en/code-security/code-scanning/
integrating-with-code-scanning/sarif-support-for-code-scanning; its text is in the github/docs
repository, content/code-security/code-scanning/integrating-with-code-scanning/
sarif-support-for-code-scanning.md), the tables "Supported SARIF output file properties":

- sarifLog: `$schema`, `version` ("2.1.0") and `runs[]` are required.
- run: `tool.driver.name`, `tool.driver.rules[]` and `results[]` are required; one tool per run.
- reportingDescriptor: `id`, `shortDescription.text`, `fullDescription.text` (at most 1000
  characters) and `help.text` are required; `defaultConfiguration.level` is optional.
- result: `message.text` is required; `locations[]` is required, at least one ("At least one
  location is required for code scanning to display a result"), at most 10, only the first used;
  `ruleId`/`ruleIndex` are optional (we always give them: they must then agree with the rules);
  `partialFingerprints` the upload action fills in when missing, so it is optional here.
- location: `physicalLocation` is required.
- physicalLocation: `artifactLocation.uri` is required - relative to the repository's root when
  relative, or an absolute URI; `region.startLine`, `startColumn`, `endLine` and `endColumn`
  are listed as required.

The upload action's fingerprinting (github/codeql-action src/fingerprints.ts) skips a URI that
is no file in the checkout, so an image name as the artifact is safe there.
"""

from __future__ import annotations

import re
from typing import Any

LEVELS = {"none", "note", "warning", "error"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


def _text(obj: Any, key: str, where: str, problems: list[str], limit: int | None = None) -> None:
    value = obj.get(key) if isinstance(obj, dict) else None
    text = value.get("text") if isinstance(value, dict) else None
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}.{key}.text is required")
    elif limit is not None and len(text) > limit:
        problems.append(f"{where}.{key}.text has {len(text)} characters (GitHub allows {limit})")


def _uri(uri: Any, where: str, problems: list[str]) -> None:
    if not isinstance(uri, str) or not uri:
        problems.append(f"{where}.artifactLocation.uri is required")
        return
    if not _URI_CHARS.match(uri):
        problems.append(f"{where}.artifactLocation.uri {uri!r} is not a URI (characters not escaped)")
    if _SCHEME.match(uri):
        if not re.match(r"^(file|https?)://", uri):
            problems.append(f"{where}.artifactLocation.uri {uri!r} has a scheme GitHub cannot check out")
    elif uri.startswith("/") or uri.startswith("../") or uri == "..":
        problems.append(f"{where}.artifactLocation.uri {uri!r} is not relative to the repository root")


def _region(region: Any, where: str, problems: list[str]) -> None:
    if not isinstance(region, dict):
        problems.append(f"{where}.region is required")
        return
    for key in ("startLine", "startColumn", "endLine", "endColumn"):
        value = region.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{where}.region.{key} must be a whole number >= 1, not {value!r}")
    if all(isinstance(region.get(k), int) for k in ("startLine", "endLine")) and \
            region["endLine"] < region["startLine"]:
        problems.append(f"{where}.region ends before it starts")


def github_problems(doc: Any) -> list[str]:
    """Every way `doc` breaks GitHub's documented requirements (empty: it uploads)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the SARIF log must be an object"]
    if not isinstance(doc.get("$schema"), str) or "2.1.0" not in doc["$schema"]:
        problems.append("$schema (the SARIF 2.1.0 schema's URI) is required")
    if doc.get("version") != "2.1.0":
        problems.append("version must be 2.1.0")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*problems, "runs[] is required (one or more)"]
    for r, run in enumerate(runs):
        where = f"runs[{r}]"
        driver = ((run.get("tool") or {}).get("driver")) if isinstance(run, dict) else None
        if not isinstance(driver, dict) or not isinstance(driver.get("name"), str) or not driver["name"]:
            problems.append(f"{where}.tool.driver.name is required")
            continue
        rules = driver.get("rules")
        if not isinstance(rules, list):
            problems.append(f"{where}.tool.driver.rules[] is required")
            rules = []
        ids: list[str] = []
        for i, rule in enumerate(rules):
            rwhere = f"{where}.tool.driver.rules[{i}]"
            if not isinstance(rule, dict) or not isinstance(rule.get("id"), str) or not rule["id"]:
                problems.append(f"{rwhere}.id is required")
                ids.append("")
                continue
            ids.append(rule["id"])
            _text(rule, "shortDescription", rwhere, problems)
            _text(rule, "fullDescription", rwhere, problems, limit=1000)
            _text(rule, "help", rwhere, problems)
            level = (rule.get("defaultConfiguration") or {}).get("level", "warning")
            if level not in LEVELS:
                problems.append(f"{rwhere}.defaultConfiguration.level {level!r} is not a SARIF level")
        if len(set(ids)) != len(ids):
            problems.append(f"{where}: rule ids are not unique")
        results = run.get("results")
        if not isinstance(results, list):
            problems.append(f"{where}.results[] is required")
            continue
        for n, result in enumerate(results):
            swhere = f"{where}.results[{n}]"
            if not isinstance(result, dict):
                problems.append(f"{swhere} must be an object")
                continue
            _text(result, "message", swhere, problems)
            rule_id, index = result.get("ruleId"), result.get("ruleIndex")
            if rule_id is not None and rule_id not in ids:
                problems.append(f"{swhere}.ruleId {rule_id!r} names no rule of the driver")
            if index is not None and (not isinstance(index, int) or not 0 <= index < len(ids)
                                      or (rule_id is not None and ids[index] != rule_id)):
                problems.append(f"{swhere}.ruleIndex {index!r} does not point at rule {rule_id!r}")
            if result.get("level", "warning") not in LEVELS:
                problems.append(f"{swhere}.level {result.get('level')!r} is not a SARIF level")
            locations = result.get("locations")
            if not isinstance(locations, list) or not locations:
                problems.append(f"{swhere}.locations[] needs at least one location")
                continue
            if len(locations) > 10:
                problems.append(f"{swhere}.locations[] has {len(locations)} locations (at most 10)")
            for k, location in enumerate(locations):
                lwhere = f"{swhere}.locations[{k}].physicalLocation"
                physical = location.get("physicalLocation") if isinstance(location, dict) else None
                if not isinstance(physical, dict):
                    problems.append(f"{lwhere} is required")
                    continue
                _uri((physical.get("artifactLocation") or {}).get("uri"), lwhere, problems)
                _region(physical.get("region"), lwhere, problems)
            fingerprints = result.get("partialFingerprints")
            if fingerprints is not None and (not isinstance(fingerprints, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in fingerprints.items())):
                problems.append(f"{swhere}.partialFingerprints must map strings to strings")
    return problems
