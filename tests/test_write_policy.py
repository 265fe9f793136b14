"""Every command that writes a file, through one matrix (#24): the write policy (kata_imagefix/writing.py)
is the same for all of them, so each must behave alike for -o FILE, -o -, --in-place with numbered
backups, --check, --diff, read-only and hard-linked targets with and without --force, and symlinks."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SAMPLES
from registries import push_spec, repo_name, spark_like
from test_kata import go

from kata_imagefix.registry.client import RegistryClient

SPARK_OCI = f"oci:{SAMPLES / 'spark'}:3.5.3"
DOCKERFILE = "FROM busybox\nRUN adduser -D -u 185 spark\nUSER spark\n"
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  runtimeClassName: kata-qemu-tdx
  containers:
  - name: app
    image: {image}
"""


@pytest.fixture(scope="module")
def named_image(registry, tmp_path_factory) -> str:
    repository = repo_name("policy")
    push_spec(RegistryClient(registry.host), tmp_path_factory.mktemp("policy"), repository, "1",
              spark_like("spark"))
    return f"{registry.host}/{repository}:1"


@dataclass
class Editor:
    """A command that edits its input: `args(input)` without destination flags; `changed` is a line only
    the edited text has."""

    name: str
    content: Callable[[str], str]
    args: Callable[[Path], list]
    changed: str


EDITORS = [
    Editor("patch", lambda image: DOCKERFILE, lambda path: ["patch", path], "USER 185:185"),
    Editor("k8s fix", lambda image: POD.format(image=image), lambda path: ["k8s", "fix", path],
           "runAsUser: 185"),
    Editor("kata patch", lambda image: go(),
           lambda path: ["kata", "patch", path, "--create-container-timeout", "300"],
           "create_container_timeout = 300"),
]


@pytest.fixture(params=EDITORS, ids=[e.name for e in EDITORS])
def editor(request, tmp_path, named_image, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a file named '-' would appear here
    spec: Editor = request.param
    path = tmp_path / ("configuration-qemu-tdx.toml" if spec.name == "kata patch" else "input")
    original = spec.content(named_image)
    path.write_text(original)
    return spec, path, original


def run(cli, *args):
    return cli(*[str(a) for a in args])


def one_line_refusal(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagefix: error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_output_file_and_dash_leave_the_input_alone(cli, editor, tmp_path):
    spec, path, original = editor
    out = tmp_path / "out"
    written = run(cli, *spec.args(path), "-o", out)
    assert written.exit_code == 0, written.stderr
    assert spec.changed in out.read_text() and path.read_text() == original
    shown = run(cli, *spec.args(path), "-o", "-")
    assert shown.exit_code == 0 and spec.changed in shown.stdout
    assert shown.stdout == out.read_text()  # '-' is stdout, byte for byte what -o FILE writes
    assert not (tmp_path / "-").exists() and path.read_text() == original
    plain = run(cli, *spec.args(path))  # no destination: stdout as well
    assert plain.stdout == shown.stdout


def test_check_and_diff_write_nothing(cli, editor, tmp_path):
    spec, path, original = editor
    before = sorted(p.name for p in tmp_path.iterdir())
    checked = run(cli, *spec.args(path), "--check")
    assert checked.exit_code == 1 and original.splitlines()[0] not in checked.stdout  # no document printed
    diffed = run(cli, *spec.args(path), "--diff")
    assert diffed.exit_code == 0
    assert any(line.startswith("+") and spec.changed in line for line in diffed.stdout.splitlines())
    assert diffed.stdout.startswith("--- a/") and "nothing written" in diffed.stderr
    assert path.read_text() == original and sorted(p.name for p in tmp_path.iterdir()) == before
    assert run(cli, *spec.args(path), "--in-place").exit_code == 0
    assert run(cli, *spec.args(path), "--check").exit_code == 0  # nothing left to change


def test_in_place_keeps_numbered_backups(cli, editor, tmp_path):
    spec, path, original = editor
    first = run(cli, *spec.args(path), "--in-place")
    assert first.exit_code == 0, first.stderr
    edited = path.read_text()
    assert spec.changed in edited and f"kept the original as {path}.bak" in first.stdout
    assert Path(f"{path}.bak").read_text() == original
    again = run(cli, *spec.args(path), "--in-place")  # unchanged: nothing written, no new backup
    assert again.exit_code == 0 and path.read_text() == edited and not Path(f"{path}.bak.1").exists()
    path.write_text(original)
    second = run(cli, *spec.args(path), "--in-place")
    assert second.exit_code == 0 and Path(f"{path}.bak.1").read_text() == original
    assert Path(f"{path}.bak").read_text() == original  # an earlier backup is never overwritten
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".imagefix-tmp")]


