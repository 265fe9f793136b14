"""Unpacked layer sizes from a registry without downloading: gzip trailers and zstd headers read with
range requests (a real docker-registry), and the faults a real registry will not produce (a scripted one)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from make_samples import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Entry, write_layer_tar
from registries import ScriptedServer, repo_name, send

from kata_imagefix.image.layerfs import tar_unpacked_size
from kata_imagefix.image.sources.layersize import at_once, gzip_claim, zstd_claim
from kata_imagefix.image.sources.remote import COMPRESSION_RATIO, RegistryOptions, open_registry_images
from kata_imagefix.registry.client import RegistryClient

pytestmark = pytest.mark.registry
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def tar_of(*entries: Entry) -> bytes:
    out = io.BytesIO()
    write_layer_tar(entries, out)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def zst(data: bytes, *, content_size: bool) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(write_content_size=content_size).compress(data)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_documents(layers: list[tuple[bytes, bytes, str]], user: str = "0:0") -> tuple[bytes, bytes]:
    """(manifest, config) for layers given as (tar, blob, media type)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": user},
                         "rootfs": {"type": "layers", "diff_ids": [sha(tar) for tar, _, _ in layers]},
                         "history": [{"created_by": f"step {i}"} for i in range(len(layers))]}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": kind, "digest": sha(blob), "size": len(blob)}
                                      for _, blob, kind in layers]}).encode()
    return manifest, config


def push(registry, layers: list[tuple[bytes, bytes, str]], user: str = "0:0") -> str:
    """The image into the real registry; its reference."""
    client = RegistryClient(registry.host)
    repository = repo_name("sizes")
    manifest, config = image_documents(layers, user)
    for _, blob, _ in layers:
        client.push_blob(repository, blob)
    client.push_blob(repository, config)
    client.put_manifest(repository, "v1", manifest, OCI_MANIFEST)
    return f"{registry.host}/{repository}:v1"


def scan(reference: str, exact: bool = False):
    return open_registry_images(reference, reference, RegistryOptions(exact=exact))[0]


INCOMPRESSIBLE = tar_of(Entry("opt", kind="dir"), Entry("opt/spark.jar", os.urandom(3_000_000)))
COMPRESSIBLE = tar_of(Entry("data", kind="dir"), Entry("data/zeros", zeros=40_000_000),
                      *(Entry(f"data/f{i}.txt", b"hello %d\n" % i * 50) for i in range(200)))


# --- the real registry -------------------------------------------------------------------------------

def test_gzip_trailers_give_exact_sizes_for_incompressible_and_compressible_layers(registry):
    small = tar_of(Entry("app.txt", b"x" * 100))
    layers = [(tar, gz(tar), OCI_LAYER_GZIP) for tar in (INCOMPRESSIBLE, COMPRESSIBLE, small)]
    image = scan(push(registry, layers))
    assert not image.size_estimated
    assert [layer.tar_size for layer in image.layers] == [len(tar) for tar, _, _ in layers]
    # big layers count their tar (headers included); the small blob came whole and counts its files
    assert [layer.size_basis for layer in image.layers] == ["tar", "tar", "files"]
    assert image.layers[2].size == 100
    # the old guess would have been 3x the compressed size: 3x too big for the incompressible layer
    assert image.layers[0].size < 1.01 * len(layers[0][1]) < image.layers[0].size * COMPRESSION_RATIO
    assert image.transfer.by_kind == {"manifest": 1, "blob": 1, "blob-range": 3}
    assert image.transfer.bytes < 20_000  # a few kB per layer, never a layer

    exact = scan(push(registry, layers), exact=True)
    files = [tar_unpacked_size(io.BytesIO(tar)) for tar, _, _ in layers]
    assert [layer.size for layer in exact.layers] == files
    assert [layer.tar_size for layer in exact.layers] == [len(tar) for tar, _, _ in layers]


def test_a_passwd_lookup_confirms_the_trailers_it_streams_past(registry, tmp_path):
    from registries import push_spec, spark_like

    client = RegistryClient(registry.host)
    repository = repo_name("passwd")
    push_spec(client, tmp_path, repository, "v1", spark_like(big=2_000_000))
    image = scan(f"{registry.host}/{repository}:v1")
    assert b"spark:x:185" in image.read_file("/etc/passwd")
    assert not image.size_estimated


