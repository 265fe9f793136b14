"""Drop-ins that must not break a node: every mode and every printed command, loaded the way Kata does
(tests/kata_loader.py, independent of imagefix)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import SAMPLES
from kata_loader import Refused, load, timeout, value

DATA = Path(__file__).parent / "data" / "kata-4.1.0"
GO_TDX = DATA / "go" / "configuration-qemu-tdx.toml"
GO_GPU = DATA / "go" / "configuration-qemu-nvidia-gpu.toml"
GO_CLH = DATA / "go" / "configuration-clh.toml"
RS_TDX = DATA / "rs" / "configuration-qemu-tdx-runtime-rs.toml"
MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"


def check(cli, path, *args):
    result = cli("kata", "check", "--format", "json", path, *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()["files"][0]


def kata_deploy_node(tmp_path: Path, shipped: Path = GO_TDX, shim: str = "qemu-tdx") -> tuple[Path, Path]:
    """kata-deploy 4.1: runtimes/<shim>/configuration-<shim>.toml, a link at the old path, its drop-ins."""
    defaults = tmp_path / "opt/kata/share/defaults/kata-containers"
    per_shim = defaults / "runtimes" / shim
    (per_shim / "config.d").mkdir(parents=True)
    real = per_shim / f"configuration-{shim}.toml"
    shutil.copy(shipped, real)
    shipped_params = tomllib.loads(shipped.read_text())["hypervisor"]["qemu"]["kernel_params"]
    (per_shim / "config.d" / "30-kernel-params.toml").write_text(
        f'[hypervisor.qemu]\nkernel_params = "{shipped_params} agent.https_proxy=http://proxy:3128"\n')
    link = defaults / f"configuration-{shim}.toml"
    link.symlink_to(os.path.relpath(real, defaults))
    return link, real


def commands(doc) -> list[list[str]]:
    return [shlex.split(c) for f in doc["findings"]
            for c in re.findall(r"`imagefix (kata patch [^`]*)`", f["fix"] or "")]


def test_a_drop_in_over_the_recipes_broken_file_is_refused_not_reported_merged(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx.toml"
    path.write_text(GO_TDX.read_text() + "\n[factory]\ncreate_container_timeout = 120\n")
    (tmp_path / "config.d").mkdir()
    dropin = tmp_path / "config.d" / "90-imagefix.toml"
    result = cli("kata", "patch", path, "--drop-in", dropin)
    assert result.exit_code == 2 and "--in-place" in result.stderr and not dropin.exists()
    with pytest.raises(Refused):
        load(path, "go")
    repaired = cli("kata", "patch", path, "--in-place")
    assert repaired.exit_code == 0, repaired.stderr
    assert timeout(path) == 120 and (tmp_path / f"{path.name}.bak").exists()


def test_runtime_rs_fatal_key_in_the_main_file_cannot_be_hidden_by_a_drop_in(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx-runtime-rs.toml"
    path.write_text(RS_TDX.read_text().replace("[hypervisor.qemu.factory]\n",
                                               "[hypervisor.qemu.factory]\ncreate_container_timeout = 120\n"))
    (tmp_path / "config.d").mkdir()
    with pytest.raises(Refused):
        load(path, "rs")
    dropin = tmp_path / "config.d" / "90-imagefix.toml"
    result = cli("kata", "patch", path, "--drop-in", dropin)
    assert result.exit_code == 2 and "refuse" in result.stderr and not dropin.exists()
    for command in commands(check(cli, path)):
        assert cli(*command).exit_code == 0
    assert timeout(path, "rs") == 120 and check(cli, path)["findings"] == []


@pytest.mark.parametrize("table", ["hypervisor.qemu.factory", "agent.kata.mem_agent", "agent.kata"])
def test_go_drop_in_with_the_key_in_a_table_kata_refuses_is_repaired_whole(cli, tmp_path, table):
    path = tmp_path / "configuration-qemu-tdx.toml"
    shutil.copy(GO_TDX, path)
    (tmp_path / "config.d").mkdir()
    recipe = tmp_path / "config.d" / "50-recipe.toml"
    recipe.write_text(f"# the recipe, as a drop-in\n[{table}]\ncreate_container_timeout = 150\n")
    with pytest.raises(Refused):
        load(path, "go")
    doc = check(cli, path)
    assert [f["rule"] for f in doc["findings"]] == ["KIF301"] and "refuses" in doc["findings"][0]["message"]
    for command in commands(doc):
        result = cli(*command)
        assert result.exit_code == 0, result.stderr
    assert timeout(path) == 150  # loads, and the recipe's value is in force
    assert "# the recipe, as a drop-in" in recipe.read_text()
    assert check(cli, path)["findings"] == []


def test_a_fatal_key_in_another_drop_in_is_refused_not_patched_around(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    overrides = real.parent / "config.d" / "50-user-overrides.toml"  # kata-deploy's Helm values
    overrides.write_text("[agent.kata]\ncreate_container_timeout = 300\n")
    dropin = real.parent / "config.d" / "90-imagefix.toml"
    result = cli("kata", "patch", link, "--drop-in", dropin, "--create-container-timeout", "600")
    assert result.exit_code == 2 and "50-user-overrides.toml" in result.stderr and not dropin.exists()
    doc = check(cli, link)
    for command in commands(doc):
        assert cli(*command).exit_code == 0
    assert timeout(link) == 300 and check(cli, link)["findings"] == []


def shared_folder(tmp_path: Path, where: str) -> Path:
    """A config.d read by several configurations: /etc/kata-containers, the seed's CoCo folder, ..."""
    folder = tmp_path / where
    (folder / "config.d").mkdir(parents=True)
    for shipped in (GO_TDX, GO_GPU, GO_CLH):
        shutil.copy(shipped, folder / shipped.name)
    return folder


