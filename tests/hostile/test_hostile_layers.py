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


# --- round 2: bombs, cut streams and odd headers, run as a user would (child process, RSS measured) ---

def _tar_of(*members: tuple[str, bytes | int]):
    """A writer of a tar holding each (name, bytes or a count of zeros), headers by tarfile."""
    def write(out) -> None:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = body if isinstance(body, int) else len(body)
            out.write(info.tobuf(tarfile.USTAR_FORMAT))
            if isinstance(body, int):
                zeros = bytes(1 << 20)
                for _ in range(body >> 20):
                    out.write(zeros)
                out.write(bytes(body & ((1 << 20) - 1)))
            else:
                out.write(body)
            out.write(bytes(-info.size % 512))
        out.write(bytes(1024))
    return write


PASSWD_AFTER_A_BOMB = _tar_of(("zeros.bin", 1 << 30), ("etc/passwd", SPARK_PASSWD.encode()),
                              ("etc/group", SPARK_GROUP.encode()))


@pytest.mark.parametrize("compression", ["zstd", "xz", "bzip2"])
def test_a_compressed_gib_of_zeros_is_read_under_the_memory_bound(tmp_path, compression):
    from child import MAX_RSS_MB, layout_around, run_child

    reference = layout_around(tmp_path / "img", PASSWD_AFTER_A_BOMB, compression=compression)
    for args in (("scan", "--format", "json", reference), ("report", "--format", "json", reference)):
        result, seconds, rss = run_child(*args, timeout=300)
        assert result.returncode in (0, 1), result.stderr
        assert rss < MAX_RSS_MB, (args[0], rss, seconds)
    assert '"USER 185:185' in run_child("scan", "--format", "json", reference, timeout=300)[0].stdout


@pytest.mark.parametrize("compression", ["zstd", "xz", "bzip2", "gzip"])
def test_a_compressed_layer_cut_short_is_an_error(tmp_path, compression):
    from child import layout_around, one_line_error, run_child

    writer = _tar_of(("etc/passwd", SPARK_PASSWD.encode()), ("etc/group", SPARK_GROUP.encode()),
                     ("opt/data.bin", bytes(range(256)) * 4000))
    reference = layout_around(tmp_path / "img", writer, compression=compression, keep=0.6)
    result, _, _ = run_child("report", reference, timeout=60)
    assert one_line_error(result) and "truncated" in result.stderr, result.stderr


def _special(type_flag: bytes, data: bytes, name: str = "././@LongLink") -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = type_flag, len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def _with_special(type_flag: bytes, data: bytes):
    def write(out) -> None:
        out.write(_special(type_flag, data))
        _tar_of(("etc/passwd", SPARK_PASSWD.encode()))(out)
    return write


@pytest.mark.parametrize("type_flag", [b"x", b"L", b"K"])
def test_a_150mb_pax_path_or_gnu_long_name_is_refused_under_the_memory_bound(tmp_path, type_flag):
    from child import MAX_RSS_MB, layout_around, one_line_error, run_child

    name = b"a" * 150_000_000
    data = (b"%d path=" % (len(name) + 17) + name + b"\n") if type_flag == b"x" else name + b"\0"
    reference = layout_around(tmp_path / "img", _with_special(type_flag, data))
    del name, data
    result, _, rss = run_child("scan", reference, timeout=120)
    assert one_line_error(result) and "archive/tar" in result.stderr, result.stderr
    assert rss < MAX_RSS_MB, rss


@pytest.mark.parametrize("records", [b"0 path=x\n" + b"\0" * 100, b"3 x\n", b"99999 path=x\n",
                                     b"-5 path=x\n", b"12 path=abcde"])
