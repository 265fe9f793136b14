"""Per runtime class values: the table (kata/classes.py) against Kata 4.1's generated configs, and
what `k8s`, `k8s check` and `k8s fix` do with it - a class is never given less than it ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import SAMPLES
from registries import push_spec, repo_name, spark_like
from ruamel.yaml import YAML

from kata_imagefix.kata.annotations import annotation_enabled, parse_number
from kata_imagefix.kata.classes import SHIPPED, image_pull_timeout, shipped_class, with_image_pull_timeout

DATA = Path(__file__).parent / "data" / "kata-4.1.0"
MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"
TIMEOUT = "io.katacontainers.config.runtime.create_container_timeout"
MEMORY = "io.katacontainers.config.hypervisor.default_memory"
PARAMS = "io.katacontainers.config.hypervisor.kernel_params"
GPU_CLASSES = [name for name in SHIPPED if "nvidia-gpu" in name]
NOT_KATA_DEPLOY = {"go/configuration-stratovirt.toml", "rs/configuration-remote.toml",
                   "rs/configuration-rs-fc.toml"}


def shipped_file(name: str) -> Path:
    row = SHIPPED[name]
    return DATA / ("rs" if row.runtime == "rs" else "go") / f"configuration-{name.removeprefix('kata-')}.toml"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_row_is_what_kata_generates(name):
    """Read straight from the file, independently of imagefix's loader."""
    row = SHIPPED[name]
    data = tomllib.loads(shipped_file(name).read_text())
    (hypervisor, table), = data["hypervisor"].items()
    assert row.hypervisor == hypervisor
    is_rs = "name" in data.get("runtime", {})  # runtime-rs files say [runtime] name = "virt_container"
    assert row.runtime == ("rs" if is_rs else "go")
    timeout = data["agent"]["kata"].get("create_container_timeout", 30) if is_rs \
        else data["runtime"]["create_container_timeout"]
    assert row.timeout_s == timeout
    assert row.memory_mib == table.get("default_memory", 2048)  # Go: defaultMemSize 2048 when absent
    assert row.annotations == tuple(table.get("enable_annotations", []))
    assert image_pull_timeout(table.get("kernel_params")) == 1200  # no shipped config sets it


def test_every_generated_config_kata_deploy_installs_has_a_row():
    files = {f"{p.parent.name}/{p.name}" for p in DATA.glob("*/*.toml")}
    rows = {f"{shipped_file(n).parent.name}/{shipped_file(n).name}" for n in SHIPPED}
    assert files - NOT_KATA_DEPLOY == rows and len(files) == 29


def test_the_nvidia_gpu_classes_ship_1200_s_and_8192_mib():
    assert len(GPU_CLASSES) == 6
    assert {(SHIPPED[n].timeout_s, SHIPPED[n].memory_mib) for n in GPU_CLASSES} == {(1200, 8192)}
    assert shipped_class("kata-qemu-nvidia-gpu-tdx-debug") is SHIPPED["kata-qemu-nvidia-gpu-tdx"]
    assert shipped_class("kata-cloud-hypervisor") is None  # not a name Kata 4.1 ships


def test_enable_annotations_are_unanchored_regular_expressions():
    assert annotation_enabled(["memory"], "default_memory")  # a substring matches
    assert annotation_enabled(["^default_.*$"], "default_memory")
    assert not annotation_enabled(["^memory"], "default_memory")
    assert annotation_enabled([".*"], "kernel_params")
    assert annotation_enabled(["(", "default_memory"], "default_memory", "go")  # Go: each on its own
    assert not annotation_enabled(["(", "default_memory"], "default_memory", "rs")  # one RegexSet


@pytest.mark.parametrize(("value", "go", "rs"), [
    ("600", 600, 600), ("+600", None, 600), (" 600", None, 600), ("6_00", None, None),
    ("\uff16\uff10\uff10", None, None), ("-1", None, None), ("600s", None, None), ("", None, None),
    ("4294967296", 4294967296, None), ("18446744073709551616", None, None), (600, None, None),
])
def test_annotation_numbers_as_each_runtime_parses_them(value, go, rs):
    assert parse_number(value, "go")[0] == go and parse_number(value, "rs")[0] == rs


def test_image_pull_timeout_keeps_every_other_parameter():
    shipped = "cgroup_no_v1=all pci=realloc agent.image_pull_timeout=900 nvrc.smi.srs=1"
    assert image_pull_timeout(shipped) == 900
    assert with_image_pull_timeout(shipped, 3000) == "cgroup_no_v1=all pci=realloc nvrc.smi.srs=1 " \
                                                     "agent.image_pull_timeout=3000"
    assert image_pull_timeout("") == 1200


def pod_doc(text: str) -> dict:
    return next(d for d in YAML(typ="safe").load_all(text) if d)


@pytest.mark.parametrize("runtime_class", GPU_CLASSES)
def test_a_gpu_class_pod_is_never_given_less_than_it_ships(cli, runtime_class):
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--runtime-class", runtime_class)
    assert result.exit_code == 0, result.stderr
    # mysql needs 120 s and 2 GiB: the class's 1200 s and 8192 MiB hold
    assert "annotations" not in pod_doc(result.stdout)["metadata"]
    assert "1200 s and 8192 MiB" in result.stdout