@pytest.mark.parametrize("where", ["etc/kata-containers", "opt/confidential-containers/share/defaults/"
                                                          "kata-containers"])
def test_a_shared_config_d_names_every_config_it_reaches_and_is_refused_unless_asked(cli, tmp_path, where):
    folder = shared_folder(tmp_path, where)
    tdx = folder / GO_TDX.name
    dropin = folder / "config.d" / "90-imagefix.toml"
    args = ("kata", "patch", tdx, "--drop-in", dropin, "--create-container-timeout", "120",
            "--default-memory", "3072")
    refused = cli(*args)
    assert refused.exit_code == 2 and not dropin.exists()
    assert "configuration-qemu-nvidia-gpu.toml: create_container_timeout 1200 s, default_memory 8192 MiB" \
        in refused.stderr and "-> create_container_timeout 120 s, default_memory 3072 MiB" in refused.stderr
    assert "configuration-clh.toml" in refused.stderr and "2 hypervisor tables (clh, qemu)" in refused.stderr
    asked = cli(*args, "--shared-drop-in")
    assert asked.exit_code == 0, asked.stderr
    assert "this config.d is shared" in asked.stdout
    assert timeout(tdx) == 120
    with pytest.raises(Refused):  # what the operator was warned about
        load(folder / GO_CLH.name, "go")
    assert "KIF305" in [f["rule"] for f in check(cli, folder / GO_CLH.name)["findings"]]