def test_no_backup_replaces_in_place_and_keeps_nothing_beside(cli, editor, tmp_path):
    """pre-commit's patch hook: under git a .bak is noise (and a lint hook would read it as a Dockerfile)."""
    spec, path, _ = editor
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run(cli, *spec.args(path), "--in-place", "--no-backup")
    assert done.exit_code == 0, done.stderr
    assert spec.changed in path.read_text() and "kept the original" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("kind", ["read-only", "hard-linked"])
def test_a_protected_input_needs_force(cli, editor, tmp_path, kind):
    spec, path, original = editor
    if kind == "read-only":
        path.chmod(0o444)
        needle = "read-only"
    else:
        os.link(path, tmp_path / "other-name")
        needle = "other hard link"
    refused = run(cli, *spec.args(path), "--in-place")
    one_line_refusal(refused, needle, "--force")
    assert path.read_text() == original
    forced = run(cli, *spec.args(path), "--in-place", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert spec.changed in path.read_text()


def test_a_symlinked_input_is_written_through(cli, editor, tmp_path):
    spec, path, original = editor
    real = tmp_path / "real" / path.name
    real.parent.mkdir()
    path.rename(real)
    path.symlink_to(real)
    assert run(cli, *spec.args(path), "--in-place").exit_code == 0
    assert path.is_symlink() and spec.changed in real.read_text()
    assert Path(f"{real}.bak").read_text() == original


@dataclass
class Producer:
    """A command that produces a document: `args(manifest, out)` with its -o (the manifest for those that
    read one); `target(out)` is the file written."""

    name: str
    args: Callable[[str, Path], list]
    marker: str
    target: Callable[[Path], Path] = lambda out: out


PRODUCERS = [
    Producer("report", lambda manifest, out: ["report", SPARK_OCI, "-o", out], SPARK_OCI),
    Producer("k8s check", lambda manifest, out: ["k8s", "check", "--format", "json", manifest, "-o", out],
             '"workloads"'),
    Producer("k8s pod", lambda manifest, out: ["k8s", "pod", SPARK_OCI, "--image-name", "spark:3.5.3",
                                               "-o", out], "runAsUser: 185"),
    Producer("fix", lambda manifest, out: ["fix", SPARK_OCI, "--no-build", "-o", out], "USER 185:185",
             lambda out: out / "Dockerfile"),
]


@pytest.fixture(params=PRODUCERS, ids=[p.name for p in PRODUCERS])
def producer(request, tmp_path, named_image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD.format(image=named_image))
    spec: Producer = request.param
    return spec, str(manifest)


def test_a_producer_writes_a_file_or_stdout(cli, producer, tmp_path):
    spec, manifest = producer
    out = tmp_path / "out"
    written = run(cli, *spec.args(manifest, out))
    assert written.exit_code in (0, 1), written.stderr
    assert spec.marker in spec.target(out).read_text()
    shown = run(cli, *spec.args(manifest, "-"))
    assert shown.exit_code == written.exit_code and spec.marker in shown.stdout
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("kind", ["read-only", "hard-linked", "symlinked"])
def test_a_producer_keeps_the_policy_for_its_target(cli, producer, tmp_path, kind):
    spec, manifest = producer
    out = tmp_path / "out"
    target = spec.target(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlinked":
        real = tmp_path / "elsewhere"
        real.write_text("old\n")
        target.symlink_to(real)
        result = run(cli, *spec.args(manifest, out))
        assert result.exit_code in (0, 1), result.stderr
        assert target.is_symlink() and spec.marker in real.read_text()
        return
    target.write_text("old\n")
    if kind == "read-only":
        target.chmod(0o444)
    else:
        os.link(target, tmp_path / "other-name")
    refused = run(cli, *spec.args(manifest, out))
    one_line_refusal(refused, "--force")
    assert target.read_text() == "old\n"
    forced = run(cli, *spec.args(manifest, out), "--force")
    assert forced.exit_code in (0, 1), forced.stderr
    assert spec.marker in target.read_text()
