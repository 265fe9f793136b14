"""`imagefix k8s`: output valid for the Kubernetes API; manifests patched without touching the rest."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from conftest import SAMPLES, only_lines_added
from make_samples import SPARK_GROUP, Entry, ImageSpec, LayerSpec, base_layer, write_oci_layout
from ruamel.yaml import YAML

from kata_imagefix.k8s.pod import MEMORY_ANNOTATION, TIMEOUT_ANNOTATION
from kata_imagefix.k8s.walk import split_documents

SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"
DATA = __import__("pathlib").Path(__file__).parent / "data" / "kata-4.1.0"
MYSQL = f"oci:{SAMPLES / 'mysql'}:8.4"
K8S_VERSION = "1.31"


def docs(text: str) -> list:
    return [d for d in YAML(typ="safe").load_all(text) if d is not None]


def valid(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


MANIFEST = """\
# spark jobs for the analytics team
apiVersion: v1
kind: ConfigMap
metadata:
  name: spark-conf    # not a workload: must stay byte for byte
data:
  spark-defaults.conf: |
    spark.master k8s://https://kubernetes.default.svc
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: driver
  namespace: analytics
spec:
  replicas: 1
  selector:
    matchLabels: {app: driver}
  template:
    metadata:
      labels: {app: driver}
    spec:
      containers:
        - name: driver
          image: docker.io/library/spark:3.5.3   # pinned by the platform team
          securityContext:
            runAsNonRoot: true
        - name: sidecar
          image: busybox:1.36
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: spark:3.5.3
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: other
spec:
  serviceName: other
  selector:
    matchLabels: {app: other}
  template:
    metadata:
      labels: {app: other}
    spec:
      containers:
      - name: db
        image: mysql:8.4
