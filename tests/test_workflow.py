"""Where users already work: GitLab code quality, --version, shell completion, colour, help examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES

SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"
IMAGEFIX = [sys.executable, "-m", "kata_imagefix"]


@pytest.mark.parametrize("fmt", ["gitlab", "codeclimate"])
def test_gitlab_code_quality_report_has_the_documented_shape(cli, tmp_path, fmt):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:12\nRUN useradd -u 185 -g 0 spark\nUSER spark\n")
    config = tmp_path / "configuration-qemu-tdx.toml"
    config.write_text("[factory]\ncreate_container_timeout = 120\n[runtime]\ncreate_container_timeout = 60\n")
    for args, path, line in (
            (("lint", dockerfile), str(dockerfile), 3),
            (("scan", SPARK), SPARK, 1),
            (("kata", "check", config), str(config), 2)):
        result = cli(*args[:-1], "--format", fmt, args[-1]) if args[0] != "kata" else \
            cli("kata", "check", "--format", fmt, args[-1])
        issues = json.loads(result.stdout)
        assert isinstance(issues, list) and issues, result.stdout
        first = issues[0]
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(first)
        assert first["location"]["path"] == path and first["location"]["lines"]["begin"] == line
        assert first["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert len({i["fingerprint"] for i in issues}) == len(issues)
        again = json.loads((cli(*args[:-1], "--format", fmt, args[-1]) if args[0] != "kata" else
                            cli("kata", "check", "--format", fmt, args[-1])).stdout)
        assert [i["fingerprint"] for i in again] == [i["fingerprint"] for i in issues]  # stable


def test_version_names_imagefix_python_and_the_engine():
    out = subprocess.run([*IMAGEFIX, "--version"], capture_output=True, text=True, timeout=60).stdout
    lines = out.splitlines()
    assert lines[0].startswith("imagefix ") and lines[1].startswith("Python 3.")
    assert lines[2].startswith(("Docker engine ", "Docker engine: none answers"))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_are_produced(shell):
    env = {**os.environ, "_IMAGEFIX_COMPLETE": f"{shell}_source"}
    script = Path(sys.executable).parent / "imagefix"
    out = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "_IMAGEFIX_COMPLETE" in out and "imagefix" in out
    env = {**os.environ, "_IMAGEFIX_COMPLETE": f"{shell}_complete", "COMP_WORDS": "imagefix ka",
           "COMP_CWORD": "1", "COMP_LINE": "imagefix ka", "COMP_POINT": "11"}
    if shell == "bash":
        words = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60).stdout
        assert "kata" in words


def test_colour_follows_no_color_and_the_flag():
    def run(*args: str, env: dict | None = None) -> str:
        return subprocess.run([*IMAGEFIX, *args, "scan", SPARK], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=60).stdout

    assert "\x1b[" in run("--color", "always")
    assert "\x1b[" not in run("--color", "never")
    assert "\x1b[" not in run(env={"NO_COLOR": "1"})  # auto, and not a terminal either
    assert "\x1b[" in run("--color", "always", env={"NO_COLOR": "1"})  # asked for explicitly


@pytest.mark.parametrize("command", [["scan"], ["rules"], ["lint"], ["patch"], ["fix"], ["report"],
                                     ["kata", "check"], ["kata", "patch"], ["k8s"], []])
def test_every_command_help_has_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout and "imagefix " in result.stdout


def test_ci_run_waits_for_the_dpkg_lock():
    """A concurrent apt (unattended-upgrades, another job) must not turn skopeo's tests into skips."""
    import re

    script = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    calls = [line for line in script.splitlines() if re.search(r"\bapt-get\b|\"\$\{APT\[@\]\}\"", line)
             and not line.lstrip().startswith("#") and "log " not in line]
    assert calls and all("APT[@]" in line or "DPkg::Lock::Timeout=" in line for line in calls), calls
    assert "APT=(apt-get -o DPkg::Lock::Timeout=300)" in script
    done = subprocess.run(["bash", "-n", str(Path(__file__).resolve().parent.parent / ".ci" / "run")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
