"""In-place writes as a user's files see them: through symlinks, mode and owner kept, backups never lost."""

from __future__ import annotations

import os

import pytest
from dockerfile_corpus import SPARK

from kata_imagefix.fileio import TEMP_SUFFIX, write_atomic

NAMED = "FROM debian:12\nRUN groupadd -g 185 spark && useradd -u 185 -g 185 spark\nUSER spark\n"


def test_patch_in_place_through_a_symlink_edits_the_target_and_keeps_the_link(cli, tmp_path):
    real = tmp_path / "build" / "Dockerfile.real"
    real.parent.mkdir()
    real.write_text(NAMED)
    real.chmod(0o640)
    link = tmp_path / "Dockerfile"
    link.symlink_to(os.path.relpath(real, tmp_path))
    result = cli("patch", str(link), "--in-place")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(real, tmp_path)
    assert "USER 185:185" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_in_place_keeps_owner_and_group(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(NAMED)
    os.chown(path, 65534, 65534)
    assert cli("patch", str(path), "--in-place").exit_code == 0
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (65534, 65534) and "USER 185:185" in path.read_text()


def test_backup_never_overwrites_an_earlier_one_and_never_writes_through_a_link(tmp_path):
    path = tmp_path / "configuration.toml"
    path.write_text("one\n")
    precious = tmp_path / "precious"
    precious.write_text("do not touch\n")
    (tmp_path / "configuration.toml.bak").symlink_to(precious)
    first = write_atomic(path, b"two\n", backup=True)
    second = write_atomic(path, b"three\n", backup=True)
    assert precious.read_text() == "do not touch\n"
    assert (first.name, second.name) == ("configuration.toml.bak.1", "configuration.toml.bak.2")
    assert first.read_text() == "one\n" and second.read_text() == "two\n"
    assert path.read_text() == "three\n"


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(SPARK)
    stale = tmp_path / f".Dockerfile.999999999.abc{TEMP_SUFFIX}"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".Dockerfile.{os.getpid()}.def{TEMP_SUFFIX}"
    live.write_bytes(b"y")
    write_atomic(path, b"new\n")
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["Dockerfile", live.name])


def test_patch_summary_keeps_the_new_value_for_variables_and_quotes(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text('FROM debian:12\nARG user=app\nRUN useradd -u 1000 -g 1000 app\nUSER "${user}"\n')
    result = cli("patch", str(path), "--in-place")
    assert result.exit_code == 0
    assert '-> 1000:1000 (line 4)' in result.stdout, result.stdout


def test_patch_from_stdin_names_file_and_line_when_the_base_cannot_be_read(cli):
    result = cli("patch", "-", "--resolve-base",
                 input="FROM docker-archive:/nonexistent/base.tar\nUSER app\n")
    assert result.exit_code == 2
    assert "<stdin>:1: base image:" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_and_hard_linked_files_are_refused_unless_forced(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(NAMED)
    path.chmod(0o444)
    refused = cli("patch", path, "--in-place")
    assert refused.exit_code == 2 and "read-only" in refused.stderr and path.read_text() == NAMED
    assert cli("patch", path, "--in-place", "--force").exit_code == 0 and "185:185" in path.read_text()
    linked = tmp_path / "Dockerfile.linked"
    linked.write_text(NAMED)
    os.link(linked, tmp_path / "other-name")
    refused = cli("patch", linked, "--in-place")
    assert refused.exit_code == 2 and "hard link" in refused.stderr
    assert (tmp_path / "other-name").read_text() == NAMED
