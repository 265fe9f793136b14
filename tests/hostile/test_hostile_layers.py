"""Layers that lie: cut short, claiming sizes they do not carry, replaced behind their digest."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from make_samples import SPARK_GROUP, SPARK_PASSWD, ImageSpec, base_layer, write_oci_layout

from kata_imagefix.image.tarstream import TarFormatError, walk


def _tar_with(size: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(b"\0" * size))
    return out.getvalue()


def test_an_uncompressed_layer_cut_inside_a_file_is_an_error(tmp_path):
    data = _tar_with(1_000_000)
    path = tmp_path / "layer.tar"
    path.write_bytes(data[:600_000])  # the header and part of the file
    with open(path, "rb") as handle, pytest.raises(TarFormatError, match="truncated"):
        list(walk(handle, seekable=True))


def test_a_header_claiming_8_gib_without_the_bytes_is_an_error(tmp_path):
    header = bytearray(_tar_with(0)[:512])
    header[124:136] = b"%011o\0" % (8 * 2**30)
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    path = tmp_path / "layer.tar"
    path.write_bytes(bytes(header) + b"\0" * 1024)
    with open(path, "rb") as handle, pytest.raises(TarFormatError, match="truncated"):
        list(walk(handle, seekable=True))


def _layout(tmp_path):
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([base_layer(SPARK_PASSWD, SPARK_GROUP)],
                                                       config={"User": "spark"})}, compress=False)
    index = json.loads((tmp_path / "img" / "index.json").read_text())
    manifest_path = tmp_path / "img" / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_text())
    return tmp_path / "img", manifest


def test_a_replaced_layer_blob_is_caught_by_its_digest(cli, tmp_path):
    root, manifest = _layout(tmp_path)
    blob = root / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    blob.write_bytes(_tar_with(10))  # a valid tar, but not the one the manifest names
    result = cli("scan", f"oci:{root}:1")
    assert result.exit_code == 2 and "does not match its digest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("digest", ["sha256:../../../etc/passwd", "sha256:ABC", "md5:" + "a" * 32, 5, None])
def test_a_malformed_digest_never_becomes_a_path(cli, tmp_path, digest):
    root, _ = _layout(tmp_path)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0]["digest"] = digest
    (root / "index.json").write_text(json.dumps(index))
    result = cli("scan", f"oci:{root}:1")
    assert result.exit_code == 2 and "invalid digest" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("links", [[("etc/passwd", "etc/passwd")],
                                   [("etc/passwd", "etc/group"), ("etc/group", "etc/passwd")]])
def test_hard_link_loops_end(cli, tmp_path, links):
    from make_samples import Entry, LayerSpec

    layer = LayerSpec([Entry("etc", kind="dir"), *(Entry(name, kind="hardlink", target=target)
                                                   for name, target in links)])
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([layer], config={"User": "spark"})})
    result = cli("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1")
    assert result.exit_code == 1  # KIF101 + KIF104: no passwd to read, and no hang
    assert "no /etc/passwd" in json.dumps(result.json())
