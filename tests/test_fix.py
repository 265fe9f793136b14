"""`imagefix fix`: rendered Dockerfiles, real builds on the engine, verification, in-registry fixes."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import ROOT, base_image
from registries import CountingProxy, ScriptedServer, push_spec, repo_name, send, spark_like

from kata_imagefix.registry.client import RegistryClient

pytestmark = pytest.mark.engine

SPARK_LIKE = (
    "FROM {base}\n"
    "RUN mkdir -p /opt/spark/work-dir /opt/spark/jars && echo jar > /opt/spark/jars/app.jar\n"
    "WORKDIR /opt/spark/work-dir\n"
    "ENV SPARK_HOME=/opt/spark\n"
    "EXPOSE 4040\n"
    "USER spark\n"
    'ENTRYPOINT ["/bin/sh", "-c"]\n'
    'CMD ["id"]\n'
)


@pytest.fixture
def spark(images):
    return images.build(SPARK_LIKE.format(base=base_image()), name="spark")


def tags(engine, *owned: str) -> set[str]:
    """The engine's tags this test owns: each owned tag and those derived from it (TAG-kata). Other
    sessions share the engine, so its whole tag set may change at any time."""
    return {t for image in engine.images() for t in image.get("RepoTags") or []
            if any(t == tag or t.startswith(f"{tag}-") for tag in owned)}


def run(engine, tag: str, *command: str) -> str:
    container = engine.create_container(tag, entrypoint=list(command[:1]) or None, command=list(command[1:]),
                                        network_disabled=True,
                                        host_config=engine.create_host_config(network_mode="none"))
    try:
        engine.start(container)
        engine.wait(container, timeout=60)
        return engine.logs(container).decode()
    finally:
        engine.remove_container(container, force=True)


@pytest.mark.parametrize(("mode", "user", "ids"), [
    ("numeric", "185:185", "185 185"), ("reset", "", "0 0"), ("root", "0:0", "0 0")])
def test_each_user_mode_builds_runs_and_verifies(cli, engine, images, spark, mode, user, ids):
    before = tags(engine, spark)
    result = cli("fix", spark, "--user-mode", mode, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    new = doc["tag"]
    images.tags.append(new)
    assert new == spark.replace(":", ":", 1).rsplit(":", 1)[0] + ":" + spark.rsplit(":", 1)[1] + "-kata"
    assert tags(engine, spark) == before | {new}  # only the new tag appeared; the source is untouched
    assert engine.inspect_image(new)["Config"]["User"] == user
    assert run(engine, new, "sh", "-c", "echo $(id -u) $(id -g)").strip() == ids
    assert doc["verification"]["config_user"] == user
    rescanned = cli("scan", "--format", "json", new).json()["images"][0]["findings"]
    assert "KIF101" not in [f["rule"] for f in rescanned]
    assert f"FROM {engine.inspect_image(spark)['Id']}" in doc["dockerfile"]  # pinned by image ID
    labels = engine.inspect_image(new)["Config"]["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == engine.inspect_image(spark)["Id"]
    assert "imagefix user" in labels["io.imagefix.change"]


def test_no_build_writes_only_the_dockerfile(cli, engine, spark, tmp_path):
    before = tags(engine, spark)
    out = tmp_path / "out"
    result = cli("fix", spark, "--no-build", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["Dockerfile"]
    text = (out / "Dockerfile").read_text()
    assert "USER 185:185\n" in text and text.count("\nFROM ") + text.startswith("FROM ") == 1
    assert tags(engine, spark) == before


@pytest.mark.parametrize("mode", ["numeric", "reset", "root"])
def test_a_numeric_user_is_kept_by_fix_and_patch_alike(cli, images, tmp_path, mode):
    """#24: `fix --user-mode reset` turned a working USER 185:185 into USER "" (root) while `patch`
    kept it; both now ask users.modes, and a numeric USER works in every mode."""
    dockerfile = f"FROM {base_image()}\nUSER 185:185\n"
    built = images.build(dockerfile, name="numeric")
    out = tmp_path / "out"
    fixed = cli("fix", built, "--user-mode", mode, "--no-build", "-o", out)
    assert fixed.exit_code == 0, fixed.stderr
    assert "\nUSER 185:185\n" in (out / "Dockerfile").read_text()
    source = tmp_path / "Dockerfile"
    source.write_text(dockerfile)
    patched = cli("patch", source, "--user-mode", mode)
    assert patched.exit_code == 0 and patched.stdout == dockerfile
    assert "unchanged" in patched.stderr


def test_tag_exists_needs_force_and_a_failed_build_leaves_no_tag(cli, engine, images, spark, tmp_path):
    first = cli("fix", spark, "--format", "json")
    images.tags.append(first.json()["tag"])
    again = cli("fix", spark)
    assert again.exit_code == 2 and "exists already; --force" in again.stderr
    assert cli("fix", spark, "--force").exit_code == 0
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "user.Dockerfile.j2").write_text("FROM {{ base_ref }}\nRUN false\nUSER {{ user }}\n")
    before = tags(engine, spark, "imagefix-test/never:built")
    failed = cli("fix", spark, "--template-dir", broken, "--tag", "imagefix-test/never:built")
    assert failed.exit_code == 2 and "build failed at Step 2/3 : RUN false" in failed.stderr
    assert tags(engine, spark, "imagefix-test/never:built") == before
    (broken / "user.Dockerfile.j2").write_text("FROM {{ base_ref }}\nUSER {{ no_such_value }}\n")
    undefined = cli("fix", spark, "--template-dir", broken, "--tag", "imagefix-test/never:built")
    assert undefined.exit_code == 2 and "'no_such_value' is undefined" in undefined.stderr


def test_the_build_steps_show_dimmed_on_a_terminal_and_never_in_a_pipe(engine, images, spark):
    """fix/build.py draws nothing itself: its steps reach a watching terminal as image/progress step
    events, shown by output/progress.py; a pipe and --format json get none."""
    from test_terminal import ANSI, in_pipe, on_terminal

    images.tags.append(spark.rsplit(":", 1)[0] + ":" + spark.rsplit(":", 1)[1] + "-kata")
    code, seen = on_terminal("fix", spark, "--user-mode", "numeric")
    assert code == 0, seen
    assert "\x1b[2mStep " in seen  # dimmed (rich highlights the numbers inside)
    assert "Step 1/3 : FROM" in ANSI.sub("", seen) and "Step 3/3 : USER" in ANSI.sub("", seen)
    piped = in_pipe("fix", spark, "--user-mode", "numeric", "--force")
    assert piped.returncode == 0, piped.stderr
    assert "Step 1/" not in piped.stderr + piped.stdout
    code, seen = on_terminal("fix", spark, "--user-mode", "numeric", "--force", "--format", "json")
    assert code == 0 and "Step 1/" not in seen


def test_multistage_keeps_only_what_is_asked(cli, engine, images, spark):
    runtime = images.build(f"FROM {base_image()}\nRUN true\n", name="runtime")
    result = cli("fix", spark, "--variant", "multistage", "--runtime-base", runtime,
                 "--keep", "/opt/spark", "--tag", f"{spark}-slim", "--format", "json")
    assert result.exit_code == 0, result.stderr
    images.tags.append(f"{spark}-slim")
    doc = result.json()
    assert 'COPY --from=original ["/opt/spark", "/opt/spark"]' in doc["dockerfile"]
    config = engine.inspect_image(f"{spark}-slim")["Config"]
    assert config["User"] == "185:185" and config["WorkingDir"] == "/opt/spark/work-dir"
    assert config["Entrypoint"] == ["/bin/sh", "-c"] and "4040/tcp" in config["ExposedPorts"]
    assert "SPARK_HOME=/opt/spark" in config["Env"]
    assert run(engine, f"{spark}-slim", "cat", "/opt/spark/jars/app.jar") == "jar\n"


def test_distroless_uses_the_current_image_name_and_pins_it(cli, engine, images, spark, tmp_path):
    stand_in = "gcr.io/distroless/static-debian13:nonroot"  # a busybox stand-in, never pulled
    engine.tag(base_image(), "gcr.io/distroless/static-debian13", "nonroot")
    images.tags.append(stand_in)
    result = cli("fix", spark, "--variant", "distroless", "--keep", "/opt/spark", "--tag",
                 f"{spark}-distroless", "--format", "json")
    assert result.exit_code == 0, result.stderr
    images.tags.append(f"{spark}-distroless")
    dockerfile = result.json()["dockerfile"]
    assert f"FROM {engine.inspect_image(stand_in)['Id']}" in dockerfile  # pinned
    assert "no shell" in dockerfile
    assert engine.inspect_image(f"{spark}-distroless")["Config"]["User"] == "185:185"
    nodir = cli("fix", spark, "--variant", "distroless", "--keep", "/opt/spark", "--distroless", "java21",
                "--no-build", "-o", tmp_path / "java")
    assert nodir.exit_code == 0
    text = (tmp_path / "java" / "Dockerfile").read_text()
    assert "gcr.io/distroless/java21-debian13:nonroot" in text


@pytest.mark.parametrize(("args", "needle"), [
    (("--variant", "sideways"), "Invalid value for '--variant'"),
    (("--variant", "multistage", "--keep", "/opt"), "needs --runtime-base"),
    (("--variant", "multistage", "--runtime-base", "imagefix-test/absent:1", "--keep", "/opt"),
     "not in the local engine"),
    (("--variant", "distroless", "--keep", "opt/relative"), "absolute paths"),
    (("--variant", "distroless", "--keep", "/opt\nRUN evil"), "absolute paths"),
    (("--in-registry", "--variant", "multistage"), "cannot make a multistage image"),
])
def test_bad_fix_input(cli, engine, spark, args, needle):
    before = tags(engine, spark, "imagefix-test/absent:1")
    result = cli("fix", spark, *args)
    assert result.exit_code == 2 and needle in result.stderr, result.stderr
    assert tags(engine, spark, "imagefix-test/absent:1") == before


def test_push_and_push_refused(cli, engine, images, spark, registry):
    target = f"{registry.host}/{repo_name('fixed')}:v1"
    result = cli("fix", spark, "--tag", target, "--push", "--format", "json")
    assert result.exit_code == 0, result.stderr
    images.tags.append(target)
    assert result.json()["pushed_digest"].startswith("sha256:")
    remote = cli("scan", "--format", "json", f"docker://{target}").json()["images"][0]
    # KIF107 (info) only: a pod must still make the identity explicit (the kubelet drops the group)
    assert remote["user"] == "185:185" and [f["rule"] for f in remote["findings"]] == ["KIF107"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}/x/y:z"
    refused = cli("fix", spark, "--tag", dead, "--push")
    images.tags.append(dead)
    assert refused.exit_code == 2 and "push of" in refused.stderr and "refused" in refused.stderr


@pytest.mark.registry
def test_in_registry_fixes_every_platform_without_moving_layers(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("inreg")
    amd = push_spec(client, tmp_path, repository, "amd64", spark_like("spark", big=2_000_000, arch="amd64"))
    arm = push_spec(client, tmp_path, repository, "arm64", spark_like("spark", big=2_000_000, arch="arm64"))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": amd["mediaType"], "digest": amd["digest"], "size": amd["size"],
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": arm["mediaType"], "digest": arm["digest"], "size": arm["size"],
         "platform": {"os": "linux", "architecture": "arm64"}}]}
    client.put_manifest(repository, "3.5.3", json.dumps(index).encode(), index["mediaType"])
    proxy = CountingProxy(registry.host)
    try:
        result = cli("fix", f"docker://{proxy.host}/{repository}:3.5.3", "--in-registry", "--format", "json",
                     "--tag", f"{proxy.host}/{repository}-kata:3.5.3")
        assert result.exit_code == 0, result.stderr
        layer_bytes = sum(layer["size"] for m in (amd, arm) for layer in m["manifest"]["layers"])
        assert proxy.sent < 40_000 < layer_bytes  # requests, two configs, three manifests: no layers
    finally:
        proxy.close()
    doc = result.json()
    assert [p["platform"] for p in doc["platforms"]] == ["linux/amd64", "linux/arm64"]
    for fixed, original in zip(doc["platforms"], (amd, arm), strict=True):
        assert fixed["layers"] == [layer["digest"] for layer in original["manifest"]["layers"]]
    assert "mount" in doc["uploaded"] and "upload" in doc["uploaded"]
    scanned = cli("scan", "--format", "json", "--all-platforms",
                  f"docker://{registry.host}/{repository}-kata:3.5.3").json()["images"]
    assert [(s["platform"], s["user"], [f["rule"] for f in s["findings"]]) for s in scanned] == [
        ("linux/amd64", "185:185", ["KIF107"]), ("linux/arm64", "185:185", ["KIF107"])]
    again = cli("fix", f"docker://{registry.host}/{repository}:3.5.3", "--in-registry",
                "--tag", f"{registry.host}/{repository}-kata:3.5.3")
    assert again.exit_code == 2 and "exists already" in again.stderr



@pytest.mark.parametrize("status", [401, 403, 503])
def test_in_registry_probe_only_a_404_means_the_target_is_absent(cli, status):
    """#24: the probe for an existing `-kata` tag once matched an error message, so a 401/403/5xx let
    it replace a tag it could not see. Any answer but 404 now stops it in one line, exit 2, with
    nothing written (the server takes only GETs: a PUT would be answered 501)."""
    seen: list[str] = []

    def answer(handler, _hit):
        seen.append(handler.path)
        send(handler, status, {"Content-Type": "application/json"}, b'{"errors": []}')

    server = ScriptedServer(answer)
    try:
        result = cli("fix", f"docker://{server.host}/app:1.0", "--in-registry", "--format", "json")
    finally:
        server.stop()
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "cannot tell whether" in result.stderr and f"HTTP {status}" in result.stderr
    assert seen and all(path.startswith("/v2/app/manifests/1.0-kata") for path in seen)


TRICKY = (
    "FROM {base}\n"
    "RUN mkdir -p '/w$HOME' /opt/app && echo app > /opt/app/run\n"
    "ENV B=\\$HOME C=a\\${{PATH}}b D='quote\"d \\\\ back' E=caf\u00e9\n"
    "WORKDIR /w\\$HOME\n"
    "LABEL org.example.team=\"data \\$team\"\n"
    "VOLUME /data\n"
    "USER spark\n"
    'ENTRYPOINT ["/bin/sh", "-c", "echo $HOME"]\n'
)


def test_multistage_keeps_every_runtime_value_literally(cli, engine, images):
    source = images.build(TRICKY.format(base=base_image()), name="tricky")
    expected = engine.inspect_image(source)["Config"]
    assert "B=$HOME" in expected["Env"] and expected["WorkingDir"] == "/w$HOME"  # the builder took \$ as $
    runtime = images.build(f"FROM {base_image()}\nENV SSL_CERT_FILE=/etc/ssl/certs/ca.pem\n", name="rt")
    result = cli("fix", source, "--variant", "multistage", "--runtime-base", runtime, "--keep", "/opt/app",
                 "--tag", f"{source}-slim", "--format", "json")
    assert result.exit_code == 0, result.stderr
    images.tags.append(f"{source}-slim")
    fixed = engine.inspect_image(f"{source}-slim")["Config"]
    for key in ("WorkingDir", "Entrypoint", "Cmd", "ExposedPorts", "Volumes"):
        assert fixed.get(key) == expected.get(key), key
    assert set(expected["Env"]) <= set(fixed["Env"])
    assert fixed["Labels"]["org.example.team"] == "data $team"
    assert result.json()["added_by_runtime_base"] == ["Env SSL_CERT_FILE"]


def test_a_changed_value_fails_the_fix_and_leaves_no_tag(cli, engine, images, tmp_path):
    source = images.build(TRICKY.format(base=base_image()), name="tricky2")
    templates = tmp_path / "templates"
    templates.mkdir()
    shipped = (ROOT / "templates" / "multistage.Dockerfile.j2").read_text()
    (templates / "multistage.Dockerfile.j2").write_text(shipped + "ENV B=changed\n")
    before = tags(engine, source, "imagefix-test/tricky:bad")
    result = cli("fix", source, "--variant", "multistage", "--runtime-base", base_image(), "--keep",
                 "/opt/app", "--template-dir", templates, "--tag", "imagefix-test/tricky:bad")
    assert result.exit_code == 2 and "verification failed" in result.stderr
    assert "Env B is 'changed'" in result.stderr
    assert tags(engine, source, "imagefix-test/tricky:bad") == before


def test_a_mirrored_image_is_pinned_to_its_own_repository(cli, engine, images, registry):
    built = images.build(SPARK_LIKE.format(base=base_image()), name="mirrored")
    mirror_repo = f"{registry.host}/{repo_name('team/spark')}"
    engine.tag(built, mirror_repo, "3.5.3")
    for event in engine.push(mirror_repo, "3.5.3", stream=True, decode=True):
        assert "error" not in event, event
    local = f"{repo_name('team/spark')}:3.5.3"  # re-tagged for the cluster's manifests
    engine.tag(built, local.rsplit(":", 1)[0], "3.5.3")
    images.tags += [local, f"{mirror_repo}:3.5.3"]
    digests = engine.inspect_image(local)["RepoDigests"]
    assert digests and all(d.startswith(mirror_repo + "@") for d in digests)
    result = cli("fix", local, "--format", "json", "--tag", f"{local}-kata")
    assert result.exit_code == 0, result.stderr
    images.tags.append(f"{local}-kata")
    assert f"FROM {digests[0]}" in result.json()["dockerfile"]  # the mirror's name, as listed
    assert engine.inspect_image(f"{local}-kata")["Config"]["User"] == "185:185"
