"""The tar walker against tarfile as an oracle, and union lookups with whiteouts."""

import bz2
import gzip
import io
import lzma
import tarfile

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from make_samples import Entry, write_layer_tar

from kata_imagefix.image.layerfs import find_file, member_size, tar_unpacked_size
from kata_imagefix.image.tarstream import TarFormatError, walk


def layer(*entries: Entry, fmt=tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    if fmt == tarfile.PAX_FORMAT:
        write_layer_tar(entries, out)
    else:
        with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
            for e in entries:
                info = tarfile.TarInfo(e.path)
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return out.getvalue()


COMPRESSORS = {
    "plain": lambda b: b,
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("compression", COMPRESSORS)
@pytest.mark.parametrize("seekable", [True, False])
def test_walk_reads_every_compression(compression, seekable):
    data = COMPRESSORS[compression](layer(
        Entry("etc", kind="dir"), Entry("etc/passwd", b"root:x:0:0::/:/bin/sh\n"),
        Entry("big", zeros=3 * 2**20 + 7), Entry("link", kind="symlink", target="etc/passwd"),
    ))
    members = [(m.name, m.size) for m in walk(io.BytesIO(data), seekable=seekable)]
    assert members == [("etc", 0), ("etc/passwd", 22), ("big", 3 * 2**20 + 7), ("link", 0)]
    assert tar_unpacked_size(io.BytesIO(data), seekable=seekable) == 22 + 3 * 2**20 + 7 + len("etc/passwd")


def test_long_names_gnu_and_pax():
    long_name = "d/" + "x" * 150 + "/file"
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        name = long_name if fmt != tarfile.USTAR_FORMAT else "p" * 90 + "/" + "y" * 90
        data = layer(Entry(name, b"abc"), fmt=fmt)
        assert [(m.name, m.read()) for m in walk(io.BytesIO(data))] == [(name, b"abc")]


names = st.text(alphabet="abcdefghij_./-", min_size=1, max_size=120).filter(
    lambda s: s.strip("./") and "//" not in s)


class Trickle(io.BytesIO):
    """A stream that hands out at most `step` bytes a read, like a socket: buffer edges fall anywhere."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int = -1) -> bytes:
        return super().read(self.step if size < 0 else min(size, self.step))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(names, st.binary(max_size=2000), st.booleans()), min_size=0, max_size=12),
       st.sampled_from(["plain", "gzip"]), st.sampled_from([None, 1, 7, 512, 700, 4096]))
def test_walk_agrees_with_tarfile(files, compression, step):
    """Members read or skipped in any mix, from whole buffers or a trickle, give tarfile's answer."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, _ in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = COMPRESSORS[compression](raw.getvalue())
    stream = io.BytesIO(blob) if step is None else Trickle(blob, step)
    wanted = [read for _, _, read in files]
    ours = [(m.name, m.read() if i < len(wanted) and wanted[i] else m.size)
            for i, m in enumerate(walk(stream))]
    with tarfile.open(fileobj=io.BytesIO(raw.getvalue())) as tar:
        oracle = [(m.name, tar.extractfile(m).read() if i < len(wanted) and wanted[i] else m.size)
                  for i, m in enumerate(tar)]
    assert ours == oracle


@pytest.mark.parametrize(("blob", "message"), [
    (b"this is not a tar archive at all" * 40, "not a tar archive"),
    (gzip.compress(b"garbage" * 200), "not a tar archive"),
    (b"\x1f\x8b\x08\x00garbage-after-magic", "corrupt gzip"),
])
def test_bad_layers_raise_one_error_type(blob, message):
    with pytest.raises(TarFormatError, match=message):
        list(walk(io.BytesIO(blob)))


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_truncated_layers_are_detected(compression):
    whole = COMPRESSORS[compression](layer(Entry("a", zeros=200_000), Entry("b", b"x")))
    with pytest.raises(TarFormatError, match="truncated"):
        for member in walk(io.BytesIO(whole[: len(whole) // 2])):
            if member.name == "b":
                member.read()


def openers(*layers_top_down: bytes):
    return [lambda b=b: io.BytesIO(b) for b in layers_top_down]


PASSWD_OLD = Entry("etc/passwd", b"old\n")
PASSWD_NEW = Entry("etc/passwd", b"new\n")


def test_union_lookup_takes_the_top_copy():
    bottom = layer(Entry("etc", kind="dir"), PASSWD_OLD)
    top = layer(Entry("etc", kind="dir"), PASSWD_NEW)
    assert find_file("/etc/passwd", openers(top, bottom)) == b"new\n"
    assert find_file("etc/passwd", openers(layer(Entry("other", b"")), bottom)) == b"old\n"


def test_union_lookup_honours_whiteouts_and_readds():
    bottom = layer(Entry("etc", kind="dir"), PASSWD_OLD)
    deleted = layer(Entry("etc/.wh.passwd", b""))
    readded = layer(PASSWD_NEW)
    assert find_file("/etc/passwd", openers(deleted, bottom)) is None
    assert find_file("/etc/passwd", openers(readded, deleted, bottom)) == b"new\n"
    assert find_file("/etc/passwd", openers(layer(Entry(".wh.etc", b"")), bottom)) is None


def test_union_lookup_honours_opaque_directories():
    bottom = layer(Entry("etc", kind="dir"), PASSWD_OLD)
    opaque = layer(Entry("etc", kind="dir"), Entry("etc/.wh..wh..opq", b""), Entry("etc/hosts", b""))
    assert find_file("/etc/passwd", openers(opaque, bottom)) is None
    opaque_with_file = layer(Entry("etc/.wh..wh..opq", b""), PASSWD_NEW)
    assert find_file("/etc/passwd", openers(opaque_with_file, bottom)) == b"new\n"


def test_union_lookup_stops_at_the_settling_layer():
    opened = []

    def opener(data, name):
        def open_():
            opened.append(name)
            return io.BytesIO(data)
        return open_

    top = layer(Entry("app/x", b""))
    middle = layer(PASSWD_NEW)
    bottom = layer(PASSWD_OLD)
    assert find_file("/etc/passwd", [opener(top, "top"), opener(middle, "middle"),
                                     opener(bottom, "bottom")]) == b"new\n"
    assert opened == ["top", "middle"]


def test_sizes_count_like_docker():
    data = layer(Entry("f", b"12345"), Entry("h", kind="hardlink", target="f"),
                 Entry("s", kind="symlink", target="f"), Entry("d", kind="dir"),
                 Entry(".wh.gone", b""))
    assert [member_size(m) for m in walk(io.BytesIO(data))] == [5, 0, 1, 0, 0]


def test_docker_save_stream_reads_the_same_however_it_arrives(tmp_path):
    """Nested layer tars bigger than the read buffer, from a file, a trickle or odd-sized chunks."""
    import json
    import random

    from make_samples import ImageSpec, LayerSpec, write_docker_archive

    from kata_imagefix.image.layerwalk import FILE, entries_from_save

    rng = random.Random(7)
    layers = [
        LayerSpec([Entry(f"d{n}/f{i}", rng.randbytes(rng.choice([0, 1, 511, 513, 70_000, 300_000])))
                   for i in range(12)] + [Entry(f"d{n}/big", zeros=1_500_000 + n)])
        for n in range(3)
    ]
    archive = tmp_path / "save.tar"
    write_docker_archive(archive, {"x/y:1": ImageSpec(layers)})
    blob = archive.read_bytes()
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    diff_ids = ["sha256:" + path.split("/")[0] for path in manifest[0]["Layers"]]
    expected = [[(e.path, len(e.data) or e.zeros, FILE) for e in spec.entries] for spec in layers]
    for stream in (io.BytesIO(blob), Trickle(blob, 4096), Trickle(blob, 100_003)):
        got = entries_from_save(stream, diff_ids)
        assert [[e for e in layer if e[2] == FILE] for layer in got] == expected


@given(st.text(alphabet="ab./", max_size=12))
def test_normalize_folds_like_normpath(name):
    import posixpath

    from kata_imagefix.image.layerfs import normalize

    slow = posixpath.normpath("/" + name).lstrip("/")
    assert normalize(name) == ("" if slow == "." else slow)


@pytest.mark.parametrize("skippable", [True, False])
def test_progress_counting_passes_skips_down_and_counts_every_byte(skippable):
    from kata_imagefix.image.progress import CountingReader

    blob = layer(Entry("a", zeros=3 * 2**20), Entry("b", b"x" * 10))

    class Plain:  # a stream that cannot skip: the counter reads through instead
        def __init__(self) -> None:
            self.inner = io.BytesIO(blob)

        def read(self, size: int = -1) -> bytes:
            return self.inner.read(size)

    class Skipping(Trickle):
        def skip(self, size: int) -> int:
            start = self.tell()
            return self.seek(min(start + size, len(blob))) - start

    source = Skipping(blob, 1 << 16) if skippable else Plain()
    counted = []
    reader = CountingReader(source, counted.append)
    assert [(m.name, m.size) for m in walk(reader)] == [("a", 3 * 2**20), ("b", 10)]
    assert sum(counted) <= len(blob) and sum(counted) >= 3 * 2**20 + 10


def test_union_lookup_follows_a_hard_link_inside_its_layer():
    bottom = layer(Entry("etc", kind="dir"), PASSWD_OLD)
    linked = layer(Entry("etc", kind="dir"), Entry("etc/passwd-", b"linked\n"),
                   Entry("etc/passwd", kind="hardlink", target="etc/passwd-"))
    assert find_file("/etc/passwd", openers(linked, bottom)) == b"linked\n"