def test_zstd_with_and_without_content_size(registry):
    layers = [(INCOMPRESSIBLE, zst(INCOMPRESSIBLE, content_size=True), OCI_LAYER_ZSTD),
              (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)]
    image = scan(push(registry, layers))
    with_size, without = image.layers
    assert (with_size.size, with_size.size_estimated) == (len(INCOMPRESSIBLE), False)
    assert without.size_estimated and "no content size" in without.size_note
    assert without.size == int(len(layers[1][1]) * COMPRESSION_RATIO)
    exact = scan(push(registry, layers), exact=True)
    assert [layer.tar_size for layer in exact.layers] == [len(INCOMPRESSIBLE), len(COMPRESSIBLE)]
    assert not exact.size_estimated


def test_multi_member_gzip_is_not_trusted_and_counts_right_when_streamed(registry):
    cut = len(INCOMPRESSIBLE) - 1024 * 20
    small_last = gz(INCOMPRESSIBLE[:cut]) + gz(INCOMPRESSIBLE[cut:])  # the last member inside the tail
    cut = len(INCOMPRESSIBLE) // 2
    big_last = gz(INCOMPRESSIBLE[:cut]) + gz(INCOMPRESSIBLE[cut:])  # ISIZE: only half the layer
    image = scan(push(registry, [(INCOMPRESSIBLE, small_last, OCI_LAYER_GZIP),
                                 (INCOMPRESSIBLE, big_last, OCI_LAYER_GZIP)]))
    first, second = image.layers
    assert first.size_estimated and "several gzip members" in first.size_note
    assert second.size_estimated and "several gzip members" in second.size_note
    exact = scan(push(registry, [(INCOMPRESSIBLE, small_last, OCI_LAYER_GZIP),
                                 (INCOMPRESSIBLE, big_last, OCI_LAYER_GZIP)]), exact=True)
    assert [layer.tar_size for layer in exact.layers] == [len(INCOMPRESSIBLE)] * 2


def test_a_trailer_no_stream_could_have_is_refused(registry):
    blob = bytearray(gz(INCOMPRESSIBLE))
    blob[-4:] = (4_000_000_000).to_bytes(4, "little")  # 4 GB from 3 MB of random bytes: a lie or a bomb
    image = scan(push(registry, [(INCOMPRESSIBLE, bytes(blob), OCI_LAYER_GZIP)]))
    layer = image.layers[0]
    assert layer.size_estimated and "cannot unpack to" in layer.size_note
    assert layer.size == int(len(blob) * COMPRESSION_RATIO)


def test_scan_json_and_text_say_which_sizes_are_exact(cli, registry):
    reference = push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP),
                                (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)])
    slow = ("--pull-rate", "0.01")  # KIF203 and KIF204 fire: their timeouts come from the size
    doc = cli("scan", "--format", "json", f"docker://{reference}", *slow).json()["images"][0]
    assert doc["size_estimated"] is True
    assert [layer["size_estimated"] for layer in doc["layers"]] == [False, True]
    assert doc["layers"][0]["unpacked_bytes"] == len(INCOMPRESSIBLE)
    timeouts = {f["rule"]: f for f in doc["findings"] if f["rule"] in ("KIF203", "KIF204")}
    assert set(timeouts) == {"KIF203", "KIF204"}
    assert all(f["data"]["size_estimated"] is True and "size estimated" in f["message"]
               for f in timeouts.values())
    text = cli("scan", f"docker://{reference}", *slow).stdout
    assert "unpacked (estimated)" in text and "budget (estimated size):" in text
    exact = cli("scan", f"docker://{reference}", "--exact", *slow).stdout
    assert "budget (exact size):" in exact and "(estimated)" not in exact


# --- what a real registry will not do ----------------------------------------------------------------

