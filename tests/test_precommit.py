"""The pre-commit hooks, run by real pre-commit against this checkout (its environment built once)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")
NAMED = "FROM debian:12\nRUN groupadd -g 185 spark && useradd -u 185 -g 185 spark\nUSER spark\n"

pytestmark = pytest.mark.skipif(PRE_COMMIT is None, reason="pre-commit is not installed (test extra)")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One pre-commit cache for the module: the hook environment (pip install of this checkout) once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def try_repo(repo: Path, home: Path, hook: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run([PRE_COMMIT, "try-repo", str(ROOT), hook, "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "Dockerfile").write_text(NAMED)
    (tmp_path / "kata").mkdir()
    (tmp_path / "kata" / "configuration-qemu-tdx.toml").write_text(
        "[factory]\ncreate_container_timeout = 120\n[runtime]\ncreate_container_timeout = 60\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "start")
    return tmp_path


def test_lint_fails_patch_fixes_then_lint_passes(repo, home):
    failing = try_repo(repo, home, "imagefix-lint")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "KIF101" in failing.stdout
    fixing = try_repo(repo, home, "imagefix-patch")
    assert fixing.returncode == 1 and "files were modified by this hook" in fixing.stdout
    assert (repo / "Dockerfile").read_text().endswith("USER 185:185\n")
    git(repo, "add", "-A")
    passing = try_repo(repo, home, "imagefix-lint")
    assert passing.returncode == 0, passing.stdout + passing.stderr


def test_kata_check_hook_finds_the_recipe(repo, home):
    result = try_repo(repo, home, "imagefix-kata-check")
    assert result.returncode == 1 and "KIF301" in result.stdout, result.stdout + result.stderr