def test_malformed_pax_records_end_in_one_line(tmp_path, records):
    from child import layout_around, one_line_error, run_child

    reference = layout_around(tmp_path / "img", _with_special(b"x", records))
    result, _, _ = run_child("scan", reference, timeout=30)  # a length of 0 looped forever
    assert one_line_error(result) and "PAX" in result.stderr, result.stderr


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"\xd9\xa3"])
def test_a_pax_size_that_is_not_a_number_is_one_line(tmp_path, value):
    from child import layout_around, one_line_error, run_child

    record = b" size=" + value + b"\n"
    record = b"%d" % (len(record) + 2) + record
    reference = layout_around(tmp_path / "img", _with_special(b"x", record))
    result, _, _ = run_child("scan", reference, timeout=30)
    assert one_line_error(result) and "size=" in result.stderr, result.stderr


def test_a_hard_link_to_a_lower_layers_file_is_followed(cli, tmp_path):
    from make_samples import Entry, LayerSpec

    lower = LayerSpec([Entry("etc", kind="dir"), Entry("etc/passwd-", SPARK_PASSWD.encode()),
                       Entry("etc/group", SPARK_GROUP.encode())])
    upper = LayerSpec([Entry("etc", kind="dir"), Entry("etc/passwd", kind="hardlink", target="etc/passwd-")])
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([lower, upper], config={"User": "spark"})})
    result = cli("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1")
    assert result.exit_code == 1 and '"USER 185:185' in result.stdout, result.stdout


def test_a_link_target_with_a_trailing_slash_does_not_reach_a_file(cli, tmp_path):
    from make_samples import Entry, LayerSpec

    layer = LayerSpec([Entry("etc", kind="dir"), Entry("etc/passwd.real", SPARK_PASSWD.encode()),
                       Entry("etc/passwd", kind="symlink", target="passwd.real/"),
                       Entry("etc/group", SPARK_GROUP.encode())])
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([layer], config={"User": "spark"})})
    result = cli("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1")
    assert result.exit_code == 1 and "no /etc/passwd" in json.dumps(result.json())  # the kernel: ENOTDIR
    assert "USER 185:185" not in result.stdout


@pytest.mark.parametrize("target", ["a/" * 50_000 + "passwd", "../" * 33_000 + "etc/passwd.real",
                                    "x" * 100_000])
def test_a_100kb_link_target_ends_quickly_under_the_bound(tmp_path, target):
    from child import MAX_RSS_MB, run_child
    from make_samples import Entry, LayerSpec

    layer = LayerSpec([Entry("etc", kind="dir"), Entry("etc/passwd.real", SPARK_PASSWD.encode()),
                       Entry("etc/passwd", kind="symlink", target=target)])
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([layer], config={"User": "spark"})})
    result, _, rss = run_child("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1", timeout=60)
    assert result.returncode == 1 and "no /etc/passwd" in result.stdout, result.stderr  # ENAMETOOLONG
    assert rss < MAX_RSS_MB, rss


@pytest.mark.parametrize(("passwd", "offered"), [
    ("root:x:0:0::/root:/bin/sh\n   spark:x:185:185::/opt/spark:/bin/sh\n", "USER 185:185"),  # moby trims
    ("root:x:0:0::/root:/bin/sh\n\tspark:x:185:185::/opt/spark:/bin/sh  \r\n", "USER 185:185"),
    ("root:x:0:0::/root:/bin/sh\nspark:x:4294967296:185::/opt/spark:/bin/sh\n", None),
    ("root:x:0:0::/root:/bin/sh\nspark:x:2147483648:185::/opt/spark:/bin/sh\n", None),
    ("root:x:0:0::/root:/bin/sh\nspark:x:185:4294967296::/opt/spark:/bin/sh\n", None),
])
def test_passwd_lines_are_read_as_containerd_reads_them(cli, tmp_path, passwd, offered):
    write_oci_layout(tmp_path / "img", {"1": ImageSpec([base_layer(passwd, "spark:x:185:\n")],
                                                       config={"User": "spark"})})
    result = cli("scan", "--format", "json", f"oci:{tmp_path / 'img'}:1")
    assert result.exit_code == 1, result.stderr
    if offered:
        assert f'"{offered}' in result.stdout, result.stdout
    else:  # containerd refuses ids above 2147483647: never offered as the fix
        assert "4294967296:" not in result.stdout and "2147483648:" not in result.stdout
        assert ":4294967296" not in result.stdout
