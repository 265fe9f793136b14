"""Real images built by the real engine, scanned from the daemon, docker-archive and OCI layout."""

from __future__ import annotations

import pytest
from conftest import base_image, skopeo_to_oci

from kata_imagefix.image.sources import open_image
from kata_imagefix.image.sources.daemon import open_daemon_image

pytestmark = pytest.mark.engine

DOCKERFILES = {
    "named": "FROM {base}\nUSER spark\n",
    "numeric": "FROM {base}\nUSER 185\n",
    "numeric-group": "FROM {base}\nUSER 185:185\n",
    "root": "FROM {base}\nRUN touch /marker\n",
    "ghost": "FROM {base}\nUSER ghost\n",
    "big": "FROM {base}\nRUN dd if=/dev/zero of=/big.bin bs=1000000 count=150\nUSER 0:0\n",
    # /etc/passwd deleted in one layer and written again, with other ids, in a later one
    "readd": ("FROM {base}\nRUN rm /etc/passwd\nRUN touch /between\n"
              "RUN echo 'spark:x:1850:1851::/:/bin/sh' > /etc/passwd\nUSER spark\n"),
}

EXPECTED = {
    "named": [("KIF101", "error", "USER 185:185"), ("KIF107", "info", None)],  # KIF107: the pod's side
    "numeric": [("KIF102", "warning", "USER 185:185"), ("KIF107", "info", None)],
    "numeric-group": [("KIF107", "info", None)],
    "root": [("KIF103", "info", None)],
    "ghost": [("KIF101", "error", None), ("KIF104", "error", None)],
    "big": [("KIF201", "warning", None), ("KIF103", "info", None)],
    "readd": [("KIF101", "error", "USER 1850:1851"), ("KIF107", "info", None)],
}


@pytest.fixture(scope="module")
def built(module_images, tmp_path_factory):
    """Every test image once per module: tag, docker-archive path and OCI layout reference."""
    work = tmp_path_factory.mktemp("engine-images")
    out = {}
    for name, dockerfile in DOCKERFILES.items():
        tag = module_images.build(dockerfile.format(base=base_image()), name=name)
        archive = module_images.save(tag, work / f"{name}.tar")
        layout = work / f"{name}-oci"
        skopeo_to_oci(archive, layout, "t")
        out[name] = {"tag": tag, "archive": archive, "oci": f"oci:{layout}:t"}
    return out


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_findings_are_the_same_from_every_source(cli, built, name):
    item = built[name]
    refs = [f"docker-daemon:{item['tag']}", item["tag"], f"docker-archive:{item['archive']}", item["oci"]]
    result = cli("scan", "--format", "json", *refs)
    assert result.exit_code in (0, 1), result.stderr
    docs = result.json()["images"]
    assert len(docs) == 4
    for doc in docs:
        found = sorted((f["rule"], f["severity"]) for f in doc["findings"])
        assert found == sorted((rule, sev) for rule, sev, _ in EXPECTED[name]), doc["reference"]
        for rule, _, fix in EXPECTED[name]:
            if fix:
                got = next(f["fix"] for f in doc["findings"] if f["rule"] == rule)
                assert got.startswith(fix), (doc["reference"], got)
    sizes = {doc["reference"]: [layer["unpacked_bytes"] for layer in doc["layers"]] for doc in docs}
    assert len({tuple(v) for v in sizes.values()}) == 1, sizes


def test_big_layer_size_is_exact_from_the_engine(cli, built):
    doc = cli("scan", "--format", "json", built["big"]["tag"]).json()["images"][0]
    assert doc["layers"][-1]["unpacked_bytes"] == 150_000_000
    assert "dd if=/dev/zero" in doc["layers"][-1]["created_by"]
    assert doc["findings"][0]["layer"] == len(doc["layers"]) - 1


def test_daemon_scan_reads_passwd_without_export_both_ways(engine, built):
    """overlay2 directories when readable; otherwise a created, never started container."""
    tag = built["readd"]["tag"]
    via_overlay = open_daemon_image(tag, tag)
    via_container = open_daemon_image(tag, tag, force_container_read=True)
    assert via_overlay.read_file("/etc/passwd") == via_container.read_file("/etc/passwd") \
        == b"spark:x:1850:1851::/:/bin/sh\n"
    assert via_container.read_file("/etc/nonexistent") is None
    leftovers = engine.containers(all=True, filters={"label": "io.imagefix.purpose=read-file"})
    assert leftovers == []


