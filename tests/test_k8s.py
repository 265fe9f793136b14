"""`imagefix k8s`: output valid for the Kubernetes API; manifests patched without touching the rest."""

from __future__ import annotations

import kubernetes_validate
import pytest
from conftest import SAMPLES
from make_samples import SPARK_GROUP, ImageSpec, base_layer, write_oci_layout
from ruamel.yaml import YAML

from kata_imagefix.k8s import MEMORY_ANNOTATION, TIMEOUT_ANNOTATION, split_documents

SPARK = f"oci:{SAMPLES / 'spark'}:3.5.3"
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
    assert pod["metadata"]["annotations"] == {TIMEOUT_ANNOTATION: "60", MEMORY_ANNOTATION: "2048"}
    assert "# USER spark made numeric" in result.stdout
    assert "pod_annotations" in result.stdout


def test_budget_sizes_the_annotations(cli):
    result = cli("k8s", MYSQL, "--image-name", "mysql:8.4")
    (pod,) = docs(result.stdout)
    valid(pod)
    assert pod["metadata"]["annotations"][TIMEOUT_ANNOTATION] == "120"
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
    assert pod["metadata"]["annotations"][TIMEOUT_ANNOTATION] == "60"
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert job_pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == 185
    assert next(iter(job_pod)) == "metadata"
    text = after[1]
    assert "# pinned by the platform team" in text and "        - name: driver" in text


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


def test_bad_inputs_write_nothing(cli, tmp_path):
    out = tmp_path / "out.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n")
    result = cli("k8s", SPARK, "--image-name", "spark:3.5.3", "--patch", broken, "-o", out)
    assert result.exit_code == 2 and "document 1 is not valid YAML" in result.stderr and not out.exists()
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