class ImageServer(ScriptedServer):
    """Serves one image; `ranges` says how blob range requests are answered: "serve" (206, as
    distribution does), "ignore" (200 and the whole blob, as a server without range support), or
    "lie" (206 with the end of another blob)."""

    def __init__(self, layers: list[tuple[bytes, bytes, str]], ranges: str, lie: bytes = b"") -> None:
        self.manifest, self.config = image_documents(layers)
        self.blobs = {sha(blob): blob for _, blob, _ in layers} | {sha(self.config): self.config}
        self.ranges, self.lie, self.sent = ranges, lie, 0
        super().__init__(self._answer, "HTTP/1.1")

    def _answer(self, handler, _hit: int) -> None:
        if "/manifests/" in handler.path:
            send(handler, 200, {"Content-Type": OCI_MANIFEST}, self.manifest)
            return
        blob = self.blobs.get(handler.path.rsplit("/", 1)[-1])
        if blob is None:
            send(handler, 404)
            return
        wanted = handler.headers.get("Range")
        if wanted and self.ranges != "ignore":
            count = int(wanted.rsplit("-", 1)[1]) if wanted.startswith("bytes=-") else 18
            source = self.lie if self.ranges == "lie" else blob
            part = source[-count:] if wanted.startswith("bytes=-") else source[:count]
            start = len(blob) - len(part) if wanted.startswith("bytes=-") else 0
            send(handler, 206, {"Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(blob)}"}, part)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(blob)))
        handler.end_headers()
        try:
            for offset in range(0, len(blob), 65536):
                handler.wfile.write(blob[offset:offset + 65536])
                self.sent += 65536
        except OSError:
            handler.close_connection = True  # the client hung up: what it must do on a 200


def test_a_registry_without_range_support_is_never_read_whole(registry):
    big = tar_of(Entry("blob.bin", os.urandom(24_000_000)))
    server = ImageServer([(big, gz(big), OCI_LAYER_GZIP)], "ignore")
    try:
        image = scan(f"{server.host}/app:v1")
    finally:
        server.stop()
    layer = image.layers[0]
    assert layer.size_estimated and "does not serve byte ranges" in layer.size_note
    assert image.transfer.bytes < 100_000  # manifest and config: the 24 MB body was left unread


def test_a_range_answer_that_lies_is_caught_when_the_layer_is_streamed():
    from kata_imagefix.image import progress

    notes: list[str] = []
    progress.set_listener(notes.append)  # what the CLI shows on stderr
    real = gz(INCOMPRESSIBLE)
    other = tar_of(Entry("x", os.urandom(5_000_000)))  # bigger: a plausible claim
    server = ImageServer([(INCOMPRESSIBLE, real, OCI_LAYER_GZIP)], "lie", lie=gz(other))
    try:
        told = scan(f"{server.host}/app:v1")
        assert told.layers[0].size == len(other)  # plausible, so believed: only reading the blob can tell
        assert not told.size_estimated
        assert told.read_file("/etc/passwd") is None  # streams the layer to its end (the digest)
        assert told.layers[0].size_estimated and "differ from the blob's real end" in told.layers[0].size_note
        counted = scan(f"{server.host}/app:v1", exact=True)
    finally:
        server.stop()
        progress.set_listener(None)
    assert counted.layers[0].tar_size == len(INCOMPRESSIBLE)
    assert counted.layers[0].size == tar_unpacked_size(io.BytesIO(INCOMPRESSIBLE))
    assert any("the count is used" in note for note in notes)
    assert any("estimated again" in note for note in notes)


# --- the judging itself, on real compressed bytes ------------------------------------------------------

def test_a_possible_4gib_wrap_is_not_trusted():
    data = os.urandom(1 << 20)
    blob = gz(data)
    assert gzip_claim(blob[-4096:], len(blob)).size == len(data)
    # a 1 GB blob whose trailer says 1 GB: it could as well be 5.3 GB (5.3:1), so it is not trusted
    tail = blob[-4096:-4] + (10**9).to_bytes(4, "little")
    claim = gzip_claim(tail, 10**9)
    assert claim.size is None and "4 GiB or more" in claim.why
    # 500 MB saying 450 MB: the wrap would need 9.5:1, above what image layers compress to
    assert gzip_claim(blob[-4096:-4] + (450 * 10**6).to_bytes(4, "little"), 500 * 10**6).size == 450 * 10**6
    # random data grows a little through deflate: a trailer just under the compressed size is right
    assert gzip_claim(blob[-4096:-4] + (299_900_000).to_bytes(4, "little"), 300_000_000).size == 299_900_000