def test_an_unknown_class_gets_nothing_that_could_be_lower_and_says_what_to_pass(cli, tmp_path):
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--runtime-class", "kata-gpu-custom")
    assert result.exit_code == 0, result.stderr
    assert "annotations" not in pod_doc(result.stdout)["metadata"]
    assert "not a class Kata 4.1 ships" in result.stdout
    assert "--kata-config kata-gpu-custom=FILE" in result.stdout
    stated = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--runtime-class", "kata-gpu-custom",
                 "--create-timeout", "60")
    assert pod_doc(stated.stdout)["metadata"]["annotations"][TIMEOUT] == "120"  # told what is in force


def test_past_the_guest_pull_limit_the_kernel_parameter_comes_too(cli):
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--pull-rate", "0.3")  # needs ~3000 s
    annotations = pod_doc(result.stdout)["metadata"]["annotations"]
    seconds = int(annotations[TIMEOUT])
    assert seconds > 1200 and annotations[PARAMS] == f"agent.image_pull_timeout={seconds}"
    assert "runtimeRequestTimeout" in result.stdout  # and the kubelet, which gives up first
    rs = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--pull-rate", "0.3", "--runtime-class",
             "kata-qemu-nvidia-gpu-tdx-runtime-rs")  # does not enable the kernel_params annotation
    assert PARAMS not in pod_doc(rs.stdout)["metadata"]["annotations"]
    assert "agent.image_pull_timeout" in rs.stdout and "kernel_params" in rs.stdout


@pytest.fixture(scope="module")
def root_image(registry, tmp_path_factory) -> str:
    from kata_imagefix.registry.client import RegistryClient

    repository = repo_name("classes")
    push_spec(RegistryClient(registry.host), tmp_path_factory.mktemp("classes"), repository, "1",
              spark_like("0:0", big=2_000_000))
    return f"{registry.host}/{repository}:1"


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    {annotations}
spec:
  runtimeClassName: {runtime_class}
  containers:
  - name: a
    image: {image}
"""


def write_pod(tmp_path: Path, image: str, runtime_class: str, annotations: str = "{}") -> Path:
    path = tmp_path / "pod.yaml"
    path.write_text(POD.format(image=image, runtime_class=runtime_class, annotations=annotations)
                    .replace("annotations:\n    {}", "annotations: {}"))
    return path


def workload_findings(cli, path: Path, *args: str) -> list[dict]:
    result = cli("k8s", "check", "--format", "json", path, *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()["workloads"][0]["findings"]


@pytest.mark.registry
def test_k8s_fix_leaves_a_gpu_class_alone_and_check_still_judges_the_kubelet(cli, root_image, tmp_path):
    path = write_pod(tmp_path, root_image, "kata-qemu-nvidia-gpu")
    before = path.read_text()
    result = cli("k8s", "fix", "--in-place", "--pull-rate", "0.02", path)  # 6 MB needs ~460 s: below 1200
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == before
    findings = workload_findings(cli, path, "--pull-rate", "0.02")
    kif405 = [f for f in findings if f["rule"] == "KIF405"]
    assert kif405 and "runtimeRequestTimeout is 120 s" in kif405[0]["message"]
    assert "runtimeRequestTimeout: 600s" in kif405[0]["fix"]
    assert workload_findings(cli, path, "--pull-rate", "0.02", "--kubelet-timeout", "600") == []


@pytest.mark.registry
def test_k8s_fix_raises_timeout_and_the_guest_limit_keeping_kernel_params(cli, root_image, tmp_path):
    path = write_pod(tmp_path, root_image, "kata-qemu-nvidia-gpu-tdx", f'{PARAMS}: "nvrc.smi.srs=1"')
    result = cli("k8s", "fix", "--in-place", "--pull-rate", "0.003", "--kubelet-timeout", "9000", path)
    assert result.exit_code == 0, result.stderr
    annotations = pod_doc(path.read_text())["metadata"]["annotations"]
    seconds = int(annotations[TIMEOUT])
    assert seconds > 1200 and annotations[PARAMS] == f"nvrc.smi.srs=1 agent.image_pull_timeout={seconds}"
    assert workload_findings(cli, path, "--pull-rate", "0.003", "--kubelet-timeout", "9000") == []


@pytest.mark.registry
@pytest.mark.parametrize("value", ['"+600"', '" 600"', '"6_00"', '"600s"', '"-1"', "600"])
def test_a_refused_value_is_an_error_and_fix_leaves_what_it_need_not_raise(cli, root_image, tmp_path, value):
    path = write_pod(tmp_path, root_image, "kata-qemu-tdx", f"{TIMEOUT}: {value}")
    findings = workload_findings(cli, path)
    assert [f["rule"] for f in findings if f["severity"] == "error"] == ["KIF410"]
    before = path.read_text()
    result = cli("k8s", "fix", "--in-place", path)  # 2 MB at 10 MB/s needs no raise
    assert path.read_text() == before and result.exit_code == 1 and "KIF410" in result.stderr
    raised = cli("k8s", "fix", "--in-place", "--pull-rate", "0.01", path)  # now it must raise: valid value
    assert raised.exit_code == 0, raised.stderr
    assert parse_number(pod_doc(path.read_text())["metadata"]["annotations"][TIMEOUT])[0] > 60


def test_scan_says_when_the_timeout_passes_the_guest_pull_limit(cli):
    slow = cli("scan", "--format", "json", "--pull-rate", "0.3", MYSQL).json()["images"][0]["findings"]
    kif203 = next(f for f in slow if f["rule"] == "KIF203")
    assert "agent.image_pull_timeout" in kif203["fix"] and "kernel_params" in kif203["fix"]
    fast = cli("scan", "--format", "json", "--pull-rate", "3", MYSQL).json()["images"][0]["findings"]
    assert "agent.image_pull_timeout" not in next(f for f in fast if f["rule"] == "KIF203")["fix"]
