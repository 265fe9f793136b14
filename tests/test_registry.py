"""Scanning straight from real registries (Debian's docker-registry on loopback), without pulling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import base_image
from registries import (
    CountingProxy,
    FaultServer,
    Registry,
    ScriptedServer,
    TokenServer,
    push_spec,
    repo_name,
    send,
    spark_like,
    start_registry,
)

from kata_imagefix.image.sources.remote import COMPRESSION_RATIO, RegistryOptions, open_registry_images
from kata_imagefix.registry.auth import Credentials
from kata_imagefix.registry.client import RegistryClient
from kata_imagefix.registry.errors import NotFound

pytestmark = pytest.mark.registry


def findings(doc: dict) -> list[tuple[str, str]]:
    """(rule, severity), but KIF107 (the pod's side of a non-root USER: tests/test_scan_archives.py)."""
    return sorted((f["rule"], f["severity"]) for f in doc["findings"] if f["rule"] != "KIF107")


# --- images pushed by the real engine ------------------------------------------------------------

@pytest.mark.engine
def test_engine_pushed_image_gives_the_same_findings_as_the_daemon(cli, engine, images, registry):
    tag = images.build(f"FROM {base_image()}\nRUN dd if=/dev/zero of=/z bs=1000000 count=3\nUSER spark\n",
                       name="pushed")
    remote = f"{registry.host}/{repo_name('pushed')}"
    engine.tag(tag, remote, "v1")
    images.tags.append(f"{remote}:v1")
    for event in engine.push(remote, "v1", stream=True, decode=True):
        assert "error" not in event, event
    local = cli("scan", "--format", "json", tag).json()["images"][0]
    remote_doc = cli("scan", "--format", "json", f"docker://{remote}:v1").json()["images"][0]
    assert findings(local) == findings(remote_doc) == [("KIF101", "error")]
    assert local["findings"][0]["fix"] == remote_doc["findings"][0]["fix"]
    # the engine's gzip layers carry their unpacked length: exact without a download; it counts the
    # tar (headers and padding too), a little more than the file bytes `docker history` counts
    assert remote_doc["size_estimated"] is False
    assert not any("ESTIMATED" in note for note in remote_doc.get("notes", []))
    for told, counted in zip(remote_doc["layers"], local["layers"], strict=True):
        assert told["size_counts"] == "tar" or told["unpacked_bytes"] == counted["unpacked_bytes"]
        assert counted["unpacked_bytes"] <= told["unpacked_bytes"] <= counted["unpacked_bytes"] * 1.02 + 2**20
    assert remote_doc["digest"].startswith("sha256:")
    exact = cli("scan", "--format", "json", "--exact", f"docker://{remote}:v1").json()["images"][0]
    assert exact["size_estimated"] is False
    assert not any("ESTIMATED" in note for note in exact.get("notes", []))
    assert [layer["unpacked_bytes"] for layer in exact["layers"]] == \
        [layer["unpacked_bytes"] for layer in local["layers"]]
    # a bare reference the daemon lacks goes to the registry
    assert cli("scan", "--format", "json", f"{remote}:v1").json()["images"][0]["transport"] == "docker-daemon"
    engine.remove_image(f"{remote}:v1")
    bare = cli("scan", "--format", "json", f"{remote}:v1").json()["images"][0]
    assert bare["transport"] == "docker" and findings(bare) == [("KIF101", "error")]


def test_numeric_user_costs_one_manifest_and_one_config_request(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("numeric")
    pushed = push_spec(client, tmp_path, repository, "v1", spark_like("185:185"))
    doc = cli("scan", "--format", "json", f"docker://{registry.host}/{repository}:v1").json()["images"][0]
    assert [f["rule"] for f in doc["findings"]] == ["KIF107"]  # said from the USER string: no layer read
    # one small range request per layer for its unpacked size, and no layer read
    compressed = [layer["size"] for layer in pushed["manifest"]["layers"]]
    assert doc["transfer"]["by_kind"] == {"manifest": 1, "blob": 1, "blob-range": len(compressed)}
    assert [layer["compressed_bytes"] for layer in doc["layers"]] == compressed
    assert doc["size_estimated"] is False
    assert all(layer["unpacked_bytes"] != int(c * COMPRESSION_RATIO)
               for layer, c in zip(doc["layers"], compressed, strict=True))


def test_named_user_reads_only_the_layers_down_to_passwd(registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("bytes")
    pushed = push_spec(client, tmp_path, repository, "v1", spark_like("spark", big=3_000_000))
    layers = pushed["manifest"]["layers"]  # [big random layer, passwd layer, top layer]
    (image,) = open_registry_images(f"{registry.host}/{repository}:v1", "r", RegistryOptions())
    before = image.transfer.bytes
    assert image.read_file("/etc/passwd").startswith(b"root:")
    read = image.transfer.bytes - before
    allowed = layers[1]["size"] + layers[2]["size"]
    assert read <= allowed, (read, allowed)
    assert read < layers[0]["size"]  # the big bottom layer was never fetched
    assert image.transfer.by_kind["blob"] == 3  # config + the two top layers


def test_missing_tag_and_deleted_blob(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("gone")
    pushed = push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    missing = cli("scan", f"docker://{registry.host}/{repository}:nope")
    assert missing.exit_code == 2 and "no manifest nope" in missing.stderr
    with pytest.raises(NotFound) as absent:  # callers tell a free tag from a refusal by the status
        client.manifest_bytes(repository, "nope")
    assert absent.value.status == 404
    served = client.manifest_bytes(repository, "v1")  # bytes and their descriptor: image/ reads them
    assert json.loads(served.raw) == pushed["manifest"] and served.size == len(served.raw)
    assert served.media_type == pushed["manifest"]["mediaType"]
    digest = pushed["manifest"]["layers"][-1]["digest"]
    response = client.request("DELETE", f"/v2/{repository}/blobs/{digest}")
    response.read()
    assert response.status == 202
    gone = cli("scan", f"docker://{registry.host}/{repository}:v1")
    assert gone.exit_code == 2 and f"blob {digest} is missing" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1


def test_a_blob_that_does_not_match_its_digest_is_refused(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("tampered")
    pushed = push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    config = registry.blob_path(pushed["manifest"]["config"]["digest"])
    data = bytearray(config.read_bytes())
    data[-3] ^= 0x01  # same length, other bytes: the registry serves it, the digest cannot match
    config.write_bytes(bytes(data))
    result = cli("scan", f"docker://{registry.host}/{repository}:v1")
    assert result.exit_code == 2 and "does not match its digest (refused)" in result.stderr


def test_multi_platform_index(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("multi")
    amd = push_spec(client, tmp_path, repository, "amd64", spark_like("spark", arch="amd64"))
    arm = push_spec(client, tmp_path, repository, "arm64", spark_like("185:185", arch="arm64"))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": amd["mediaType"], "digest": amd["digest"], "size": amd["size"],
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": arm["mediaType"], "digest": arm["digest"], "size": arm["size"],
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": arm["mediaType"], "digest": arm["digest"], "size": arm["size"],
         "platform": {"os": "unknown", "architecture": "unknown"}},  # an attestation entry
    ]}
    client.put_manifest(repository, "multi", json.dumps(index).encode(), index["mediaType"])
    ref = f"docker://{registry.host}/{repository}:multi"
    host_default = cli("scan", "--format", "json", ref).json()["images"]
    assert len(host_default) == 1 and host_default[0]["platform"] == "linux/amd64"
    arm_doc = cli("scan", "--format", "json", "--platform", "linux/arm64", ref).json()["images"][0]
    assert arm_doc["platform"] == "linux/arm64"
    assert findings(arm_doc) == []
    every = cli("scan", "--format", "json", "--all-platforms", ref).json()["images"]
    assert [d["reference"] for d in every] == [f"{ref} [linux/amd64]", f"{ref} [linux/arm64/v8]"]
    assert [findings(d) for d in every] == [[("KIF101", "error")], []]
    none = cli("scan", "--platform", "linux/s390x", ref)
    assert none.exit_code == 2 and "linux/amd64, linux/arm64/v8" in none.stderr


def test_many_references_concurrently_one_failing(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repository = repo_name("many")
    push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    refs = [f"docker://{registry.host}/{repository}:v1"] * 6 + [f"docker://{registry.host}/{repository}:x"]
    result = cli("scan", "--format", "json", "--jobs", "4", *refs)
    doc = result.json()
    assert len(doc["images"]) == 6 and len(doc["errors"]) == 1
    assert result.exit_code == 2


def test_images_read_one_after_another_share_one_kept_alive_connection(cli, registry, tmp_path):
    client = RegistryClient(registry.host)
    repositories = [repo_name("pool") for _ in range(5)]
    for repository in repositories:
        push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    proxy = CountingProxy(registry.host)
    try:
        result = cli("scan", "--format", "json", "--jobs", "1",
                     *(f"docker://{proxy.host}/{repository}:v1" for repository in repositories))
        images = result.json()["images"]
        assert [image["findings"][0]["data"]["uid"] for image in images] == [185] * 5  # passwd read
        assert all(image["transfer"]["by_kind"]["manifest"] == 1 for image in images)  # counted apart
        # "does it speak TLS?" + one kept alive, and one for each layer's size read while the config is
        # (2 layers): the later images find all of them idle in the pool
        assert proxy.connections == 4, proxy.connections
    finally:
        proxy.close()


def test_an_idle_connection_the_registry_dropped_is_replaced_at_once(cli, monkeypatch):
    import kata_imagefix.registry.policy as policy_module

    waits: list[float] = []
    monkeypatch.setattr(policy_module.time, "sleep", waits.append)
    server = FaultServer(*fault_image(), drop_after_config=True)
    try:
        result = cli("scan", "--format", "json", "--jobs", "1", f"docker://{server.host}/x/a:1",
                     f"docker://{server.host}/x/b:1", f"docker://{server.host}/x/c:1")
        assert result.exit_code == 0, result.stderr
        assert len(result.json()["images"]) == 3
        assert waits == []  # no backoff: a dropped idle connection is not a failing registry
    finally:
        server.stop()


# --- authentication -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    registry = start_registry(tmp_path_factory.mktemp("basic"), tls=True, users={"alice": "s3cret-pw"})
    yield registry
    registry.stop()


def install_ca(certs: Path, registry: Registry) -> None:
    folder = certs / registry.host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(registry.ca.read_bytes())


def test_basic_auth_behind_tls(cli, basic_registry, certs, tmp_path, monkeypatch):
    install_ca(certs, basic_registry)
    client = RegistryClient(basic_registry.host, credentials=Credentials("alice", "s3cret-pw"))
    repository = repo_name("basic")
    push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    ref = f"docker://{basic_registry.host}/{repository}:v1"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    anonymous = cli("scan", ref)
    assert anonymous.exit_code == 2 and "access denied without credentials" in anonymous.stderr
    ok = cli("scan", "--format", "json", "--username", "alice", "--password-stdin", ref, input="s3cret-pw\n")
    assert ok.exit_code == 1 and ok.json()["images"][0]["findings"][0]["rule"] == "KIF101"
    wrong = cli("scan", "--username", "alice", "--password-stdin", ref, input="guess\n")
    assert wrong.exit_code == 2 and "s3cret" not in wrong.stderr + wrong.stdout
    assert "guess" not in wrong.stderr + wrong.stdout
    # credentials from Docker's config.json
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = __import__("base64").b64encode(b"alice:s3cret-pw").decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    assert cli("scan", ref).exit_code == 1


def test_credential_helpers_are_asked(cli, basic_registry, certs, tmp_path, monkeypatch):
    install_ca(certs, basic_registry)
    client = RegistryClient(basic_registry.host, credentials=Credentials("alice", "s3cret-pw"))
    repository = repo_name("helper")
    push_spec(client, tmp_path, repository, "v1", spark_like("185:185"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-imagefixtest"
    helper.write_text("#!/bin/sh\nread server\necho \"$server\" > \"$(dirname \"$0\")/asked\"\n"
                      "printf '{\"Username\":\"alice\",\"Secret\":\"s3cret-pw\"}'\n")
    helper.chmod(0o755)
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    helpers = {"credHelpers": {basic_registry.host: "imagefixtest"}}
    (config_dir / "config.json").write_text(json.dumps(helpers))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = cli("scan", f"docker://{basic_registry.host}/{repository}:v1")
    assert result.exit_code == 0, result.stderr
    assert (bin_dir / "asked").read_text().strip() == basic_registry.host


def test_tls_is_verified(cli, basic_registry, certs, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    result = cli("scan", f"docker://{basic_registry.host}/any/thing:v1")  # no CA installed
    assert result.exit_code == 2 and "CERTIFICATE_VERIFY_FAILED" in result.stderr.upper().replace(" ", "_")


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("token")
    token = TokenServer(work, {"bob": "hunter2-pw"})
    registry = start_registry(work, token=token)
    registry.token = token  # type: ignore[attr-defined]
    yield registry
    registry.stop()
    token.stop()


def test_token_auth_flow(cli, token_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    client = RegistryClient(token_registry.host, credentials=Credentials("bob", "hunter2-pw"))
    repository = repo_name("token")
    push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    ref = f"docker://{token_registry.host}/{repository}:v1"
    anonymous = cli("scan", ref)
    assert anonymous.exit_code == 2 and "access denied" in anonymous.stderr
    ok = cli("scan", "--format", "json", "--username", "bob", "--password-stdin", ref, input="hunter2-pw\n")
    assert ok.exit_code == 1, ok.stderr
    asked = [r for r in token_registry.token.requests if r["user"] == "bob"]
    assert asked and all(r["service"] == "imagefix-test-registry" for r in asked)
    assert "hunter2" not in ok.stdout


def test_a_redirect_to_blob_storage_is_trusted_as_certs_d_says(cli, certs, tmp_path):
    """The registry sends blobs to storage on another host over TLS: that connection trusts what
    certs.d holds for the storage host, as every other one does (it used to trust the system CAs only)."""
    from kata_imagefix.registry.session import Session
    from kata_imagefix.registry.tls import HostTLS

    storage = start_registry(tmp_path / "storage", tls=True)
    try:
        trusted = Session([(storage.host, HostTLS((str(storage.ca),)))])
        pushed = push_spec(RegistryClient(storage.host, session=trusted), tmp_path, "app", "1",
                           spark_like("185:185"))
        manifest = json.dumps(pushed["manifest"]).encode()

        def answer(handler, _hit):
            if "/manifests/" in handler.path:
                send(handler, 200, {"Content-Type": pushed["manifest"]["mediaType"]}, manifest)
            else:  # every blob lives in the storage
                send(handler, 307, {"Location": f"https://{storage.host}{handler.path}"})

        front = ScriptedServer(answer)
        try:
            ref = f"docker://{front.host}/app:1"
            untrusted = cli("scan", ref)
            assert untrusted.exit_code == 2 and f"blob storage {storage.host}" in untrusted.stderr
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr.upper().replace(" ", "_")
            assert f"certs.d/{storage.host}/ca.crt" in untrusted.stderr
            install_ca(certs, storage)
            read = cli("scan", "--format", "json", ref)
            assert read.exit_code != 2, read.stderr
            assert [f["rule"] for f in read.json()["images"][0]["findings"]] == ["KIF107"]  # config read
        finally:
            front.stop()
    finally:
        storage.stop()


# --- faults a real registry will not produce on purpose ------------------------------------------

def fault_image() -> tuple[bytes, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "185:185"},
                         "rootfs": {"type": "layers", "diff_ids": []}, "history": []}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + __import__("hashlib").sha256(config).hexdigest(),
                                      "size": len(config)},
                           "layers": []}).encode()
    return manifest, config


def test_500_then_200_is_retried(cli):
    server = FaultServer(*fault_image(), failures=2)
    try:
        result = cli("scan", "--format", "json", f"docker://{server.host}/x/y:1")
        assert result.exit_code == 0, result.stderr
        assert result.json()["images"][0]["transfer"]["by_kind"]["manifest"] == 3
    finally:
        server.stop()


def test_persistent_500_gives_up_with_a_clear_line(cli):
    server = FaultServer(*fault_image(), failures=100)
    try:
        result = cli("scan", f"docker://{server.host}/x/y:1")
        assert result.exit_code == 2 and "HTTP 500" in result.stderr
    finally:
        server.stop()


def test_a_hanging_registry_times_out(cli):
    server = FaultServer(*fault_image(), hang=True)
    try:
        result = cli("scan", "--registry-timeout", "1", f"docker://{server.host}/x/y:1")
        assert result.exit_code == 2 and "did not answer within 1 s" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        server.stop()


def test_nothing_listening(cli):
    from registries import free_port

    result = cli("scan", f"docker://127.0.0.1:{free_port()}/x/y:1")
    assert result.exit_code == 2 and "cannot connect" in result.stderr


def test_account_files_are_read_in_one_pass_and_remembered_by_layer_digest(
        registry, tmp_path, private_layer_cache, monkeypatch):
    from make_samples import Entry, LayerSpec

    client = RegistryClient(registry.host)
    repository = repo_name("cached")
    spec = spark_like("spark")
    spec.layers.insert(1, LayerSpec([Entry("opt/big.bin", data=os.urandom(2_000_000))], "dd"))  # above passwd
    layers = push_spec(client, tmp_path, repository, "v1", spec)["manifest"]["layers"]
    ref = f"{registry.host}/{repository}:v1"

    def fresh():
        (image,) = open_registry_images(ref, "r", RegistryOptions())
        return image, image.transfer.by_kind["blob"]  # the config so far

    first, config_only = fresh()
    passwd = first.read_file("/etc/passwd")
    assert passwd.startswith(b"root:") and b"spark:x:185" in passwd
    assert first.read_file("/etc/group").startswith(b"root:")  # same pass: no request of its own
    assert first.transfer.by_kind["blob"] == config_only + 3
    cached = sorted(p.stem for p in (private_layer_cache / "layer-paths" / "sha256").glob("*.json"))
    assert cached == sorted(layer["digest"].split(":")[1] for layer in layers)

    second, _ = fresh()
    assert second.read_file("/etc/passwd") == passwd and second.read_file("/etc/group")
    assert second.transfer.by_kind["blob"] == config_only  # no layer fetched at all

    damaged = private_layer_cache / "layer-paths" / "sha256" / (layers[1]["digest"].split(":")[1] + ".json")
    damaged.write_text("{not json")
    third, _ = fresh()
    assert third.read_file("/etc/passwd") == passwd  # a damaged entry is a miss, read again
    assert third.transfer.by_kind["blob"] == config_only + 1
    assert json.loads(damaged.read_text())["paths"]["etc/passwd"] == {"kind": "none"}

    monkeypatch.setenv("IMAGEFIX_NO_CACHE", "1")
    off, _ = fresh()
    assert off.read_file("/etc/passwd") == passwd and off.transfer.by_kind["blob"] == config_only + 3


def test_a_layer_that_fails_its_digest_is_never_remembered(cli, registry, tmp_path, private_layer_cache):
    client = RegistryClient(registry.host)
    repository = repo_name("tampered-layer")
    pushed = push_spec(client, tmp_path, repository, "v1", spark_like("spark"))
    top = pushed["manifest"]["layers"][-1]["digest"]
    blob = registry.blob_path(top)
    data = bytearray(blob.read_bytes())
    data[4] ^= 0x01  # the gzip header's mtime: still a valid layer, but not the bytes of its digest
    blob.write_bytes(bytes(data))
    result = cli("scan", f"docker://{registry.host}/{repository}:v1")
    assert result.exit_code == 2 and "does not match its digest" in result.stderr
    assert not list(private_layer_cache.rglob(top.split(":")[1] + ".json"))
    data[-3] ^= 0x01  # now the gzip checksum too: a corrupt layer is one clear line, not a traceback
    blob.write_bytes(bytes(data))
    result = cli("scan", f"docker://{registry.host}/{repository}:v1")
    assert result.exit_code == 2 and result.stderr.startswith("imagefix: error: docker://")
    assert "cannot read /etc/passwd from its layers (corrupt gzip data" in result.stderr