def test_zstd_header_below_what_the_blob_holds_means_several_frames():
    data = os.urandom(300_000)
    frames = zst(data[:1000], content_size=True) + zst(data[1000:], content_size=True)
    claim = zstd_claim(frames[:18], len(frames))
    assert claim.size is None and "several" in claim.why
    assert zstd_claim(zst(data, content_size=True)[:18], len(zst(data, content_size=True))).size == len(data)


# --- the engine: sizes from its layer store, whatever its history says ---------------------------------

ZERO_BYTE_LAYERS = ("RUN dd if=/dev/urandom of=/big bs=1000000 count=3\n"
                    "WORKDIR /app\n"  # a step without a layer
                    "RUN true\n"  # a RUN that changed nothing: no layer either, yet a RUN in the history
                    "RUN mkdir /data\n"  # a layer of 0 bytes (one directory)
                    "RUN echo hi > /app/hi.txt\n")


@pytest.mark.engine
def test_zero_byte_layers_keep_each_size_on_its_own_layer(cli, images, registry, engine):
    from conftest import base_image

    tag = images.build(f"FROM {base_image()}\n{ZERO_BYTE_LAYERS}", name="zero")
    doc = cli("scan", "--format", "json", tag).json()["images"][0]
    layers = [(layer["unpacked_bytes"], layer["created_by"]) for layer in doc["layers"]]
    assert doc["size_estimated"] is False
    assert [size for size, _ in layers[1:]] == [3_000_000, 0, 3]
    assert "dd if=/dev/urandom" in layers[1][1] and "mkdir /data" in layers[2][1]
    assert "echo hi" in layers[3][1]
    text = cli("scan", tag).stdout
    assert "(estimated)" not in text

    # the layer store's tar shapes are the very tars a push sends: the registry's trailers agree
    from kata_imagefix.image.sources import open_image

    local = open_image(tag)
    remote = f"{registry.host}/{repo_name('zero')}"
    engine.tag(tag, remote, "v1")
    images.tags.append(f"{remote}:v1")
    for event in engine.push(remote, "v1", stream=True, decode=True):
        assert "error" not in event, event
    told = scan(f"{remote}:v1")
    assert local.contents.tar_sizes() == [layer.tar_size for layer in told.layers]


@pytest.mark.engine
def test_without_the_layer_store_an_unmatched_history_is_marked_not_misplaced(images, monkeypatch, tmp_path):
    """Not root on the engine's host (here: a data root with nothing readable in it): the history is
    all there is, and when it cannot be matched the total is marked as a guess, with the reason."""
    from conftest import base_image

    from kata_imagefix.image.sources import daemon, layerstore, open_image

    tag = images.build(f"FROM {base_image()}\n{ZERO_BYTE_LAYERS}", name="zero")
    monkeypatch.setattr(layerstore, "engine_root", lambda inspect, api: tmp_path)
    assert daemon._layer_store(daemon.api_client(), daemon.api_client().inspect_image(tag), ["x"]) is None
    image = open_image(tag)
    assert image.size_estimated and "cannot be matched" in image.layers[-1].size_note
    assert all(layer.size is None for layer in image.layers[:-1])


# --- every command that derives a timeout or memory from a size says whether it is exact ----------------

def test_k8s_and_kata_commands_say_whether_sizes_are_exact_and_take_exact(cli, registry, tmp_path):
    reference = push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP),
                                (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)])
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n"
                        "  runtimeClassName: kata-qemu-tdx\n  containers:\n"
                        f"  - name: app\n    image: '{reference}'\n")
    slow = ("--pull-rate", "0.01")  # 3 MB at 10 kB/s: KIF405 fires, its message names the size's kind
    told = cli("k8s", "check", str(manifest), "--format", "json", *slow).json()["workloads"][0]
    assert told["size_estimated"] is True and any("--exact" in note for note in told["notes"])
    kif405 = next(f for f in told["findings"] if f["rule"] == "KIF405")
    assert "estimated)" in kif405["message"] and kif405["data"]["size_estimated"] is True
    counted = cli("k8s", "check", str(manifest), "--format", "json", "--exact", *slow).json()["workloads"][0]
    assert counted["size_estimated"] is False
    assert "exact)" in next(f for f in counted["findings"] if f["rule"] == "KIF405")["message"]

    fixed = cli("k8s", "fix", str(manifest), "--exact", *slow)
    assert "from a size exact" in fixed.stderr and "size exact (imagefix)" in fixed.stdout
    pod = cli("k8s", f"docker://{reference}", *slow).stdout
    assert "(estimated) needs" in pod
    assert "(exact) needs" in cli("k8s", f"docker://{reference}", "--exact", *slow).stdout

    config = Path(__file__).parent / "data/kata-4.1.0/go/configuration-qemu-tdx.toml"
    kata = cli("kata", "check", str(config), "--image", f"docker://{reference}", "--format", "json", *slow)
    kif303 = [f for f in kata.json()["files"][0]["findings"] if f["rule"] == "KIF303"]
    assert kif303 and all(f["data"]["size_estimated"] for f in kif303)
    kata = cli("kata", "check", str(config), "--image", f"docker://{reference}", "--format", "json",
               "--exact", *slow)
    assert not any(f["data"]["size_estimated"] for f in kata.json()["files"][0]["findings"]
                   if f["rule"] == "KIF303")


