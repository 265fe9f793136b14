"""Bad input: exit 2, one clear line on stderr, no traceback."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
from conftest import SAMPLES
from make_samples import write_docker_archive, write_oci_layout
from test_scan_archives import image


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("imagefix: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("ref", "needle"), [
    ("s3://bucket/image", "unknown transport 's3'"),
    ("containers-storage:a/b:c/d", "unknown transport 'containers-storage'"),
    ("Spark:3.5.3", "must be lowercase"),
    ("spark:3.5.3\nUSER 0", "white space"),
    ("spark::1", "not a valid Docker reference"),
    ("docker-archive:", "nothing after"),
])
def test_bad_references(cli, ref, needle):
    assert_one_line_error(cli("scan", ref), needle)


def test_daemon_not_running(cli, no_engine_env):
    result = cli("scan", "docker-daemon:spark:3.5.3", env=no_engine_env)
    assert_one_line_error(result, "cannot reach the Docker engine", "is dockerd running?")


@pytest.mark.engine
def test_missing_image(cli, engine):
    for ref in ("docker-daemon:imagefix-test/absent:nope", "imagefix-test/absent:nope"):
        assert_one_line_error(cli("scan", ref), "not in the local Docker engine")


def test_missing_archive(cli, tmp_path):
    assert_one_line_error(cli("scan", f"docker-archive:{tmp_path}/none.tar"), "no such file")


def test_non_tar_archive(cli, tmp_path):
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"PK\x03\x04 this is a zip, not a tar" * 100)
    assert_one_line_error(cli("scan", f"docker-archive:{bogus}"), "not a tar archive")


def test_truncated_archive(cli, tmp_path):
    whole = tmp_path / "whole.tar"
    write_docker_archive(whole, {"x/y:1": image("spark", big=300_000)})
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_one_line_error(cli("scan", f"docker-archive:{cut}"), "truncated")


def test_archive_without_manifest(cli, tmp_path):
    archive = tmp_path / "nomanifest.tar"
    with tarfile.open(archive, "w") as tar:
        (tmp_path / "file.txt").write_text("hello")
        tar.add(tmp_path / "file.txt", arcname="file.txt")
    assert_one_line_error(cli("scan", f"docker-archive:{archive}"), "no manifest.json")


def test_archive_with_two_images_needs_a_name(cli, tmp_path):
    archive = tmp_path / "two.tar"
    write_docker_archive(archive, {"a/b:1": image("spark"), "a/c:2": image("185:185")})
    assert_one_line_error(cli("scan", f"docker-archive:{archive}"), "holds 2 images")
    assert_one_line_error(cli("scan", f"docker-archive:{archive}:a/d:3"), "no image a/d:3", "a/b:1")
    assert cli("scan", f"docker-archive:{archive}:a/c:2").exit_code == 0
    assert cli("scan", f"docker-archive:{archive}:@0").exit_code == 1


def test_oci_layout_with_a_missing_blob(cli, tmp_path):
    layout = tmp_path / "layout"
    descriptor = write_oci_layout(layout, {"t": image("spark")})["t"]
    manifest = json.loads((layout / "blobs/sha256" / descriptor["digest"].split(":")[1]).read_bytes())
    (layout / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]).unlink()
    assert_one_line_error(cli("scan", f"oci:{layout}:t"), "layer 0 blob", "is missing")


def test_oci_layout_with_a_tampered_manifest(cli, tmp_path):
    layout = tmp_path / "layout"
    descriptor = write_oci_layout(layout, {"t": image("spark")})["t"]
    path = layout / "blobs/sha256" / descriptor["digest"].split(":")[1]
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    assert_one_line_error(cli("scan", f"oci:{layout}:t"), "does not match its digest")


def test_oci_layout_problems(cli, tmp_path):
    assert_one_line_error(cli("scan", f"oci:{tmp_path}/nothing"), "no such directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("scan", f"oci:{tmp_path}/empty"), "no oci-layout file")
    shutil.copytree(SAMPLES / "spark", tmp_path / "spark")
    assert_one_line_error(cli("scan", f"oci:{tmp_path}/spark:9.9"), "no image tagged '9.9'", "3.5.3")


def test_corrupt_layer_blob(cli, tmp_path):
    layout = tmp_path / "layout"
    descriptor = write_oci_layout(layout, {"t": image("spark", big=500_000)})["t"]
    manifest = json.loads((layout / "blobs/sha256" / descriptor["digest"].split(":")[1]).read_bytes())
    blob = layout / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]
    data = blob.read_bytes()
    blob.write_bytes(data[:20] + bytes(b ^ 0xFF for b in data[20:60]) + data[60:])
    assert_one_line_error(cli("scan", f"oci:{layout}:t"), "layer 1 blob", "does not match its digest")


@pytest.mark.parametrize(("content", "needle"), [
    ("profile = [", "is not valid TOML"),
    ("colour = 'red'", "unknown key(s) colour"),
    ("fail-on = 'sometimes'", "bad.toml: fail-on: 'sometimes' is not one of 'error'"),
    ("max-layer-size = 'huge'", "cannot read size 'huge'"),
    ("files = 'many'", "bad.toml: files: 'many' is not a valid integer"),
])
def test_bad_config_files(cli, tmp_path, content, needle):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    assert_one_line_error(cli("--config", config, "scan", f"oci:{SAMPLES / 'spark'}:3.5.3"), needle)


def test_every_long_flag_can_live_in_the_config_and_flags_win(cli, tmp_path):
    spark = f"oci:{SAMPLES / 'spark'}:3.5.3"
    config = tmp_path / ".imagefix.toml"
    config.write_text('budget = "10MB"\nfiles = 2\nformat = "markdown"\n')
    gated = cli("--config", config, "report", spark)
    assert gated.exit_code == 1 and "budget" in gated.stdout and "Largest files" in gated.stdout
    assert cli("--config", config, "report", spark, "--budget", "1GB", "--format", "text").exit_code == 0
    scanned = cli("--config", config, "scan", spark)  # markdown is a scan format too; budget is not its flag
    assert scanned.exit_code == 1 and scanned.stdout.startswith("**imagefix**")
    config.write_text('budget = "huge"\n')
    assert_one_line_error(cli("--config", config, "report", spark), "cannot read size 'huge'")
    config.write_text('format = "sarif"\n')  # scan takes it, report does not: scan uses it, report its own
    assert cli("--config", config, "scan", spark).stdout.startswith("{")
    assert cli("--config", config, "report", spark).stdout.startswith(spark)
    config.write_text('format = "xml"\n')  # no command takes it (k8s pod takes yaml)
    assert_one_line_error(cli("--config", config, "rules"), "format: 'xml' is not one of")
    assert cli("--config", config, "scan", "--help").exit_code == 0  # help reads no config


def test_unreadable_config_files(cli, tmp_path):
    missing = cli("--config", tmp_path / "none.toml", "scan", "x")
    assert_one_line_error(missing, "cannot read config", "no such file")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    assert_one_line_error(cli("--config", binary, "scan", "x"), "not valid TOML")


def test_bad_flag_values(cli):
    sample = f"oci:{SAMPLES / 'spark'}:3.5.3"
    assert_one_line_error(cli("scan", "--max-layer-size", "lots", sample), "cannot read size")
    assert_one_line_error(cli("scan", "--pull-rate", "0", sample), "must be positive")
    assert_one_line_error(cli("scan"), "no image given")
    assert cli("scan", "--format", "yaml", sample).exit_code == 2



@pytest.mark.parametrize(("args", "needle"), [
    (("report", "nosuch/app:2", "--baseline", "nosuch/app:1", "--max-growth", "10x%"),
     "--max-growth: cannot read growth '10x%'"),
    (("report", "nosuch/app:2", "--baseline", "nosuch/app:1", "--max-growth", "nan%"), "--max-growth"),
    (("report", "nosuch/app:2", "--budget", "huge"), "--budget: cannot read size 'huge'"),
    (("report", "nosuch/app:2", "--max-layer-size", "1ZB"), "--max-layer-size: cannot read size"),
    (("scan", "nosuch/app:2", "--max-layer-size", "lots"), "--max-layer-size: cannot read size"),
    (("scan", "nosuch/app:2", "--create-timeout", "-5"), "--create-timeout: must be positive"),
    (("report", "nosuch/app:2", "--tmpfs-fraction", "1.5"),
     "--tmpfs-fraction: must be positive and at most 1"),
    (("report", "nosuch/app:2", "--pull-overhead", "soon"), "--pull-overhead: takes a number"),
    (("kata", "patch", "nosuch.toml", "--create-container-timeout", "soon"),
     "--create-container-timeout: takes 'auto' or a positive whole number"),
])
def test_gates_and_sizes_are_refused_before_any_work(cli, no_engine_env, args, needle):
    """#24: `--max-growth 10x%` was refused only after the whole report was built. Every gate, size and
    duration is now read while the command line is parsed: the image does not exist and no engine
    answers, yet the bad value is what is named, at once."""
    import time

    started = time.monotonic()
    result = cli(*args, env=no_engine_env)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, needle)
    assert "engine" not in result.stderr and "nosuch" not in result.stderr
    assert elapsed < 0.5, elapsed


def test_a_bad_gate_in_the_config_names_its_key(cli, tmp_path, no_engine_env):
    config = tmp_path / ".imagefix.toml"
    config.write_text('max-growth = "lots%"\n')
    assert_one_line_error(cli("--config", config, "report", "nosuch/app:2", env=no_engine_env),
                          "max-growth: cannot read growth 'lots%'")

def test_version_asks_the_engine_docker_host_names(cli):
    line = cli("--version", env={"DOCKER_HOST": "tcp://127.0.0.1:9"}).stdout.splitlines()[-1]
    assert line == "Docker engine: none answers at tcp://127.0.0.1:9"


def test_help_names_only_the_flags_a_command_has():
    from click.testing import CliRunner

    from kata_imagefix.cli import main

    def help_of(*command: str) -> str:
        return " ".join(CliRunner().invoke(main, [*command, "--help"]).stdout.split())

    assert "With --all-platforms, consider at most N" in help_of("scan")
    assert "With --in-registry, consider at most N" in help_of("fix")
    for command in (("report",), ("k8s", "check"), ("k8s", "fix")):
        assert "--all-platforms" not in help_of(*command) and "--max-platforms" not in help_of(*command)
    assert "docker://REGISTRY/REPO[:TAG|@DIGEST] (the registry, without pulling)" in help_of("scan")
    assert "must be in the local engine" in help_of("fix")


def test_an_unreachable_engine_is_named_in_words_not_in_reprs(cli):
    result = cli("scan", "docker-daemon:busybox:1", env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert_one_line_error(result, "cannot reach the Docker engine at tcp://127.0.0.1:9",
                          "(Connection refused)")
    assert "HTTPConnection" not in result.stderr and "Errno" not in result.stderr


def test_in_registry_errors_name_the_image(cli, no_engine_env):
    result = cli("fix", "127.0.0.1:9/team/app:1", "--in-registry", "--registry-timeout", "2",
                 env=no_engine_env)
    assert_one_line_error(result, "imagefix: error: 127.0.0.1:9/team/app:1: ")


def test_report_and_fix_json_carry_the_schema_version(cli, tmp_path):
    spark = f"oci:{SAMPLES / 'spark'}:3.5.3"
    report = cli("report", spark, "--format", "json").json()
    assert report["schema_version"] == 1 and report["tool"]["name"] == "imagefix"
    fixed = cli("fix", spark, "--no-build", "-o", tmp_path / "out", "--format", "json").json()
    assert fixed["schema_version"] == 1 and fixed["written"].endswith("Dockerfile")
