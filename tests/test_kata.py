"""`imagefix kata check|patch` on configs that mirror Kata's real templates (tables, keys, comments)."""

from __future__ import annotations

import pytest
from conftest import SAMPLES

MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"
SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"

# The tables and keys of configuration-qemu-tdx.toml (Go runtime), trimmed, comments everywhere.
GO_TDX = """\
# Copyright (c) 2017-2019 Intel Corporation
# XXX: WARNING: this file is auto-generated.

[hypervisor.qemu]
path = "/opt/kata/bin/qemu-system-x86_64"
kernel = "/opt/kata/share/kata-containers/vmlinuz-confidential.container"
machine_type = "q35"
# Enable confidential guest support.
confidential_guest = true
enable_annotations = ["enable_iommu", "kernel_params", "default_vcpus", "default_memory"]
default_vcpus = 1
# Default memory size in MiB for SB/VM.
default_memory = 2048
shared_fs = "none"
kernel_params = \"\"\"
  agent.image_pull_timeout=1200
\"\"\"

[factory]
# VM templating support.
#enable_template = true
#vm_cache_number = 0
{factory_extra}
[agent.kata]
# If enabled, make the agent display debug-level messages.
#enable_debug = true
kernel_modules=[
  "e1000e InterruptThrottleRate=3000,3000,3000 EEE=1",
]
# Agent connection dialing timeout value in seconds
dial_timeout = 60

[runtime]
# If enabled, the runtime will log additional debug messages
#enable_debug = true
internetworking_model="tcfilter"
disable_guest_seccomp=true
static_sandbox_resource_mgmt=true   # TEE: no hotplug
experimental=[]
{runtime_extra}
# WARNING: All the options in the following section have not been implemented yet.
[image]
#service_offload = true
"""

RUNTIME_RS = """\
[hypervisor.qemu]
path = "/opt/kata/bin/qemu-system-x86_64"
default_memory = 2048

[agent.kata]
dial_timeout_ms = 10
reconnect_timeout_ms = 3000
{agent_extra}
[runtime]
name = "virt_container"
hypervisor_name = "qemu"
agent_name = "kata"
{runtime_extra}"""


SHIPPED_TIMEOUT = "create_container_timeout = 60\n"


def go(factory_extra: str = "", runtime_extra: str = SHIPPED_TIMEOUT) -> str:
    return GO_TDX.format(factory_extra=factory_extra, runtime_extra=runtime_extra)


@pytest.fixture
def config(tmp_path):
    def write(text: str, name: str = "configuration-qemu-tdx.toml", newline: str = "\n"):
        path = tmp_path / name
        path.write_bytes(text.replace("\n", newline).encode())
        return path
    return write