def test_the_range_follows_a_redirect_to_blob_storage():
    blob = gz(INCOMPRESSIBLE)
    storage = ImageServer([(INCOMPRESSIBLE, blob, OCI_LAYER_GZIP)], "serve")  # serves ranges, as S3 does

    def registry_answer(handler, _hit: int) -> None:
        if "/blobs/" in handler.path:  # blobs live elsewhere: a redirect, as Docker Hub sends
            send(handler, 307, {"Location": f"http://{storage.host}{handler.path}"})
        else:
            storage._answer(handler, _hit)

    front = ScriptedServer(registry_answer, "HTTP/1.1")
    try:
        image = scan(f"{front.host}/app:v1")
    finally:
        front.stop()
        storage.stop()
    assert not image.size_estimated and image.layers[0].size == len(INCOMPRESSIBLE)
    assert image.transfer.bytes < 100_000


def test_a_layer_is_sized_once_per_registry_and_process(registry):
    reference = push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP)])
    first, again = scan(reference), scan(reference)  # a second tag, a fleet's shared base layer
    assert first.transfer.by_kind["blob-range"] == 1 and "blob-range" not in again.transfer.by_kind
    assert again.layers[0].size == first.layers[0].size == len(INCOMPRESSIBLE)


def test_every_budget_message_says_whether_its_size_is_exact(cli, registry, tmp_path):
    """The kubelet-only KIF303 (the Kata timeout holds), KIF406's memory and KIF201's layer, estimated and
    --exact: the message says which, the JSON data carries size_estimated."""
    reference = push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP),
                                (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)])
    gpu = Path(__file__).parent / "data/kata-4.1.0/go/configuration-qemu-nvidia-gpu.toml"  # 1200 s
    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        kata = cli("kata", "check", str(gpu), "--image", f"docker://{reference}", "--format", "json",
                   "--pull-rate", "0.2", "--kubelet-timeout", "20", *extra).json()["files"][0]["findings"]
        kubelet = [f for f in kata if f["rule"] == "KIF303" and "holds" in f["message"]]
        assert kubelet, kata
        assert f", {said}) needs" in kubelet[0]["message"]
        assert kubelet[0]["data"]["size_estimated"] is (said == "estimated")

    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n"
                        "  runtimeClassName: kata-qemu-tdx\n  containers:\n"
                        f"  - name: app\n    image: '{reference}'\n")
    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        told = cli("k8s", "check", str(manifest), "--format", "json", "--guest-memory", "3",
                   "--memory-reserve", "1", *extra).json()["workloads"][0]["findings"]
        kif406 = next(f for f in told if f["rule"] == "KIF406")
        assert f"({said}) in one" in kif406["message"]
        assert kif406["data"]["size_estimated"] is (said == "estimated")

    # the zstd layer without a content size is the estimated one; --exact counts it
    for extra, estimated in (((), True), (("--exact",), False)):
        scanned = cli("scan", "--format", "json", "--max-layer-size", "1", f"docker://{reference}",
                      *extra).json()["images"][0]["findings"]
        kif201 = {f["layer"]: f for f in scanned if f["rule"] == "KIF201"}
        assert kif201[0]["data"]["size_estimated"] is False and "(estimated)" not in kif201[0]["message"]
        assert kif201[1]["data"]["size_estimated"] is estimated
        assert ("(estimated)" in kif201[1]["message"]) is estimated