def test_kata_deploy_checks_never_advise_editing_the_managed_file(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    real.write_text(real.read_text().replace("\ncreate_container_timeout = 60\n", "\n"))
    for args in ((), ("--image", MYSQL)):
        doc = check(cli, link, *args)
        assert doc["findings"]
        assert all("--in-place" not in (f["fix"] or "") for f in doc["findings"]), doc["findings"]
        for command in commands(doc):
            result = cli(*command)
            assert result.exit_code == 0, (command, result.stderr)
    assert check(cli, link, "--image", MYSQL)["findings"] == []
    assert timeout(link) == 120


@pytest.mark.parametrize("mode", ["-o", "--in-place", "--drop-in"])
def test_past_the_guest_pull_limit_every_mode_sets_the_kernel_parameter_keeping_the_others(cli, tmp_path,
                                                                                         mode):
    link, real = kata_deploy_node(tmp_path, GO_GPU, "qemu-nvidia-gpu")
    before = value(link, "go", "hypervisor", "qemu", "kernel_params").split()
    out = {"-o": [str(tmp_path / "out.toml")], "--in-place": [],
           "--drop-in": [str(real.parent / "config.d" / "90-imagefix.toml")]}[mode]
    result = cli("kata", "patch", link, mode, *out, "--create-container-timeout", "3000")
    if mode != "--drop-in":  # the main file's kernel_params is replaced whole by kata-deploy's drop-in
        assert result.exit_code == 2 and "30-kernel-params.toml" in result.stderr
        return
    assert result.exit_code == 0, result.stderr
    params = value(link, "go", "hypervisor", "qemu", "kernel_params").split()
    assert params == [*before, "agent.image_pull_timeout=3000"]  # every parameter kata-deploy set stays
    assert timeout(link) == 3000 and check(cli, link)["findings"] == []


def test_without_kata_deploy_drop_ins_in_place_and_output_set_it_too(cli, tmp_path):
    path = tmp_path / GO_GPU.name
    shutil.copy(GO_GPU, path)
    before = value(path, "go", "hypervisor", "qemu", "kernel_params").split()
    out = tmp_path / "out" / GO_GPU.name
    out.parent.mkdir()
    assert cli("kata", "patch", path, "-o", out, "--create-container-timeout", "3000").exit_code == 0
    assert cli("kata", "patch", path, "--in-place", "--create-container-timeout", "3000").exit_code == 0
    for result in (out, path):
        assert value(result, "go", "hypervisor", "qemu", "kernel_params").split() == \
            [*before, "agent.image_pull_timeout=3000"]
        assert timeout(result) == 3000
    doc = check(cli, path, "--image", MYSQL, "--pull-rate", "0.15", "--kubelet-timeout", "9000")
    assert [f["rule"] for f in doc["findings"]] == ["KIF303"]  # ~6000 s needed: past 3000 s
    assert "agent.image_pull_timeout" in doc["findings"][0]["fix"]


def test_64_bit_timeouts_are_valid_in_go_only(cli, tmp_path):
    go = tmp_path / "go" / "configuration-qemu-tdx.toml"
    go.parent.mkdir()
    go.write_text(GO_TDX.read_text().replace("\ncreate_container_timeout = 60\n",
                                             f"\ncreate_container_timeout = {2**40}\n"))
    assert check(cli, go)["findings"] == [] and timeout(go) == 2**40
    rs = tmp_path / "rs" / "configuration-qemu-tdx-runtime-rs.toml"
    rs.parent.mkdir()
    rs.write_text(RS_TDX.read_text().replace("\ncreate_container_timeout = 60\n",
                                             f"\ncreate_container_timeout = {2**32}\n"))
    assert [f["rule"] for f in check(cli, rs)["findings"]] == ["KIF302"]


def test_kata_check_judges_the_kubelet_even_when_the_kata_timeout_holds(cli, tmp_path):
    path = tmp_path / GO_GPU.name
    shutil.copy(GO_GPU, path)  # 1200 s: mysql at 4 MB/s needs ~230 s, which fits
    doc = check(cli, path, "--image", MYSQL, "--pull-rate", "4")
    assert [f["rule"] for f in doc["findings"]] == ["KIF303"]
    finding = doc["findings"][0]
    assert "holds" in finding["message"] and "runtimeRequestTimeout (120 s" in finding["message"]
    assert "runtimeRequestTimeout: 600s" in finding["fix"] and commands(doc) == []  # not a Kata setting
    raised = check(cli, path, "--image", MYSQL, "--pull-rate", "4", "--kubelet-timeout", "600")
    assert raised["findings"] == []


def test_the_recipe_in_a_kata_deploy_file_is_carried_into_a_drop_in(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    real.write_text(real.read_text().replace("[factory]\n", "[factory]\ncreate_container_timeout = 150\n", 1))
    doc = check(cli, link)
    assert [f["rule"] for f in doc["findings"]] == ["KIF301"]
    assert "--in-place" not in doc["findings"][0]["fix"]
    for command in commands(doc):
        assert cli(*command).exit_code == 0
    assert timeout(link) == 150
    after = check(cli, link)["findings"]
    assert [f["rule"] for f in after] == ["KIF301"] and commands({"findings": after}) == []
    assert "already covers it" in after[0]["fix"]