"""


def test_pod_output_is_valid_and_explains_every_value(cli):
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--fs-group", "185")
    assert result.exit_code == 0, result.stderr
    (pod,) = docs(result.stdout)
    valid(pod)
    assert pod["spec"]["runtimeClassName"] == "kata-qemu-tdx"
    context = pod["spec"]["containers"][0]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (185, 185)
    assert "runAsNonRoot" not in context
    assert pod["spec"]["securityContext"]["fsGroup"] == 185
    assert "annotations" not in pod["metadata"]  # 60 s and 2048 MiB in force already suffice
    assert "no annotation needed" in result.stdout
    assert "# USER spark made numeric" in result.stdout


def test_budget_sizes_the_annotations(cli):
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4")
    (pod,) = docs(result.stdout)
    valid(pod)
    assert pod["metadata"]["annotations"] == {TIMEOUT_ANNOTATION: "120"}  # memory: 2048 MiB suffice
    assert "pod_annotations" in result.stdout
    assert "securityContext" not in pod["spec"]["containers"][0]  # root image: no user to pin
    slow = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--pull-rate", "2")
    assert "above the kubelet's runtimeRequestTimeout" in slow.stdout


def test_patch_changes_only_the_workloads_that_run_the_image(cli, tmp_path):
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(MANIFEST)
    out = tmp_path / "jobs.kata.yaml"
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", manifest, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "patched Deployment/driver: driver" in result.stderr
    assert "patched CronJob/nightly: job" in result.stderr
    before, after = split_documents(MANIFEST), split_documents(out.read_text())
    assert len(before) == len(after) == 4
    assert after[0] == before[0] and after[3] == before[3]  # untouched documents, byte for byte
    assert manifest.read_text() == MANIFEST
    parsed = docs(out.read_text())
    for doc in parsed[1:]:
        valid(doc)
    deployment, cronjob = parsed[1], parsed[2]
    pod = deployment["spec"]["template"]
    assert pod["spec"]["runtimeClassName"] == "kata-qemu-tdx"
    driver, sidecar = pod["spec"]["containers"]
    assert driver["securityContext"] == {"runAsNonRoot": True, "runAsUser": 185, "runAsGroup": 185}
    assert "securityContext" not in sidecar
    assert "annotations" not in pod["metadata"]  # nothing to raise for a 162 MB image
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert job_pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == 185
    text = after[1]
    assert "# pinned by the platform team" in text and "        - name: driver" in text
    assert only_lines_added(before[1], after[1]) and only_lines_added(before[2], after[2])


def test_kustomize_patches(cli, tmp_path):
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(MANIFEST)
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", manifest, "--kustomize")
    patches = docs(result.stdout)
    assert [(p["kind"], p["metadata"]["name"]) for p in patches] == [("Deployment", "driver"),
                                                                    ("CronJob", "nightly")]
    assert patches[0]["metadata"]["namespace"] == "analytics"
    containers = patches[0]["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "driver", "securityContext": {"runAsUser": 185, "runAsGroup": 185}}]
    assert manifest.read_text() == MANIFEST
    assert "annotations" not in result.stdout  # spark needs no annotation: no `annotations: {}`
    assert "metadata" not in patches[0]["spec"]["template"]


def test_bad_inputs_write_nothing(cli, tmp_path):
    out = tmp_path / "out.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n")
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", broken, "-o", out)
    assert result.exit_code == 2 and f"{broken}:4: not valid YAML" in result.stderr and not out.exists()
    unrelated = tmp_path / "unrelated.yaml"
    unrelated.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
                         "  - {name: a, image: nginx}\n")
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", unrelated, "-o", out)
    assert result.exit_code == 2 and "no Pod/Deployment" in result.stderr and not out.exists()
    missing = cli("k8s", f"oci:{tmp_path}/nothing:1", "-o", out)
    assert missing.exit_code == 2 and not out.exists()
    assert cli("k8s", SPARK, "--patch", tmp_path / "none.yaml").exit_code == 2
    assert cli("k8s", SPARK, "--kustomize").exit_code == 2
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\x01\x02\xff")
    assert cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", binary).exit_code == 2


def test_unresolvable_named_user_is_an_error_not_a_broken_pod(cli, tmp_path):
    write_oci_layout(tmp_path / "ghost", {"1": ImageSpec([base_layer("root:x:0:0::/:/bin/sh\n", SPARK_GROUP)],
                                                         config={"User": "ghost"})})
    result = cli("k8s", f"oci:{tmp_path / 'ghost'}:1", "--image-name", "ghost:1")
    assert result.exit_code == 2 and "uid/gid cannot be found" in result.stderr


@pytest.mark.parametrize("text", ["a: 1\n", "---\na: 1\n---\nb: 2\n", "a: 1\n--- # two\nb: 2", ""])
def test_documents_split_and_join_back_exactly(text):
    assert "".join(split_documents(text)) == text


MYSQL_DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
    name: db
spec:
    selector:
        matchLabels: {app: db}
    template:
        spec:
            initContainers:
                -   name: init-schema
                    image: index.docker.io/library/mysql:8.4
            containers:
                -   name: db
                    image: mysql:8.4
                    resources:
                        limits: {memory: 1Gi}
"""


def test_patch_keeps_four_space_indentation_and_patches_init_containers(cli, tmp_path):
    manifest = tmp_path / "db.yaml"
    manifest.write_text(MYSQL_DEPLOY)
    out = tmp_path / "db.kata.yaml"
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--patch", manifest, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "Deployment/db: init-schema, db" in result.stderr
    text = out.read_text()
    assert only_lines_added(MYSQL_DEPLOY, text)
    (deployment,) = docs(text)
    valid(deployment)
    template = deployment["spec"]["template"]
    assert list(template) == ["metadata", "spec"]  # metadata written where people write it
    assert template["metadata"]["annotations"] == {TIMEOUT_ANNOTATION: "120"}
    assert '        metadata:\n            annotations:\n                io.katacontainers' in text


def test_patch_keeps_crlf_line_ends(cli, tmp_path):
    manifest = tmp_path / "db.yaml"
    crlf = MYSQL_DEPLOY.replace("\n", "\r\n")
    manifest.write_bytes(crlf.encode())
    out = tmp_path / "db.kata.yaml"
    assert cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--patch", manifest, "-o", out).exit_code == 0
    data = out.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"") and only_lines_added(crlf, data.decode())