def test_the_range_requests_run_at_once_and_an_error_still_lets_the_others_finish():
    import threading
    import time

    started: list[int] = []
    both = threading.Barrier(2, timeout=10)  # two calls must be running together, or this times out

    def call(index: int) -> int:
        started.append(index)
        if index < 2:
            both.wait()
        if index == 3:
            raise ValueError("layer 3")
        time.sleep(0.01)
        return index * 10

    assert at_once(call, 3, 8, "t") == [0, 10, 20]
    started.clear()
    with pytest.raises(ValueError, match="layer 3"):
        at_once(call, 6, 2, "t")
    assert sorted(started) == list(range(6))  # as ThreadPoolExecutor.map: every call ran


def test_kata_patch_auto_says_whether_its_size_is_exact_and_takes_exact(cli, registry, tmp_path):
    reference = push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP),
                                (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)])
    config = Path(__file__).parent / "data/kata-4.1.0/go/configuration-qemu-tdx.toml"
    timeout = {}
    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        out = tmp_path / f"{said}.toml"
        result = cli("kata", "patch", str(config), "--create-container-timeout", "auto", "--default-memory",
                     "auto", "--image", f"docker://{reference}", "--pull-rate", "0.01",
                     "--memory-reserve", "4000", "-o", str(out), *extra)
        assert result.exit_code == 0, result.stderr
        assert f"auto: guest pull + unpack of docker://{reference} needs" in result.stdout
        assert f"with margin (size {said})" in result.stdout
        assert f"auto: docker://{reference} unpacks ({said} size) into a tmpfs" in result.stdout
        timeout[said] = int(out.read_text().split("\ncreate_container_timeout = ", 1)[1].split()[0])
    # the estimate (3 MB + the zstd layer at 3x its few compressed kB) against the 43 MB counted
    assert timeout["estimated"] < timeout["exact"]


# --- k8s pod / k8s fix --format json: the values and the size they come from ---------------------------

def spark_sizes(registry) -> str:
    """A named-user image (spark, 185:185) whose size is estimated without --exact: a 3 MB gzip layer and
    the accounts (exact from the trailer / counted whole), and a zstd layer of 40 MB of zeros without a
    content size (estimated at 3x its few compressed kB)."""
    from make_samples import SPARK_GROUP, SPARK_PASSWD, base_layer

    accounts = tar_of(*base_layer(SPARK_PASSWD, SPARK_GROUP).entries)
    return push(registry, [(INCOMPRESSIBLE, gz(INCOMPRESSIBLE), OCI_LAYER_GZIP),
                           (accounts, gz(accounts), OCI_LAYER_GZIP),
                           (COMPRESSIBLE, zst(COMPRESSIBLE, content_size=False), OCI_LAYER_ZSTD)],
                user="spark")


