"""`imagefix kata` on Kata 4.1's own generated configs and the kata-deploy node layout.

`effective()` below loads main file + drop-ins independently of imagefix, the way Kata does
(tests/kata_loader.py: Kata's own merge order and the tables it refuses); a configuration Kata
would refuse raises there, so no test can take it for fixed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES
from kata_loader import load, runtime_of

DATA = Path(__file__).parent / "data" / "kata-4.1.0"
GO_TDX = DATA / "go" / "configuration-qemu-tdx.toml"
RS_TDX = DATA / "rs" / "configuration-qemu-tdx-runtime-rs.toml"
MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"


def effective(main: Path, *key: str):
    """What Kata would use for `key` (None when no file sets it); raises Refused where Kata refuses."""
    node = load(main, runtime_of(main))
    for part in key:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check(cli, path, *args):
    result = cli("kata", "check", "--format", "json", path, *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()["files"][0]


def kata_deploy_node(tmp_path: Path, shipped: Path = GO_TDX) -> tuple[Path, Path]:
    """/opt/kata/share/defaults/kata-containers/configuration-qemu-tdx.toml -> runtimes/qemu-tdx/..."""
    defaults = tmp_path / "opt/kata/share/defaults/kata-containers"
    per_shim = defaults / "runtimes" / "qemu-tdx"
    per_shim.mkdir(parents=True)
    real = per_shim / "configuration-qemu-tdx.toml"
    shutil.copy(shipped, real)
    (per_shim / "config.d").mkdir()
    prefix = per_shim / "config.d" / "10-installation-prefix.toml"
    prefix.write_text('[hypervisor.qemu]\npath = "/opt/kata/bin/qemu"\n')
    link = defaults / "configuration-qemu-tdx.toml"
    link.symlink_to(os.path.relpath(real, defaults))
    return link, real


SHIPPED = sorted((DATA / "go").glob("*.toml")) + sorted((DATA / "rs").glob("*.toml"))


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_is_clean_and_its_effective_values_agree(cli, shipped):
    doc = check(cli, shipped)
    assert doc["findings"] == []
    runtime = shipped.parent.name  # go/ or rs/: dragonball, remote and rs-fc are runtime-rs too
    assert f"runtime: {runtime}" in doc["notes"][0]
    table = ("agent", "kata") if runtime == "rs" else ("runtime",)
    assert f"effective create_container_timeout {effective(shipped, *table, 'create_container_timeout')} s" \
        in doc["notes"][0]


def test_the_factory_recipe_on_the_shipped_tdx_config_keeps_its_120(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx.toml"
    text = GO_TDX.read_text().replace("[factory]\n", "[factory]\ncreate_container_timeout = 120\n", 1)
    path.write_text(text)
    assert [f["rule"] for f in check(cli, path)["findings"]] == ["KIF301"]
    result = cli("kata", "patch", path, "--in-place")
    assert result.exit_code == 0, result.stderr
    assert effective(path, "runtime", "create_container_timeout") == 120
    assert check(cli, path, "--image", MYSQL)["findings"] == []


def test_go_config_without_the_key_runs_with_zero(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx.toml"
    path.write_text(GO_TDX.read_text().replace("\ncreate_container_timeout = 60\n", "\n"))
    doc = check(cli, path)
    assert [f["rule"] for f in doc["findings"]] == ["KIF304"]
    assert "effective create_container_timeout 0 s" in doc["notes"][0]
    assert cli("kata", "patch", path, "--in-place").exit_code == 0
    assert effective(path, "runtime", "create_container_timeout") == 60


def test_runtime_rs_fatal_tables_are_refusals_not_ignored(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx-runtime-rs.toml"
    path.write_text(RS_TDX.read_text().replace("[hypervisor.qemu.factory]\n",
                                               "[hypervisor.qemu.factory]\ncreate_container_timeout = 120\n"))
    finding = check(cli, path)["findings"][0]
    assert finding["rule"] == "KIF301" and "refuses to load" in finding["message"]
    assert "[agent.kata]" in finding["message"]


def test_runtime_rs_is_detected_from_lines_when_the_file_is_invalid(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx-runtime-rs.toml"
    path.write_text(RS_TDX.read_text() + "\n[agent.kata]\ndial_timeout_ms = 5\n")
    doc = check(cli, path)
    assert "runtime: rs" in doc["notes"][0] and [f["rule"] for f in doc["findings"]] == ["KIF302"]


def test_kata_deploy_in_place_edits_through_the_link_and_points_at_config_d(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    result = cli("kata", "patch", link, "--in-place", "--create-container-timeout", "300")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and effective(link, "runtime", "create_container_timeout") == 300
    assert "managed by kata-deploy" in result.stdout and str(real.parent / "config.d") in result.stdout


def test_drop_in_is_created_merged_idempotent_and_checked(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    dropin = real.parent / "config.d" / "90-imagefix.toml"
    first = cli("kata", "patch", link, "--drop-in", dropin, "--create-container-timeout", "300")
    assert first.exit_code == 0, first.stderr
    second = cli("kata", "patch", link, "--drop-in", dropin, "--default-memory", "4096")
    assert second.exit_code == 0, second.stderr
    assert effective(link, "runtime", "create_container_timeout") == 300  # the first value stayed
    assert effective(link, "hypervisor", "qemu", "default_memory") == 4096
    again = cli("kata", "patch", link, "--drop-in", dropin, "--default-memory", "4096")
    assert again.exit_code == 0 and "unchanged" in again.stdout
    doc = check(cli, link)
    assert "effective create_container_timeout 300 s, default_memory 4096 MiB" in doc["notes"][0]


def test_a_shadowed_drop_in_is_refused_before_anything_is_written(cli, tmp_path):
    link, real = kata_deploy_node(tmp_path)
    (real.parent / "config.d" / "99-later.toml").write_text("[runtime]\ncreate_container_timeout = 45\n")
    dropin = real.parent / "config.d" / "50-imagefix.toml"
    result = cli("kata", "patch", link, "--drop-in", dropin, "--create-container-timeout", "300")
    assert result.exit_code == 2 and "would not take effect" in result.stderr and "99-later" in result.stderr
    assert not dropin.exists()
    outside = cli("kata", "patch", link, "--drop-in", tmp_path / "config.d" / "x.toml",
                  "--create-container-timeout", "300")
    assert outside.exit_code == 2 and "not in" in outside.stderr


@pytest.mark.parametrize(("make", "needle"), [
    (lambda d: (d / "README").write_text("not toml at all = = =\n"), "not valid TOML"),
    (lambda d: (d / "sub").mkdir(), "a directory in config.d"),
])
def test_config_d_entries_that_break_loading_are_reported(cli, tmp_path, make, needle):
    link, real = kata_deploy_node(tmp_path)
    make(real.parent / "config.d")
    doc = check(cli, link)
    assert "KIF302" in [f["rule"] for f in doc["findings"]]
    assert needle in " ".join(f["message"] for f in doc["findings"])


def _suggested_commands(doc) -> list[list[str]]:
    import re
    import shlex

    out = []
    for finding in doc["findings"]:
        for command in re.findall(r"`imagefix (kata patch [^`]*)`", finding["fix"] or ""):
            out.append(shlex.split(command))
    return out


@pytest.mark.parametrize("case", ["factory-recipe", "missing-go-key", "drop-in-recipe", "budget-flags"])
def test_every_suggested_command_run_as_printed_does_what_it_says(cli, tmp_path, case):
    path = tmp_path / "configuration-qemu-tdx.toml"
    text = GO_TDX.read_text()
    args: tuple[str, ...] = ()
    if case == "factory-recipe":
        text = text.replace("[factory]\n", "[factory]\ncreate_container_timeout = 120\n", 1)
    elif case == "missing-go-key":
        text = text.replace("\ncreate_container_timeout = 60\n", "\n")
    elif case == "drop-in-recipe":
        (tmp_path / "config.d").mkdir()
        (tmp_path / "config.d" / "50-recipe.toml").write_text("[factory]\ncreate_container_timeout = 150\n")
    else:
        # the kubelet's limit is not Kata's: said, with what to set, but no kata patch raises it
        args = ("--image", MYSQL, "--pull-rate", "4", "--tmpfs-fraction", "0.25", "--kubelet-timeout", "600")
    path.write_text(text)
    before = check(cli, path, *args)
    commands = _suggested_commands(before)
    assert before["findings"] and commands, before["findings"]
    for command in commands:
        result = cli(*command)
        assert result.exit_code == 0, (command, result.stderr)
    after = check(cli, path, *args)
    assert after["findings"] == [], after["findings"]


def test_profiles_drop_what_does_not_apply(cli, tmp_path):
    path = tmp_path / "configuration-qemu-tdx.toml"
    recipe = "[factory]\ncreate_container_timeout = 120\n"
    path.write_text(GO_TDX.read_text().replace("[factory]\n", recipe, 1))
    assert [f["rule"] for f in check(cli, path)["findings"]] == ["KIF301"]
    assert check(cli, path, "--profile", "generic")["findings"] == []  # no Kata runtime: no KIF3xx
    big = f"oci:{SAMPLES / 'mysql'}:8.4"
    scan = cli("scan", "--format", "json", "--profile", "kata", "--pull-rate", "1", big).json()
    rules = [f["rule"] for f in scan["images"][0]["findings"]]
    assert not {"KIF202", "KIF203", "KIF204"} & set(rules)  # pulled on the host: no guest-pull budget
    tdx = cli("scan", "--format", "json", "--pull-rate", "1", big).json()
    assert {"KIF203", "KIF204"} <= {f["rule"] for f in tdx["images"][0]["findings"]}