def test_annotations_are_raised_never_lowered(cli, tmp_path):
    higher = MYSQL_DEPLOY.replace("    template:\n", "    template:\n        metadata:\n"
                                  "            annotations:\n"
                                  f'                {TIMEOUT_ANNOTATION}: "600"\n'
                                  f'                {MEMORY_ANNOTATION}: "8192"\n', 1)
    manifest = tmp_path / "db.yaml"
    manifest.write_text(higher)
    out = tmp_path / "out.yaml"
    assert cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--patch", manifest, "-o", out).exit_code == 0
    annotations = docs(out.read_text())[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {TIMEOUT_ANNOTATION: "600", MEMORY_ANNOTATION: "8192"}
    kept_lines = len(out.read_text().splitlines())
    lower = higher.replace('"600"', '"30"')
    manifest.write_text(lower)
    assert cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--patch", manifest, "-o", out).exit_code == 0
    annotations = docs(out.read_text())[0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[TIMEOUT_ANNOTATION] == "120" and annotations[MEMORY_ANNOTATION] == "8192"
    assert len(out.read_text().splitlines()) == kept_lines  # raised in place, no line added


def test_default_memory_only_where_the_runtime_class_enables_it(cli, tmp_path):
    big = ImageSpec([base_layer("root:x:0:0::/:/bin/sh\n", SPARK_GROUP),
                     LayerSpec([Entry("blob", zeros=1_500_000_000)])])
    write_oci_layout(tmp_path / "big", {"1": big})
    ref = f"oci:{tmp_path / 'big'}:1"
    tdx = docs(cli("k8s", ref, "--image-name", "big:1").stdout)[0]
    assert MEMORY_ANNOTATION in tdx["metadata"]["annotations"]
    plain = cli("k8s", ref, "--image-name", "big:1", "--runtime-class", "kata-qemu")
    assert MEMORY_ANNOTATION not in docs(plain.stdout)[0]["metadata"].get("annotations", {})
    assert "does not enable the default_memory annotation" in plain.stdout


def test_values_in_force_come_from_the_nodes_kata_config(cli, tmp_path):
    gpu = DATA / "go" / "configuration-qemu-nvidia-gpu.toml"  # ships 1200 s and 8192 MiB
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4", "--runtime-class", "kata-qemu-nvidia-gpu",
                 "--kata-config", gpu)
    assert result.exit_code == 0, result.stderr
    assert "annotations" not in docs(result.stdout)[0]["metadata"]
    assert "1200 s and 8192 MiB" in result.stdout


def test_shared_yaml_anchors_are_refused_not_edited(cli, tmp_path):
    text = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
            "  - name: spark\n    image: spark:3.5.3\n    securityContext: &sc\n"
            "      allowPrivilegeEscalation: false\n"
            "  - name: sidecar\n    image: busybox:1.36\n    securityContext: *sc\n")
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(text)
    out = tmp_path / "out.yaml"
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", manifest, "-o", out)
    assert result.exit_code == 2 and "anchor &sc" in result.stderr and not out.exists()


def test_list_items_are_patched(cli, tmp_path):
    text = ('{"apiVersion": "v1", "kind": "List", "items": [\n'
            '  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},\n'
            '   "spec": {"containers": [{"name": "spark", "image": "spark:3.5.3"}]}}]}\n')
    manifest = tmp_path / "list.json"
    manifest.write_text(text)
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", manifest)
    assert result.exit_code == 0, result.stderr
    # JSON stays JSON: the new keys inside the braces, on the line (this List is written one object a line)
    pod = json.loads(result.stdout)["items"][0]
    assert pod["spec"]["runtimeClassName"] == "kata-qemu-tdx"
    assert pod["spec"]["containers"][0]["securityContext"] == {"runAsUser": 185, "runAsGroup": 185}
    assert result.stdout.splitlines()[:2] == text.splitlines()[:2]


def test_oci_layout_name_comes_from_its_ref_name_or_is_asked_for(cli, tmp_path):
    write_oci_layout(tmp_path / "full", {"registry.example/team/spark:3.5.3": ImageSpec(
        [base_layer("root:x:0:0::/:/bin/sh\n", SPARK_GROUP)])})
    named = cli("k8s", f"oci:{tmp_path / 'full'}")
    assert named.exit_code == 0 and "image: registry.example/team/spark:3.5.3" in named.stdout
    bare = cli("k8s", SPARK)
    assert bare.exit_code == 2 and "--image-name" in bare.stderr and "'3.5.3'" in bare.stderr


def test_invalid_utf8_in_a_manifest_is_refused_not_replaced(cli, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_bytes(MANIFEST.encode().replace(b"spark-conf", b"spark-\xff-conf"))
    out = tmp_path / "out.yaml"
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", manifest, "-o", out)
    assert result.exit_code == 2 and "not UTF-8" in result.stderr and not out.exists()
