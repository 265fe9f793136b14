"""Kata TOML and Kubernetes manifests with the wrong types: one line naming the file, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES

GO_TDX = Path(__file__).resolve().parent.parent / "data" / "kata-4.1.0" / "go" / "configuration-qemu-tdx.toml"
SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"


@pytest.mark.parametrize("value", ['"abc"', "1e400", "-5", "true", "[1]", "60.5"])
def test_a_timeout_of_the_wrong_type_is_a_load_error(cli, tmp_path, value):
    path = tmp_path / "configuration-qemu-tdx.toml"
    text = GO_TDX.read_text().replace("create_container_timeout = 60", f"create_container_timeout = {value}")
    path.write_text(text)
    result = cli("kata", "check", "--format", "json", path)
    assert result.exit_code == 1, result.stderr
    finding = result.json()["files"][0]["findings"][0]
    assert finding["rule"] == "KIF302" and "whole number of seconds" in finding["message"]
    patched = cli("kata", "patch", path, "--in-place")
    assert patched.exit_code == 2 and "internal error" not in patched.stderr


def test_deeply_nested_inline_tables_are_refused(cli, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n")
    result = cli("kata", "check", path)
    assert result.exit_code in (1, 2) and "internal error" not in result.stderr + result.stdout


@pytest.mark.parametrize("manifest", [
    "apiVersion: v1\nkind: Pod\nmetadata: x\nspec:\n  containers:\n  - name: a\n    image: spark:3.5.3\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: 5\n",
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations: [x]\nspec:\n  containers:\n"
    "  - name: a\n    image: spark:3.5.3\n",
    "apiVersion: v1\nkind: [Pod]\n",
    "- just\n- a list\n",
])
def test_kubernetes_documents_of_the_wrong_shape(cli, tmp_path, manifest):
    path = tmp_path / "m.yaml"
    path.write_text(manifest)
    out = tmp_path / "out.yaml"
    for extra in ((), ("--kustomize",)):
        result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", path, "-o", out, *extra)
        assert result.exit_code == 2 and "internal error" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(("template", "needle"), [
    ("FROM {{ base_ref }}\n{{ 1/0 }}\n", "user.Dockerfile.j2 line 2: division by zero"),
    ("FROM {{ base_ref }}\n{% include 'missing.j2' %}\n", "template missing.j2 not found (included from"),
    ("FROM {{ base_ref }}\nUSER {{ no_such_value }}\n", "'no_such_value' is undefined"),
])
def test_user_templates_that_fail_while_rendering_are_one_line(cli, tmp_path, template, needle):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "user.Dockerfile.j2").write_text(template)
    result = cli("fix", SPARK, "--no-build", "-o", tmp_path / "out", "--template-dir", folder)
    assert result.exit_code == 2 and needle in result.stderr, result.stderr
    assert "internal error" not in result.stderr and not (tmp_path / "out").exists()


def test_a_second_hypervisor_table_in_the_main_file_is_a_finding(cli, tmp_path):
    """kata check said ok (KIF305 looked only at drop-ins) while kata patch refused to write the file:
    the Go runtime takes one of the two tables in random order either way."""
    path = tmp_path / GO_TDX.name
    path.write_text(GO_TDX.read_text() + "[hypervisor.extra]\ndefault_memory = 1\n")
    result = cli("kata", "check", "--format", "json", path)
    assert result.exit_code == 1, result.stdout + result.stderr
    found = [f for f in result.json()["files"][0]["findings"] if f["rule"] == "KIF305"]
    assert len(found) == 1 and "[hypervisor.extra]" in found[0]["message"]
    assert found[0]["line"] == len(GO_TDX.read_text().splitlines()) + 1
