"""The Dockerfile at the top: built with the real engine from this checkout's wheels on a base made of the
host's own Python (no shell in it, nothing pulled), it runs imagefix as its numeric user, passes imagefix's
own scan, and its pod as deploy/ runs it goes through the real webhook with nothing to fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
from python_base import ensure_python_base
from registries import repo_name
from test_deploy import by_kind, render
from test_webhook import Server, admission_review

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def self_image(engine, tmp_path_factory) -> Iterator[str]:
    context = tmp_path_factory.mktemp("self-image")
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copyfile(ROOT / name, context / name)
    # the wheels as the Dockerfile's comment says to make them (the registries are reached here only)
    made = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                           str(ROOT), "-w", str(context / "wheels")],
                          capture_output=True, text=True, timeout=600)
    if made.returncode:
        pytest.skip(f"pip wheel could not build the wheels here: {made.stderr.strip()[-300:]}")
    base = ensure_python_base(engine)
    tag = f"imagefix-test/self:{uuid.uuid4().hex[:10]}"
    (context / "stray.txt").write_text("not in the image")  # .dockerignore keeps it out of the context
    events = list(engine.build(path=str(context), tag=tag, buildargs={"BASE": base}, rm=True, forcerm=True,
                               network_mode="none", decode=True))
    errors = [e["error"] for e in events if "error" in e]
    assert not errors, errors[-1] if errors else ""
    yield tag
    engine.remove_image(tag, force=True)


def run(engine, tag: str, command: list[str], entrypoint: list[str] | None = None) -> tuple[int, str, str]:
    container = engine.create_container(tag, command=command, entrypoint=entrypoint, network_disabled=True)
    try:
        engine.start(container)
        code = engine.wait(container, timeout=120)["StatusCode"]
        out = engine.logs(container, stdout=True, stderr=False).decode()
        err = engine.logs(container, stdout=False, stderr=True).decode()
        return code, out, err
    finally:
        engine.remove_container(container, force=True)


def test_it_runs_imagefix_as_its_numeric_user_without_a_shell(engine, self_image):
    config = engine.inspect_image(self_image)["Config"]
    assert config["User"] == "65532:65532"
    code, out, err = run(engine, self_image, ["--version"])
    assert code == 0 and out.startswith("imagefix 0.1.0"), out + err
    assert "Warning" not in err, err  # every library the wheels need is there (charset_normalizer's .so)
    probe = "import os, sys; print(os.getuid(), os.getgid(), os.path.exists('/bin/sh'), sys.path[1])"
    code, out, err = run(engine, self_image, ["-c", probe], entrypoint=["python3"])
    assert (code, out.split()) == (0, ["65532", "65532", "False", "/opt/imagefix"]), err
    code, out, _ = run(engine, self_image, ["-c", "import os; print(os.path.exists('/stray.txt'))"],
                       entrypoint=["python3"])
    assert out.strip() == "False"


def test_it_passes_its_own_scan(cli, self_image):
    result = cli("scan", "--format", "json", "--fail-on", "warning", f"docker-daemon:{self_image}")
    assert result.exit_code == 0, result.stdout + result.stderr
    (image,) = result.json()["images"]
    assert image["user"] == "65532:65532" and image["passed"] is True
    assert {f["severity"] for f in image["findings"]} <= {"info"}, image["findings"]


@pytest.mark.registry
def test_its_pod_as_deployed_passes_its_own_webhook(engine, self_image, registry, tmp_path):
    remote = f"{registry.host}/{repo_name('imagefix')}"
    engine.tag(self_image, remote, "0.1.0")
    try:
        for event in engine.push(remote, "0.1.0", stream=True, decode=True):
            assert "error" not in event, event
    finally:
        engine.remove_image(f"{remote}:0.1.0")
    template = by_kind(render("deploy/base"))["Deployment"]["spec"]["template"]
    spec = {**template["spec"], "runtimeClassName": "kata-qemu-tdx"}
    spec["containers"] = [{**spec["containers"][0], "image": f"{remote}:0.1.0"}]
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec,
           "metadata": {**template["metadata"], "name": "imagefix-webhook-0", "namespace": "team-a"}}
    kubernetes_validate.validate(pod, "1.31", strict=True)
    server = Server(tmp_path, "--pull-overhead", "5")  # the default cost of a guest pull, not the tests' 50 s
    try:
        for path in ("/mutate", "/validate"):
            status, review = server.review(path, admission_review(pod))
            response = review["response"]
            assert status == 200 and response["allowed"] is True, review
            assert "patch" not in response and not response.get("warnings"), json.dumps(response)
        _, body = server.request("GET", "/metrics")
        assert "imagefix_webhook_image_reads_total 1" in body.decode()  # judged from the image, not skipped
    finally:
        server.stop()