def test_k8s_pod_json_gives_the_pod_and_the_size_its_values_come_from(cli, registry, tmp_path):
    reference = spark_sizes(registry)
    estimated, counted = scan(reference), scan(reference, exact=True)
    assert estimated.size_estimated and not counted.size_estimated
    assert counted.unpacked_size > 10 * estimated.unpacked_size  # the zeros: 40 MB counted, kB guessed
    slow = ("--pull-rate", "0.01")  # 3 MB at 10 kB/s: the timeout annotation is needed
    seconds = {}
    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        result = cli("k8s", "pod", f"docker://{reference}", "--format", "json", *slow, *extra)
        assert result.exit_code == 0, result.stderr
        doc = result.json()
        assert doc["schema_version"] == 1 and doc["tool"]["name"] == "imagefix"
        image = counted if said == "exact" else estimated
        assert doc["size_estimated"] is (said == "estimated") and doc["image"]["size_estimated"] is \
            (said == "estimated")
        assert doc["image"]["reference"] == f"docker://{reference}" and doc["image"]["name"] == reference
        assert doc["image"]["unpacked_bytes"] == image.unpacked_size
        timeout = doc["create_container_timeout"]
        assert timeout["size_estimated"] is (said == "estimated") and f"({said}) needs" in timeout["why"]
        assert timeout["seconds"] == doc["budget"]["recommended_create_container_timeout"] > 60
        assert doc["budget"]["unpacked_bytes"] == image.unpacked_size
        assert f", {said})" in doc["default_memory"]["why"]
        pod = doc["pod"]
        wanted = {a["key"]: a["value"] for a in doc["annotations"]}
        assert pod["metadata"]["annotations"] == wanted
        assert wanted["io.katacontainers.config.runtime.create_container_timeout"] == str(timeout["seconds"])
        assert timeout["annotation"] == str(timeout["seconds"])
        assert pod["spec"]["runtimeClassName"] == doc["runtime_class"] == "kata-qemu-tdx"
        assert pod["spec"]["containers"][0]["securityContext"] == {"runAsUser": 185, "runAsGroup": 185}
        assert (doc["user"]["run_as_user"], doc["user"]["run_as_group"], doc["user"]["level"]) == \
            (185, 185, "container")
        assert any(f"({said} size), above the kubelet's" in note for note in doc["notes"])  # > 120 s
        seconds[said] = timeout["seconds"]
    assert seconds["estimated"] < seconds["exact"]  # 43 MB counted take longer than 3 MB guessed

    # the YAML's notes say it too; `imagefix k8s REF` is `k8s pod REF`; the JSON to a file with -o
    from kata_imagefix.sizes import human_size

    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        text = cli("k8s", f"docker://{reference}", *extra).stdout
        size = human_size((counted if said == "exact" else estimated).unpacked_size)
        assert f"already suffice for {size} unpacked ({said} size)" in text
        assert f"# note: the image needs {seconds[said]} s ({said} size), above the kubelet's" in \
            cli("k8s", f"docker://{reference}", *slow, *extra).stdout
    unknown = cli("k8s", f"docker://{reference}", "--runtime-class", "kata-custom", *slow).stdout
    assert f"to size it to the {seconds['estimated']} s needed (from an estimated size)" in unknown
    small = cli("k8s", f"docker://{reference}", "--runtime-class", "kata-qemu", "--guest-memory", "64",
                "--memory-reserve", "1", "--format", "json", "--exact").json()
    assert small["default_memory"]["mib"] > 64 and small["default_memory"]["annotation"] is None
    needs = f"the guest needs {small['default_memory']['mib']} MiB (for {human_size(counted.unpacked_size)}"
    assert any(f"{needs} unpacked, exact size) but kata-qemu does not enable" in n for n in small["notes"])
    out = tmp_path / "pod.json"
    assert cli("k8s", f"docker://{reference}", "--format", "json", "-o", str(out)).stdout == ""
    assert json.loads(out.read_text())["notes"][-1].endswith("unpacked (estimated size)")

    # --patch: the patched documents; --kustomize: the patches
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n"
                        f"    spec:\n      containers:\n      - name: app\n        image: '{reference}'\n")
    patched = cli("k8s", f"docker://{reference}", "--patch", str(manifest), "--format", "json", *slow)
    assert patched.exit_code == 0 and "patched Deployment/app: app" in patched.stderr
    doc = patched.json()
    assert doc["patched"] == ["Deployment/app: app"] and len(doc["documents"]) == 1
    template = doc["documents"][0]["spec"]["template"]
    assert template["spec"]["runtimeClassName"] == "kata-qemu-tdx"
    assert template["metadata"]["annotations"] == {a["key"]: a["value"] for a in doc["annotations"]}
    assert template["spec"]["containers"][0]["securityContext"] == {"runAsUser": 185, "runAsGroup": 185}
    assert doc["size_estimated"] is True
    kustomized = cli("k8s", f"docker://{reference}", "--patch", str(manifest), "--kustomize", "--format",
                     "json", "--exact", *slow).json()
    assert kustomized["patched"] == ["Deployment/app"] and kustomized["size_estimated"] is False
    assert kustomized["documents"][0]["spec"]["template"]["metadata"]["annotations"][
        "io.katacontainers.config.runtime.create_container_timeout"] == str(seconds["exact"])


