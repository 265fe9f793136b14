"""Big and odd inputs run as a user would run them: a child process, bounded in time and memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from child import MAX_RSS_MB, run_child


@pytest.mark.parametrize("body", ["x" * 10_000_000, "echo '" + "x " * 5_000_000,
                                  " && ".join(f"useradd -u {i} u{i}" for i in range(200_000))])
def test_a_10mb_run_line_lints_in_seconds(tmp_path, body):
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM debian:12\nRUN {body}\nUSER 1000:1000\n")
    result, seconds, rss = run_child("lint", str(path), timeout=60)
    assert result.returncode == 0, result.stderr
    assert seconds < 30 and rss < MAX_RSS_MB * 1.5, (seconds, rss)  # the text itself is 10 MB, held twice


def test_a_binary_dockerfile_is_one_line(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"\x7fELF\x00\x01" * 1000)
    result, _, _ = run_child("lint", str(path), timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 0 and "binary" in result.stderr


def test_the_shipped_sample_scans_under_the_memory_bound():
    sample = Path(__file__).resolve().parents[2] / "samples" / "spark"
    result, _, rss = run_child("scan", f"oci:{sample}:3.5.3", timeout=60)
    assert result.returncode == 1 and rss < MAX_RSS_MB


@pytest.mark.parametrize("kind", ["million-lines", "one-60mb-line"])
def test_huge_passwd_files_are_searched_not_loaded_into_tables(tmp_path, kind):
    from make_samples import SPARK_GROUP, Entry, ImageSpec, LayerSpec, write_oci_layout

    if kind == "million-lines":
        passwd = b"".join(b"user%d:x:%d:%d::/home:/bin/sh\n" % (i, 10_000 + i, 10_000 + i)
                          for i in range(1_000_000)) + b"spark:x:185:185::/opt/spark:/bin/sh\n"
    else:
        passwd = b"x" * 60_000_000 + b"\nspark:x:185:185::/opt/spark:/bin/sh\n"
    layer = LayerSpec([Entry("etc/passwd", passwd), Entry("etc/group", SPARK_GROUP.encode())])
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([layer], config={"User": "spark"})}, compress=False)
    result, _seconds, rss = run_child("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1", timeout=120)
    assert result.returncode == 1 and '"USER 185:185' in result.stdout, result.stderr
    assert rss < MAX_RSS_MB, rss


def test_k8s_patch_of_100000_documents_is_linear(tmp_path):
    from conftest import SAMPLES

    doc = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n"
           "    spec:\n      containers:\n      - name: app\n        image: {image}\n")
    manifest = tmp_path / "fleet.yaml"
    manifest.write_text("---\n".join(doc.format(i=i, image="spark:3.5.3" if i % 1000 == 0 else f"web:{i}")
                                     for i in range(100_000)))
    out = tmp_path / "fleet.kata.yaml"
    result, seconds, rss = run_child("k8s", f"oci:{SAMPLES / 'spark'}:3.5.3", "--image-name", "spark:3.5.3",
                                     "--patch", str(manifest), "-o", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_text().count("runAsUser: 185") == 100
    assert seconds < 120, seconds  # a guard against a quadratic or per-document round trip, not a benchmark
    assert rss < MAX_RSS_MB * 1.5, rss


def test_a_multi_mb_kata_config_checks_and_patches_under_the_memory_bound(tmp_path):
    data = Path(__file__).resolve().parents[1] / "data"
    shipped = data / "kata-4.1.0" / "go" / "configuration-qemu-tdx.toml"
    text = shipped.read_text().replace("[factory]\n", "[factory]\ncreate_container_timeout = 120\n", 1)
    # tables Kata does not know (one hypervisor table more would be refused: Go takes one at random)
    text += "".join(f'[extra{i}]\npath = "/x"\nkernel_params = "a b c"\ndefault_vcpus = 1\n'
                    for i in range(50_000))
    path = tmp_path / "configuration-qemu-tdx.toml"
    path.write_text(text)  # about 3.9 MB, 200,000 keys
    out = tmp_path / "out.toml"
    for args in (("kata", "check", str(path)), ("kata", "patch", str(path), "-o", str(out))):
        result, seconds, rss = run_child(*args, timeout=120)
        assert result.returncode in (0, 1), result.stderr
        assert rss < MAX_RSS_MB and seconds < 60, (args[1], rss, seconds)
    assert "create_container_timeout = 120" in (tmp_path / "out.toml").read_text()


def test_a_50mb_manifest_is_patched_under_the_memory_bound(tmp_path):
    from conftest import SAMPLES

    doc = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n"
           "  labels: {{team: t{i}, tier: backend, owner: someone-{i}}}\nspec:\n  template:\n    spec:\n"
           "      containers:\n      - name: app\n        image: {image}\n        env:\n"
           "        - {{name: A, value: '{i}'}}\n")
    manifest = tmp_path / "big.yaml"
    manifest.write_text("---\n".join(doc.format(i=i, image="spark:3.5.3" if i % 1000 == 0 else f"web:{i}")
                                     for i in range(200_000)))  # about 54 MB
    out = tmp_path / "big.kata.yaml"
    result, _seconds, rss = run_child("k8s", f"oci:{SAMPLES / 'spark'}:3.5.3", "--image-name", "spark:3.5.3",
                                     "--patch", str(manifest), "-o", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert rss < MAX_RSS_MB, rss
    assert out.stat().st_size > manifest.stat().st_size


def test_report_files_on_a_layer_of_a_million_files_stays_under_the_bound(tmp_path):
    import hashlib
    import json
    import tarfile

    root = tmp_path / "img"
    (root / "blobs" / "sha256").mkdir(parents=True)
    layer = tmp_path / "layer.tar"
    with open(layer, "wb") as out:  # headers only: 1,000,000 empty files in 1,000 folders
        for folder in range(1000):
            info = tarfile.TarInfo(f"data/d{folder:04d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            out.write(info.tobuf(tarfile.USTAR_FORMAT))
            for number in range(1000):
                out.write(tarfile.TarInfo(f"data/d{folder:04d}/f{number:05d}").tobuf(tarfile.USTAR_FORMAT))
        out.write(b"\0" * 1024)

    def blob(data: bytes | None = None, path: Path | None = None) -> dict:
        raw = data if data is not None else path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(raw)
        return {"digest": f"sha256:{digest}", "size": len(raw)}

    layer_desc = blob(path=layer)
    layer.unlink()
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}).encode())
    manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                            **layer_desc}]}).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    result, _, rss = run_child("report", f"oci:{root}:1", "--files", "20", "--format", "json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"]["visible_files"] == 1_000_000
    assert rss < MAX_RSS_MB, rss
