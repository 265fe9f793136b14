"""Patched Dockerfiles built for real: the config user is numeric and `id` inside agrees."""

from __future__ import annotations

import pytest
from conftest import base_image

pytestmark = pytest.mark.engine


def run_id(engine, tag: str) -> str:
    container = engine.create_container(tag, command=["sh", "-c", "id -u; id -g"], network_disabled=True,
                                        host_config=engine.create_host_config(network_mode="none"))
    try:
        engine.start(container)
        assert engine.wait(container, timeout=60)["StatusCode"] == 0
        return engine.logs(container).decode()
    finally:
        engine.remove_container(container, force=True)


@pytest.mark.parametrize(("dockerfile", "numeric"), [
    ("FROM {base}\nRUN echo 'web:x:1500:1500::/:/bin/sh' >> /etc/passwd && \\\n"
     "    echo 'web:x:1500:' >> /etc/group\nUSER web\n", "1500:1500"),
    ("FROM {base}\nARG APP_UID=2100\nRUN echo \"svc:x:${{APP_UID}}:${{APP_UID}}::/:/bin/sh\" >> /etc/passwd\n"
     "user svc\n", "2100:2100"),
    ("FROM {base} AS build\nRUN true\n\nFROM {base}\n# runs as spark\nUSER 185\n", "185:185"),
])
def test_patched_dockerfiles_build_and_run_with_the_numeric_user(cli, engine, images, tmp_path,
                                                                  dockerfile, numeric):
    source = tmp_path / "Dockerfile"
    source.write_text(dockerfile.format(base=base_image()))
    original = images.build(source.read_text(), name="orig")
    patched_path = tmp_path / "Dockerfile.kata"
    assert cli("patch", source, "--resolve-base", "-o", patched_path).exit_code == 0
    patched = images.build(patched_path.read_text(), name="patched")
    assert engine.inspect_image(patched)["Config"]["User"] == numeric
    uid, gid = numeric.split(":")
    assert run_id(engine, patched).split() == [uid, gid]
    assert run_id(engine, original).split()[0] == uid  # the same user the author meant
    assert cli("scan", patched).exit_code == 0
    assert cli("scan", "--fail-on", "warning", original).exit_code == 1


def test_resolve_base_finds_and_fixes_an_inherited_named_user(cli, engine, images, tmp_path):
    parent = images.build(f"FROM {base_image()}\nUSER spark\n", name="parent")
    child = tmp_path / "Dockerfile"
    child.write_text(f"FROM {parent}\nRUN echo built > /tmp/marker\n")
    assert cli("lint", child).exit_code == 0  # without --resolve-base the base is not checked
    assert "--resolve-base" in cli("lint", child).stdout
    doc = cli("lint", "--resolve-base", "--format", "json", child).json()
    finding = doc["files"][0]["findings"][0]
    assert (finding["rule"], finding["line"]) == ("KIF101", 1)
    assert "base image" in finding["message"] and finding["fix"].startswith("USER 185:185")
    out = tmp_path / "Dockerfile.kata"
    assert cli("patch", child, "--resolve-base", "-o", out).exit_code == 0
    assert out.read_text().endswith("USER 185:185\n")
    fixed = images.build(out.read_text(), name="child")
    assert run_id(engine, fixed).split() == ["185", "185"]


def test_resolve_base_reads_ids_the_dockerfile_does_not_give(cli, images, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM {base_image()}\nUSER app\n")
    assert "KIF104" in cli("lint", path).stdout
    doc = cli("lint", "--resolve-base", "--format", "json", path).json()
    assert [f["rule"] for f in doc["files"][0]["findings"]] == ["KIF101"]
    assert doc["files"][0]["findings"][0]["fix"].startswith("USER 10001:10001")


def test_resolve_base_missing_image_is_a_clear_error(cli, engine, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM imagefix-test/absent:nope\nRUN true\n")
    result = cli("lint", "--resolve-base", path)
    assert result.exit_code == 2
    assert f"{path}:1: base image" in result.stderr and "not in the local Docker engine" in result.stderr


def test_user_from_the_base_images_env_is_unknown_until_the_base_is_read(cli, engine, images, tmp_path):
    # Jupyter style: the base sets ENV NB_UID and creates the user, the child says USER ${NB_UID}
    parent = images.build(f"FROM {base_image()}\nENV NB_UID=1000\n"
                          "RUN echo 'jovyan:x:1000:100::/home/jovyan:/bin/sh' >> /etc/passwd\n", name="nb")
    child = tmp_path / "Dockerfile"
    child.write_text(f"FROM {parent}\nUSER root\nRUN true\nUSER ${{NB_UID}}\n")
    plain = cli("lint", "--format", "json", child).json()["files"][0]
    assert [(f["rule"], f["line"]) for f in plain["findings"]] == [("KIF106", 4)]
    assert "base image's ENV decides" in plain["findings"][0]["message"]
    assert "--build-arg" not in plain["findings"][0]["message"]  # no ARG NB_UID: a build-arg does nothing
    assert "no USER" not in cli("lint", child).stdout
    resolved = cli("lint", "--resolve-base", "--format", "json", child).json()["files"][0]
    finding = resolved["findings"][0]
    assert finding["rule"] == "KIF102" and finding["severity"] == "warning"
    assert finding["fix"].startswith("USER 1000:100")
    out = tmp_path / "Dockerfile.kata"
    assert cli("patch", child, "--resolve-base", "-o", out).exit_code == 0
    assert out.read_text().endswith("USER 1000:100\n")
    assert run_id(engine, images.build(out.read_text(), name="nbfixed")).split() == ["1000", "100"]


def test_quoted_from_is_unquoted_as_buildkit_does(cli, engine, images, tmp_path):
    name, tag = base_image().rsplit(":", 1)
    path = tmp_path / "Dockerfile"
    path.write_text(f'ARG TAG={tag}\nFROM {name}:"${{TAG}}"\nUSER app\n')
    doc = cli("lint", "--resolve-base", "--format", "json", path).json()
    assert [f["rule"] for f in doc["files"][0]["findings"]] == ["KIF101"]
    assert doc["files"][0]["findings"][0]["fix"].startswith("USER 10001:10001")


def test_user_without_an_argument_is_an_input_error_on_its_line(cli, tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian:12\nRUN true\nUSER\n")
    result = cli("lint", path)
    assert result.exit_code == 2 and f"{path}:3: USER needs an argument" in result.stderr