def findings(cli, *args) -> list[tuple[str, int | None]]:
    result = cli("kata", "check", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return [(f["rule"], f["line"]) for f in result.json()["files"][0]["findings"]]


def test_the_factory_recipe_is_caught_at_its_line(cli, config):
    path = config(go(factory_extra="create_container_timeout = 120\n"))
    assert findings(cli, path) == [("KIF301", 23)]
    message = cli("kata", "check", path).stdout
    assert "[runtime]" in message and "ignored, so 60 s is in force" in message


def test_the_right_place_is_quiet(cli, config):
    assert findings(cli, config(go(runtime_extra="create_container_timeout = 120\n"))) == []


def test_patch_moves_the_key_and_keeps_every_other_byte(cli, config, tmp_path):
    path = config(go(factory_extra="create_container_timeout = 120\n"))
    out = tmp_path / "patched.toml"
    result = cli("kata", "patch", path, "-o", out)
    assert result.exit_code == 0, result.stderr
    # the recipe's 120 becomes the value in force: the shipped 60 in [runtime] is raised, not kept
    assert out.read_text() == go(runtime_extra="create_container_timeout = 120\n")
    assert "removed create_container_timeout from [factory] (line 23)" in result.stdout
    assert "[runtime] create_container_timeout = 60 -> 120" in result.stdout
    assert findings(cli, out) == []
    again = tmp_path / "again.toml"
    assert cli("kata", "patch", out, "-o", again).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # idempotent


def test_patch_sets_values_in_place_keeping_trailing_comments(cli, config, tmp_path):
    path = config(go(runtime_extra="create_container_timeout = 60  # seconds\n"))
    out = tmp_path / "p.toml"
    assert cli("kata", "patch", path, "--create-container-timeout", "300", "--default-memory", "4096",
               "-o", out).exit_code == 0
    text = out.read_text()
    assert "create_container_timeout = 300  # seconds\n" in text
    assert "default_memory = 4096\n" in text
    assert text.count("\n") == path.read_text().count("\n")


def test_patch_auto_values_come_from_the_images(cli, config, tmp_path):
    path = config(go(factory_extra="create_container_timeout = 90\n"))
    out = tmp_path / "p.toml"
    result = cli("kata", "patch", path, "--create-container-timeout", "auto", "--image", MYSQL, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "create_container_timeout = 120\n" in out.read_text()
    assert "[runtime] create_container_timeout = 60 -> 120" in result.stdout
    assert findings(cli, out, "--image", MYSQL) == []
    missing = cli("kata", "patch", path, "--create-container-timeout", "auto")
    assert missing.exit_code == 2 and "auto needs the images" in missing.stderr


def test_kif303_timeout_and_memory_too_low(cli, config):
    path = config(go())
    assert findings(cli, path, "--image", MYSQL) == [("KIF303", 40)]  # at the key in force
    result = cli("kata", "check", "--format", "json", path, "--image", MYSQL)
    finding = result.json()["files"][0]["findings"][0]
    assert finding["data"]["recommended_create_container_timeout"] == 120
    assert "pod_annotations" in finding["fix"]
    small = config(go().replace("default_memory = 2048", "default_memory = 512"), name="small.toml")
    rules = findings(cli, small, "--image", SPARK)
    assert rules == [("KIF303", 13)]
    slow = cli("kata", "check", "--format", "json", path, "--image", MYSQL, "--pull-rate", "2")
    assert "kubelet's runtimeRequestTimeout" in slow.json()["files"][0]["findings"][0]["message"]


def test_duplicate_factory_header_is_reported_and_the_recipe_case_repaired(cli, config, tmp_path):
    text = go() + "\n[factory]\ncreate_container_timeout = 120\n"
    path = config(text)
    doc = cli("kata", "check", "--format", "json", path).json()["files"][0]
    kif302 = next(f for f in doc["findings"] if f["rule"] == "KIF302")
    second = text.splitlines().index("[factory]", text.splitlines().index("[factory]") + 1) + 1
    assert kif302["line"] == second and "table [factory] is declared twice" in kif302["message"]
    assert "is in force" not in " ".join(f["message"] for f in doc["findings"])  # the file does not load
    result = cli("kata", "patch", path, "--in-place")
    assert result.exit_code == 0, result.stderr
    assert f"merged the second [factory] (line {second})" in result.stdout
    assert path.read_text() == go(runtime_extra="create_container_timeout = 120\n") + "\n"
    assert findings(cli, path) == []


def test_other_invalid_toml_is_never_guessed(cli, config, tmp_path):
    text = go() + "\n[factory]\nenable_template = true\n"
    path = config(text)
    result = cli("kata", "patch", path, "--in-place")
    assert result.exit_code == 2 and "table [factory] is declared twice" in result.stderr
    assert path.read_text() == text and not (tmp_path / f"{path.name}.bak").exists()


def test_duplicate_key_is_named(cli, config):
    text = go(runtime_extra="create_container_timeout = 60\ncreate_container_timeout = 120\n")
    path = config(text)
    doc = cli("kata", "check", "--format", "json", path).json()["files"][0]
    kif302 = next(f for f in doc["findings"] if f["rule"] == "KIF302")
    second = text.splitlines().index("create_container_timeout = 120") + 1
    assert "create_container_timeout is set twice" in kif302["message"] and kif302["line"] == second


def test_runtime_rs_reads_agent_kata(cli, config, tmp_path):
    path = config(RUNTIME_RS.format(agent_extra="", runtime_extra="create_container_timeout = 300\n"))
    doc = cli("kata", "check", "--format", "json", path).json()["files"][0]
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("KIF301", 13)]
    assert "[agent.kata]" in doc["findings"][0]["message"]
    assert "runtime: rs" in doc["notes"][0]
    out = tmp_path / "rs.toml"
    assert cli("kata", "patch", path, "-o", out).exit_code == 0
    patched = out.read_text()
    assert patched.index("create_container_timeout = 300") < patched.index("\n[runtime]\n")
    assert findings(cli, out) == []
    # told explicitly, the same file is treated as Go: then [runtime] is right
    assert findings(cli, path, "--runtime", "go") == []


def test_an_agent_kata_table_alone_does_not_mean_runtime_rs(cli, config):
    path = config(go(runtime_extra="create_container_timeout = 120\n"))
    doc = cli("kata", "check", "--format", "json", path).json()["files"][0]
    assert "runtime: go" in doc["notes"][0] and doc["findings"] == []


def test_dropins_are_read_in_order_and_win(cli, config, tmp_path):
    path = config(go(runtime_extra="create_container_timeout = 60\n"))
    dropins = tmp_path / "config.d"
    dropins.mkdir()
    (dropins / "10-first.toml").write_text("[runtime]\ncreate_container_timeout = 30\n")
    (dropins / "20-second.toml").write_text("[runtime]\ncreate_container_timeout = 150\n")
    (dropins / "30-wrong.toml").write_text("[factory]\ncreate_container_timeout = 900\n")
    doc = cli("kata", "check", "--format", "json", path, "--image", MYSQL).json()["files"][0]
    assert [(f["rule"], f["file"].rsplit("/", 1)[-1], f["line"]) for f in doc["findings"]] == [
        ("KIF301", "30-wrong.toml", 2)]
    assert "effective create_container_timeout 150 s" in doc["notes"][0]


def test_drop_in_mode_leaves_the_main_file_alone(cli, config, tmp_path):
    text = go(factory_extra="create_container_timeout = 120\n")
    path = config(text)
    dropin = tmp_path / "config.d" / "50-imagefix.toml"
    dropin.parent.mkdir()
    result = cli("kata", "patch", path, "--drop-in", dropin, "--create-container-timeout", "auto",
                 "--default-memory", "auto", "--image", MYSQL)
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == text
    assert "[runtime]\n" in dropin.read_text() and "create_container_timeout = 120\n" in dropin.read_text()
    assert "default_memory" not in dropin.read_text()  # 2048 MiB already holds 600 MB
    assert "still there (ignored by Kata)" in result.stdout
    doc = cli("kata", "check", "--format", "json", path, "--image", MYSQL).json()["files"][0]
    assert [f["rule"] for f in doc["findings"]] == ["KIF301"]  # the budget is met through the drop-in


def test_in_place_is_atomic_with_a_backup_and_keeps_crlf(cli, config, tmp_path):
    original = go(factory_extra="create_container_timeout = 120\n").replace("\n", "\r\n")
    path = config(go(factory_extra="create_container_timeout = 120\n"), newline="\r\n")
    result = cli("kata", "patch", path, "--in-place")
    assert result.exit_code == 0
    patched = path.read_bytes()
    assert b"\n" not in patched.replace(b"\r\n", b"")  # every line still ends in CRLF
    assert b"create_container_timeout = 120\r\n" in patched
    assert (tmp_path / f"{path.name}.bak").read_bytes() == original.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, f"{path.name}.bak"]


