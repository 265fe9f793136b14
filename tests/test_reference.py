import pytest

from kata_imagefix.errors import ImagefixError
from kata_imagefix.image.reference import parse_docker_reference, parse_image_ref, split_path_and_suffix


@pytest.mark.parametrize(("text", "repository", "tag", "digest", "familiar"), [
    ("spark:3.5.3", "docker.io/library/spark", "3.5.3", None, "spark:3.5.3"),
    ("spark", "docker.io/library/spark", "latest", None, "spark:latest"),
    ("apache/spark:3.5.3", "docker.io/apache/spark", "3.5.3", None, "apache/spark:3.5.3"),
    ("localhost:5000/app", "localhost:5000/app", "latest", None, "localhost:5000/app:latest"),
    ("localhost/app:1", "localhost/app", "1", None, "localhost/app:1"),
    ("ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io/org/team/app", "v1.2-rc_3", None,
     "ghcr.io/org/team/app:v1.2-rc_3"),
    ("127.0.0.1:5000/a__b/c-d.e:t", "127.0.0.1:5000/a__b/c-d.e", "t", None,
     "127.0.0.1:5000/a__b/c-d.e:t"),
    ("mysql@sha256:" + "a" * 64, "docker.io/library/mysql", None, "sha256:" + "a" * 64,
     "mysql@sha256:" + "a" * 64),
    ("mysql:8.4@sha256:" + "b" * 64, "docker.io/library/mysql", "8.4", "sha256:" + "b" * 64,
     "mysql:8.4@sha256:" + "b" * 64),
])
def test_valid_references_normalise_like_docker(text, repository, tag, digest, familiar):
    ref = parse_docker_reference(text)
    assert (ref.repository, ref.tag, ref.digest, ref.familiar) == (repository, tag, digest, familiar)


@pytest.mark.parametrize("text", [
    "", "Spark:1", "spark:", "spark::1", "spark:-bad", "spark@sha256:short", "a b", "spark:3.5.3\nUSER 0",
    "/spark", "spark/", "spark//x", "-spark", "spark:" + "t" * 129, "a" * 256,
])
def test_invalid_references_are_refused(text):
    with pytest.raises(ImagefixError, match="invalid reference"):
        parse_docker_reference(text)


@pytest.mark.parametrize(("text", "transport", "target"), [
    ("spark:3.5.3", "", "spark:3.5.3"),
    ("localhost:5000/app:1", "", "localhost:5000/app:1"),
    ("docker://spark:3.5.3", "docker", "spark:3.5.3"),
    ("docker-daemon:spark:3.5.3", "docker-daemon", "spark:3.5.3"),
    ("docker-archive:/tmp/x.tar:spark:3.5.3", "docker-archive", "/tmp/x.tar:spark:3.5.3"),
    ("oci:samples/spark:3.5.3", "oci", "samples/spark:3.5.3"),
    ("oci:dir", "oci", "dir"),
    ("oci-archive:/tmp/x.tar", "oci-archive", "/tmp/x.tar"),
])
def test_transports_are_split_as_skopeo_spells_them(text, transport, target):
    ref = parse_image_ref(text)
    assert (ref.transport, ref.target, ref.original) == (transport, target, text)


@pytest.mark.parametrize("text", ["s3://bucket/x", "containers-storage:x/y:z/w", "dir:/tmp/a/b", "ftp:/x/y"])
def test_unknown_transport_is_named(text):
    with pytest.raises(ImagefixError, match="unknown transport"):
        parse_image_ref(text)


def test_daemon_transport_validates_its_reference():
    with pytest.raises(ImagefixError, match="invalid reference"):
        parse_image_ref("docker-daemon:Not/Valid")


def test_path_suffix_split_prefers_existing_paths(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"")
    assert split_path_and_suffix(f"{archive}:spark:3.5.3", parts=2) == (str(archive), "spark:3.5.3")
    assert split_path_and_suffix(str(archive), parts=2) == (str(archive), None)
    layout = tmp_path / "lay:out"
    layout.mkdir()
    assert split_path_and_suffix(f"{layout}:v1", parts=1) == (str(layout), "v1")
    assert split_path_and_suffix(str(layout), parts=1) == (str(layout), None)