def test_k8s_fix_json_lists_what_was_set_and_the_size_it_came_from(cli, registry, tmp_path):
    reference = spark_sizes(registry)
    estimated, counted = scan(reference), scan(reference, exact=True)
    missing = f"{registry.host}/{repo_name('missing')}:v1"  # KIF407: left, not fixed
    original = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: prod\nspec:\n"
                "  template:\n    spec:\n      runtimeClassName: kata-qemu-tdx\n      containers:\n"
                f"      - name: app\n        image: '{reference}'\n      - name: side\n"
                f"        image: '{missing}'\n")
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(original)
    slow = ("--pull-rate", "0.01")

    # the fixed manifest on stdout leaves no room for JSON: one line, exit 2, nothing written
    for extra, carries in ((), "the fixed manifest"), (("-o", "-"), "the fixed manifest"), \
            (("--diff",), "the diff"):
        refused = cli("k8s", "fix", str(manifest), "--format", "json", *extra)
        assert refused.exit_code == 2 and refused.stdout == ""
        assert refused.stderr.strip().splitlines() == [
            f"imagefix: error: --format json needs -o FILE, --in-place or --check: stdout carries {carries}"]
    assert manifest.read_text() == original
    # a config's `format = "json"` (meant for the reports) keeps the manifest on stdout, the JSON elsewhere
    config = tmp_path / ".imagefix.toml"
    config.write_text('format = "json"\n')
    configured = cli("--config", config, "k8s", "fix", str(manifest))
    assert configured.stdout.startswith("apiVersion: apps/v1") and "fixed " in configured.stderr
    assert cli("--config", config, "k8s", "fix", str(manifest), "--check").json()["check"] is True

    values = {}
    for extra, said in (((), "estimated"), (("--exact",), "exact")):
        out = tmp_path / f"{said}.yaml"
        result = cli("k8s", "fix", str(manifest), "-o", str(out), "--format", "json", *slow, *extra)
        assert result.exit_code == 1, result.stderr  # the unreadable image is left
        doc = result.json()
        assert doc["schema_version"] == 1 and doc["check"] is False and doc["fixed_all"] is False
        [file] = doc["files"]
        assert (file["file"], file["written"], file["changed"]) == (str(manifest), str(out), True)
        [workload] = file["workloads"]
        assert workload["workload"] == "prod/Deployment/app"
        image = counted if said == "exact" else estimated
        app, side = workload["containers"]
        assert app == {"name": "app", "image": reference, "set": {"runAsUser": 185, "runAsGroup": 185},
                       "unpacked_bytes": image.unpacked_size, "size_estimated": said == "estimated"}
        assert side == {"name": "side", "image": missing, "set": {}, "unpacked_bytes": None,
                        "size_estimated": None}
        assert workload["sized_from"] == {"image": reference, "unpacked_bytes": image.unpacked_size,
                                          "size_estimated": said == "estimated"}
        annotations = {a["key"]: a for a in workload["annotations"]}
        timeout = annotations["io.katacontainers.config.runtime.create_container_timeout"]
        assert f"size {said} (imagefix)" in timeout["why"]
        assert any(f"(from a size {said})" in change for change in workload["changes"])
        assert [left["finding"].split()[0] for left in doc["left"]] == ["KIF407"]
        assert "side" in doc["left"][0]["subject"] + doc["left"][0]["finding"]
        fixed = out.read_text()
        assert f'create_container_timeout: "{timeout["value"]}"  # ' in fixed
        assert f"size {said} (imagefix)" in fixed
        values[said] = int(timeout["value"])
    assert values["estimated"] < values["exact"]

    # text summary (-o FILE: on stdout) says it too, the kernel_params line included
    text = cli("k8s", "fix", str(manifest), "-o", str(tmp_path / "text.yaml"), "--exact", *slow)
    assert f"timeout 60 -> {values['exact']} s (from a size exact)" in text.stdout
    assert f"agent.image_pull_timeout 1200 -> {values['exact']} s (kernel_params, from a size exact)" in \
        text.stdout

    # --check: nothing written, exit 1, the same values as would be written
    checked = cli("k8s", "fix", str(manifest), "--check", "--format", "json", *slow)
    assert checked.exit_code == 1 and manifest.read_text() == original
    doc = checked.json()
    assert doc["check"] is True and doc["files"][0]["written"] is None and doc["changed"] is True
    assert doc["files"][0]["workloads"][0]["containers"][0]["set"] == {"runAsUser": 185, "runAsGroup": 185}