def test_diff_and_stdout(cli, config):
    path = config(go(factory_extra="create_container_timeout = 120\n"))
    diff = cli("kata", "patch", path, "--diff")
    assert "-create_container_timeout = 120" in diff.stdout
    assert "+create_container_timeout = 120" in diff.stdout
    whole = cli("kata", "patch", path)
    assert whole.stdout.startswith("# Copyright") and "[image]" in whole.stdout


@pytest.mark.parametrize(("setup", "needle"), [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\x00\x01\x02"), "binary file"),
    (lambda p: p.mkdir(), "is a directory"),
])
def test_bad_config_inputs(cli, tmp_path, setup, needle):
    path = tmp_path / "config.toml"
    setup(path)
    for args in (("kata", "check", path), ("kata", "patch", path, "--in-place")):
        result = cli(*args)
        assert result.exit_code == 2 and needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_bad_patch_values(cli, config, tmp_path):
    path = config(go())
    assert cli("kata", "patch", path, "--create-container-timeout", "soon").exit_code == 2
    assert cli("kata", "patch", path, "-o", tmp_path / "x", "--in-place").exit_code == 2
    unscannable = cli("kata", "check", path, "--image", f"oci:{tmp_path}/none")
    assert unscannable.exit_code == 2 and "no such directory" in unscannable.stderr