def test_daemon_image_reports_identity(built):
    image = open_image(f"docker-daemon:{built['named']['tag']}")
    assert image.image_id.startswith("sha256:")
    assert image.platform.startswith("linux/")
    assert image.user == "spark"


def test_kif101_fix_actually_works_on_the_engine(engine, images, cli):
    """The numeric fix imagefix prints, applied and run, gives the same uid/gid."""
    tag = images.build(f"FROM {base_image()}\nUSER spark\n", name="fixme")
    fix = cli("scan", "--format", "json", tag).json()["images"][0]["findings"][0]["fix"]
    numeric = fix.split()[1]
    fixed = images.build(f"FROM {tag}\nUSER {numeric}\n", name="fixed")
    container = engine.create_container(fixed, command=["id"], network_disabled=True,
                                        host_config=engine.create_host_config(network_mode="none"))
    try:
        engine.start(container)
        engine.wait(container, timeout=60)
        output = engine.logs(container).decode()
    finally:
        engine.remove_container(container, force=True)
    assert output.startswith("uid=185(spark) gid=185(spark)")
    # KIF107 only: on Kubernetes the pod must still write the ids (the kubelet drops the group)
    assert [f["rule"] for f in cli("scan", "--format", "json", fixed).json()["images"][0]["findings"]] == [
        "KIF107"]


def test_export_readers_agree_with_each_other_and_the_layer_folders(engine, built):
    """The connection-level reader and urllib3's own give the same entries as walking overlay2 folders."""
    from kata_imagefix.image.layerwalk import entries_from_save
    from kata_imagefix.image.sources.daemon import body_reader

    image = open_daemon_image(built["readd"]["tag"], built["readd"]["tag"])
    diff_ids = image.config["rootfs"]["diff_ids"]
    results = []
    for fast in (True, False):
        response = engine._get(engine._url("/images/{0}/get", image.image_id), stream=True)
        try:
            engine._raise_for_status(response)
            reader = body_reader(response) if fast else response.raw
            assert type(reader).__name__ == ("HttpBody" if fast else "HTTPResponse")
            results.append(entries_from_save(reader, diff_ids))
        finally:
            response.close()
    assert results[0] == results[1]
    direct, how = image.layer_entries("direct")
    assert how == "direct"

    def comparable(layers):  # a symlink is "l" from a folder and a sized "f" from a tar: docker counts both
        return [sorted((path, size, "f" if kind == "l" else kind)
                       for path, size, kind in layer if kind != "d") for layer in layers]

    assert comparable(results[0]) == comparable(direct)
    assert ("etc/passwd", 0, "w") in comparable(direct)[1]  # `RUN rm /etc/passwd`: a whiteout both ways


def test_a_broken_export_stream_is_one_clear_error(engine, monkeypatch):
    """A fault the engine will not make on request (a stream that stops mid-chunk), so it is faked here."""
    import contextlib
    import io

    from kata_imagefix.errors import ImagefixError
    from kata_imagefix.image.sources import daemon
    from kata_imagefix.image.sources.httpbody import HttpBody

    @contextlib.contextmanager
    def cut_short(api, image_id):
        yield HttpBody(io.BufferedReader(io.BytesIO(b"400\r\n" + b"\0" * 100)), chunked=True)

    image = open_daemon_image(base_image(), base_image())
    monkeypatch.setattr(daemon, "export_stream", cut_short)
    with pytest.raises(ImagefixError, match=r"export could not be read .*ended early"):
        image.layer_entries("export")


def test_a_symlinked_passwd_is_followed_inside_the_image_by_both_daemon_paths(cli, engine, images):
    tag = images.build(f"FROM {base_image()}\nRUN mkdir -p /usr/share && mv /etc/passwd /usr/share/passwd && "
                       "ln -s ../usr/share/passwd /etc/passwd\nUSER spark\n", name="linked")
    finding = cli("scan", "--format", "json", tag).json()["images"][0]["findings"][0]
    assert finding["rule"] == "KIF101" and finding["fix"].startswith("USER 185:185")
    via_container = open_daemon_image(tag, tag, force_container_read=True)
    assert b"spark:x:185:185" in via_container.read_file("/etc/passwd")
