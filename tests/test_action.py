"""The composite GitHub Action, run offline: every `run:` step with bash, as the runner runs it.

The runner's one step the tests cannot run is `uses: actions/setup-python`: it downloads a
Python. The tests stand in for it with a Python already on this machine that is not 3.11 (the
Debian one) when there is one - `IMAGEFIX_TEST_PYTHON`, `python3.12`/`python3.13` on PATH, or a
pyenv version - and give its path as the step's `python-path` output, as setup-python does.
Everything after that is the action's own bash: the version check, a venv of its own (installed
once per module from a copy of the checkout, as the runner checks the action out), the command.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT
from sarif_github import github_problems
from test_sarif import SCHEMA

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
RUNNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # no imagefix on it


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def _candidates() -> list[str]:
    named = [os.environ.get("IMAGEFIX_TEST_PYTHON", "")]
    named += [shutil.which(f"python3.{minor}") or "" for minor in (12, 13, 14)]
    named += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    return [p for p in named if p]


def python_where(wanted) -> str | None:
    return next((p for p in _candidates() if (v := _version(p)) and wanted(v)), None)


NOT_311 = python_where(lambda v: v >= (3, 12))
OLD = python_where(lambda v: (3, 8) <= v < (3, 11))


class Runner:
    """One job's runner: RUNNER_TEMP (so the venv is installed once), the action's checkout, a workspace."""

    def __init__(self, root: Path, python: str):
        self.root, self.python = root, python
        self.action = root / "action"
        shutil.copytree(ROOT, self.action, ignore=shutil.ignore_patterns(
            ".venv", ".git", "*.egg-info", "build", "dist", ".ci", "__pycache__", ".pytest_cache"))
        self.workspace = self.action  # the repository under test is this checkout: samples/ and all
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        self.calls = 0

    def run(self, inputs: dict[str, str], *, python: str | None = None,
            imagefix_log: Path | None = None) -> tuple[int, dict[str, str], str, str]:
        """(exit code, step outputs, step summary, the steps' stdout+stderr)."""
        self.calls += 1
        values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        values.update(inputs)
        call = self.root / f"call-{self.calls}"
        call.mkdir()
        summary = call / "step-summary.md"
        summary.touch()
        steps: dict[str, dict[str, str]] = {}
        log = ""

        def expand(value: str) -> str:
            value = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)], value)
            return re.sub(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}",
                          lambda m: steps.get(m.group(1), {}).get(m.group(2), ""), value)

        for number, step in enumerate(ACTION["runs"]["steps"]):
            outputs = steps.setdefault(step.get("id", f"step{number}"), {})
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@"), step["uses"]
                assert expand(step["with"]["python-version"]) == values["python-version"]
                outputs["python-path"] = python or self.python  # what setup-python outputs
                continue
            output_file = call / f"output-{number}"
            output_file.touch()
            env = {"PATH": RUNNER_PATH, "HOME": os.environ.get("HOME", "/root"),
                   "GITHUB_ACTION_PATH": str(self.action), "GITHUB_WORKSPACE": str(self.workspace),
                   "RUNNER_TEMP": str(self.temp), "GITHUB_STEP_SUMMARY": str(summary),
                   "GITHUB_OUTPUT": str(output_file), "CI": "true", "GITHUB_ACTIONS": "true"}
            for name in ("DOCKER_HOST", "IMAGEFIX_CACHE_DIR", "IMAGEFIX_TEST_REGISTRY", "PIP_FIND_LINKS",
                         "PIP_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
                if name in os.environ:
                    env[name] = os.environ[name]
            for key, value in (step.get("env") or {}).items():
                env[key] = expand(str(value))
            if imagefix_log is not None and "IMAGEFIX" in env:
                env["IMAGEFIX"] = str(self._logging_wrapper(call, env["IMAGEFIX"], imagefix_log))
            script = call / f"step-{number}.sh"
            script.write_text(step["run"])
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  cwd=self.workspace, env=env, capture_output=True, text=True, timeout=600)
            log += done.stdout + done.stderr
            for line in output_file.read_text().splitlines():
                key, _, value = line.partition("=")
                outputs[key] = value
            if done.returncode != 0:
                return done.returncode, steps.get("run", {}), summary.read_text(), log
        return 0, steps.get("run", {}), summary.read_text(), log

    @staticmethod
    def _logging_wrapper(call: Path, real: str, log: Path) -> Path:
        """The real imagefix, with each invocation's arguments appended to `log` (to count the scans)."""
        wrapper = call / "imagefix"
        wrapper.write_text(f'#!/bin/bash\necho "$*" >> {log}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Runner:
    return Runner(tmp_path_factory.mktemp("runner"), NOT_311 or sys.executable)


def checked_sarif(runner: Runner, outputs: dict[str, str]) -> dict:
    doc = json.loads((runner.workspace / outputs["sarif-file"]).read_text())
    jsonschema.validate(doc, SCHEMA)
    assert github_problems(doc) == []
    return doc


@pytest.mark.skipif(NOT_311 is None, reason="no Python >= 3.12 here (IMAGEFIX_TEST_PYTHON names one)")
def test_the_action_installs_into_its_own_venv_with_a_python_that_is_not_3_11(runner):
    code, outputs, _, log = runner.run({"command": "lint", "args": "samples/Dockerfile.spark"})
    assert code == 1 and outputs["exit-code"] == "1"
    version = _version(NOT_311)
    assert f"Python {version[0]}.{version[1]}." in log  # `imagefix --version` of the venv's imagefix
    venv_python = runner.temp / "imagefix-venv" / "bin" / "python"
    assert _version(str(venv_python)) == version


@pytest.mark.skipif(OLD is None, reason="no Python older than 3.11 on this machine")
def test_a_python_older_than_3_11_is_refused_in_one_line(runner):
    code, _, _, log = runner.run({"command": "scan", "args": "x"}, python=OLD)
    assert code == 2
    assert "imagefix needs Python 3.11 or newer" in log and "input python-version" in log


def test_scan_runs_once_and_writes_sarif_github_accepts_and_a_step_summary(runner, tmp_path):
    calls = tmp_path / "calls.log"
    code, outputs, summary, _ = runner.run({"command": "scan", "args": "oci:samples/spark:3.5.3"},
                                           imagefix_log=calls)
    assert code == 1 and outputs["exit-code"] == "1"  # KIF101 is an error: the step fails
    invoked = [line.split()[0] for line in calls.read_text().splitlines()]
    assert invoked.count("scan") == 1 and set(invoked) == {"scan", "merge", "--color"}
    sarif = checked_sarif(runner, outputs)
    results = sarif["runs"][0]["results"]
    assert results[0]["ruleId"] == "KIF101"
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "samples/spark"
    assert "### imagefix scan" in summary and "KIF101" in summary and "\x1b[" not in summary


def test_lint_of_a_clean_dockerfile_passes(runner):
    (runner.workspace / "Dockerfile.clean").write_text("FROM debian:12\nUSER 1000:1000\n")
    code, outputs, summary, _ = runner.run({"command": "lint", "args": "Dockerfile.clean"})
    assert code == 0 and outputs["exit-code"] == "0" and "### imagefix lint" in summary
    assert checked_sarif(runner, outputs)["runs"][0]["results"] == []


def test_report_puts_the_markdown_report_in_the_summary(runner):
    code, outputs, summary, _ = runner.run({"command": "report",
                                            "args": "oci:samples/mysql:8.4 --budget 10MB"})
    assert code == 1 and outputs["exit-code"] == "1"  # over budget: the gate fails the step
    assert summary.lstrip().startswith("#") and "|" in summary  # a markdown report with its table


def test_kata_check_kata_patch_patch_and_an_unknown_command(runner):
    config = runner.workspace / "configuration-qemu-tdx.toml"
    config.write_text("[factory]\ncreate_container_timeout = 120\n[runtime]\ncreate_container_timeout = 60\n")
    code, outputs, _ = runner.run({"command": "kata check", "args": config.name})[:3]
    assert code == 1 and "KIF301" in json.dumps(checked_sarif(runner, outputs))
    code, outputs, summary, _ = runner.run({"command": "kata patch",
                                            "args": f"{config.name} -o patched.toml"})
    assert code == 0 and outputs["exit-code"] == "0"
    assert "### imagefix kata patch" in summary and "-create_container_timeout = 60" in summary
    patched = (runner.workspace / "patched.toml").read_text()
    assert "[factory]\n[runtime]\ncreate_container_timeout = 120" in patched
    code, _, summary, _ = runner.run({"command": "patch", "args": "samples/Dockerfile.spark"})
    assert code == 1 and "+USER 185:185" in summary  # --check: it would change
    code, outputs, _, log = runner.run({"command": "deploy", "args": "x"})
    assert code == 2 and outputs["exit-code"] == "2" and "unknown command 'deploy'" in log


def test_k8s_check_writes_sarif_for_the_manifest(runner):
    (runner.workspace / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
        "  containers:\n  - name: app\n    image: 127.0.0.1:9/none:1\n"
        "    securityContext:\n      runAsGroup: 185\n")
    code, outputs, summary, _ = runner.run({"command": "k8s check", "args": "pod.yaml --registry-timeout 2"})
    assert code == 1
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in checked_sarif(runner, outputs)["runs"][0]["results"]}
    assert uris == {"pod.yaml"} and "KIF407" in summary  # the image cannot be read


def test_bad_arguments_exit_2_with_the_error_in_the_summary(runner):
    code, outputs, summary, _ = runner.run({"command": "scan", "args": "oci:samples/none:1"})
    assert code == 2 and outputs["exit-code"] == "2" and "imagefix: error:" in summary


@pytest.mark.parametrize("name", ["command", "args", "sarif-file", "python-version", "install"])
def test_every_input_is_documented(name):
    assert ACTION["inputs"][name]["description"]
