"""Shared fixtures: the CLI in-process, a real Docker engine, real images built for the tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(SAMPLES))  # make_samples: the OCI/docker-archive writers
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bases import BASE, ensure_bases  # noqa: E402
from hypothesis import settings  # noqa: E402

from kata_imagefix.cli import main  # noqa: E402

# CI replays the same examples every run (a landing must not hinge on a new random draw);
# developers' runs keep exploring.
# No per-example deadline in either: speed is the benchmarks' business, and a loaded 2-core machine
# turned a 200 ms deadline into a failure that no replay could reproduce.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def fresh_layer_size_memory():
    """Layer sizes judged by an earlier test (same registry, same digest) are not reused: request counts
    stay each test's own."""
    from kata_imagefix.image.sources import layersize

    layersize._judged.clear()


@pytest.fixture(autouse=True)
def private_layer_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test starts with an empty layer-facts cache of its own (request counts stay exact)."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("IMAGEFIX_CACHE_DIR", str(folder))
    monkeypatch.delenv("IMAGEFIX_NO_CACHE", raising=False)
    return folder


@dataclass
class CliResult:
    exit_code: int
    stdout: str  # as click's runner gives it: "\r\n" read as "\n"
    stderr: str
    stdout_bytes: bytes = b""  # byte for byte

    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run `imagefix ARGS...` in-process; stdout and stderr apart."""

    def run(*args: str, input: str | None = None, env: dict | None = None) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(main, [str(a) for a in args], input=input, env=env,
                               catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)

    return run


@pytest.fixture(scope="session")
def engine():
    """A low-level client for the real engine, or skip."""
    import docker

    try:
        client = docker.APIClient(version="auto", timeout=300)
        client.ping()
    except Exception as exc:  # no engine here
        pytest.skip(f"no Docker engine answers: {exc}")
    ensure_bases(client)
    return client


class ImageFactory:
    """Builds images for a test on the real engine and removes them afterwards."""

    def __init__(self, api) -> None:
        self.api = api
        self.tags: list[str] = []

    def build(self, dockerfile: str, *, files: dict[str, bytes] | None = None, name: str = "img") -> str:
        tag = f"imagefix-test/{name}:{uuid.uuid4().hex[:10]}"
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for path, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        events = list(self.api.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                                     forcerm=True, network_mode="none", decode=True))
        errors = [e for e in events if "error" in e]
        if errors:
            raise AssertionError(f"test image failed to build: {errors[-1]['error']}")
        self.tags.append(tag)
        return tag

    def save(self, tag: str, path: Path) -> Path:
        with open(path, "wb") as handle:
            for chunk in self.api.get_image(tag):
                handle.write(chunk)
        return path

    def cleanup(self) -> None:
        for tag in self.tags:
            with contextlib.suppress(Exception):
                self.api.remove_image(tag, force=True)


@pytest.fixture
def images(engine) -> Iterator[ImageFactory]:
    factory = ImageFactory(engine)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def module_images(engine) -> Iterator[ImageFactory]:
    factory = ImageFactory(engine)
    yield factory
    factory.cleanup()


def skopeo_to_oci(archive: Path, layout: Path, tag: str) -> None:
    """Convert a docker-archive into an OCI layout with the real skopeo (offline)."""
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-archive:{archive}", f"oci:{layout}:{tag}"],
                   check=True, capture_output=True, timeout=300)


def base_image() -> str:
    return BASE


@pytest.fixture
def no_engine_env(tmp_path) -> dict:
    """An environment whose DOCKER_HOST points at a socket nobody listens on."""
    return {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}


@pytest.fixture(autouse=True)
def _fresh_engine_client():
    """Each test connects anew, so DOCKER_HOST set by a test takes effect."""
    from kata_imagefix.image.sources import daemon

    daemon._client_cache.clear()
    yield
    daemon._client_cache.clear()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """The registry .ci/run started, or one of our own."""
    host = os.environ.get("IMAGEFIX_TEST_REGISTRY")
    data = os.environ.get("IMAGEFIX_TEST_REGISTRY_DATA")
    if host and data:
        from registries import Registry

        yield Registry(host, Path(data))  # a generator fixture must yield on every path
        return
    from registries import start_registry

    started = start_registry(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture
def certs(tmp_path, monkeypatch):
    folder = tmp_path / "certs.d"
    monkeypatch.setenv("IMAGEFIX_CERTS_DIR", str(folder))
    return folder


def only_lines_added(before: str, after: str) -> bool:
    """Every line of `before` is in `after`, unchanged and in order; `after` only adds lines."""
    remaining = iter(after.splitlines(keepends=True))
    return all(any(line == candidate for candidate in remaining) for line in before.splitlines(keepends=True))


def patched(original: str, diff: str, folder: Path, tool: str = "patch") -> str:
    """`original` with the unified diff applied by `patch -p1` or `git apply` in `folder` (as the file the
    diff names, a/NAME): byte for byte what the tool wrote."""
    name = diff.split("\n", 1)[0].removeprefix("--- a/")
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(original.encode("utf-8", "surrogateescape"))
    (folder / "change.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
    command = (["patch", "-p1", "-s", "--no-backup-if-mismatch", "-i", "change.diff"] if tool == "patch"
               else ["git", "apply", "change.diff"])
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return target.read_bytes().decode("utf-8", "surrogateescape")
