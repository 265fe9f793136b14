"""`imagefix k8s check` over manifests whose images live in the loopback registry (read, never pulled)."""

from __future__ import annotations

import json

import pytest
from conftest import only_lines_added
from registries import push_spec, repo_name, spark_like

from kata_imagefix.registry.client import RegistryClient

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory) -> dict[str, str]:
    """A named-user image, a numeric one and a big root one, pushed once for the module."""
    client = RegistryClient(registry.host)
    work = tmp_path_factory.mktemp("k8s-images")
    out = {}
    for key, spec in (("named", spark_like("spark")), ("numeric", spark_like("185:185")),
                      ("root", spark_like("0:0", big=2_000_000))):
        repository = repo_name(f"k8s-{key}")
        push_spec(client, work, repository, "1", spec)
        out[key] = f"{registry.host}/{repository}:1"
    return out


MANIFEST = """\
# a Helm-style stream: comments, ---, several kinds
apiVersion: apps/v1
kind: Deployment
metadata:
  name: spark
  namespace: analytics
spec:
  selector: {{matchLabels: {{app: spark}}}}
  template:
    spec:
      runtimeClassName: kata-qemu-tdx
      initContainers:
      - name: init
        image: {named}
      containers:
      - name: driver
        image: {named}
        securityContext:
          runAsUser: 185
          runAsGroup: 185
      - name: strict
        image: {named}
        securityContext:
          runAsNonRoot: true
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
          runtimeClassName: kata-qemu-tdx
          restartPolicy: Never
          securityContext:
            runAsGroup: 185
          containers:
          - name: job
            image: {numeric}
---
apiVersion: v1
kind: Pod
metadata:
  name: plain
spec:
  containers:
  - name: web
    image: {named}
---
apiVersion: v1
kind: Pod
metadata:
  name: missing
spec:
  runtimeClassName: kata-qemu-tdx
  containers:
  - name: ghost
    image: {missing}
"""


def manifest(pushed, registry) -> str:
    return MANIFEST.format(**pushed, missing=f"{registry.host}/imagefix-test/absent:1")


def by_workload(doc: dict) -> dict[str, list[tuple[str, str, int]]]:
    return {w["workload"]: sorted((f["rule"], f["data"]["container"], f["line"]) for f in w["findings"])
            for w in doc["workloads"]}


def test_the_pod_decides_not_the_image_alone(cli, pushed, registry, tmp_path):
    path = tmp_path / "stream.yaml"
    path.write_text(manifest(pushed, registry))
    result = cli("k8s", "check", "--format", "json", path)
    assert result.exit_code == 1, result.stderr
    found = by_workload(result.json())
    text = path.read_text().splitlines()

    def image_line(container: str) -> int:  # 1-based line of the container's `image:`
        return text.index(next(t for t in text if t.strip() == f"- name: {container}")) + 2

    assert found["analytics/Deployment/spark"] == [
        ("KIF401", "init", image_line("init")),      # an init container with a named user
        ("KIF401", "strict", image_line("strict")),  # runAsNonRoot alone does not give a number
        ("KIF403", "strict", image_line("strict")),  # ... and the kubelet cannot verify the name
    ]                                                # driver: runAsUser/runAsGroup given - no false alarm
    # runAsGroup without runAsUser is valid (the kubelet sends the image's uid), but the uid is implicit:
    # genpolicy refuses the pod under guest pull
    assert found["default/CronJob/nightly"] == [("KIF409", "job", image_line("job"))]
    assert found["default/Pod/missing"] == [("KIF407", "ghost", image_line("ghost"))]
    assert "default/Pod/plain" not in found  # not a Kata pod
    assert "default/Pod/plain" in by_workload(cli("k8s", "check", "--format", "json", "--all", path).json())


def test_stdin_lists_and_the_tmpfs_of_a_whole_pod(cli, pushed, registry):
    containers = [{"name": "a", "image": pushed["root"]},
                  {"name": "b", "image": pushed["numeric"],
                   "securityContext": {"runAsUser": 185, "runAsGroup": 185}}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pair", "namespace": "ns"},
           "spec": {"runtimeClassName": "kata-qemu-tdx", "containers": containers}}
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod]}, indent=2)
    # 2 MB of random bytes (exact: from the gzip trailer) and a small image against a room of 1.5 MiB
    result = cli("k8s", "check", "--format", "json", "--guest-memory", "3", "--memory-reserve", "1", "-",
                 input=listed)
    found = by_workload(result.json())["ns/Pod/pair"]
    assert [rule for rule, _, _ in found] == ["KIF406", "KIF406"]  # each contributing container is named


def test_bad_inputs_are_one_line(cli, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n")
    result = cli("k8s", "check", broken)
    assert result.exit_code == 2 and f"{broken}:" in result.stderr and "not valid YAML" in result.stderr
    noimage = tmp_path / "noimage.yaml"
    noimage.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  runtimeClassName: kata\n"
                       "  containers:\n  - name: a\n")
    result = cli("k8s", "check", noimage)  # a kustomize patch fragment: skipped with a note, not an error
    assert result.exit_code == 0 and f"{noimage}:7:" in result.stdout and "has no image" in result.stdout
    assert cli("k8s", "check", tmp_path / "none.yaml").exit_code == 2
    other = tmp_path / "other.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = cli("k8s", "check", other)  # nothing to audit is not a failure: said, exit 0
    assert result.exit_code == 0 and "no Kata workload" in result.stdout


def test_fix_writes_numeric_users_keeps_every_other_byte_and_is_idempotent(cli, pushed, registry, tmp_path):
    path = tmp_path / "stream.yaml"
    original = manifest(pushed, registry)
    path.write_text(original)
    assert cli("k8s", "fix", "--check", path).exit_code == 1
    result = cli("k8s", "fix", "--in-place", path)
    assert result.exit_code == 1  # the missing image cannot be fixed: said, the rest written
    assert "not fixed: default/Pod/missing: KIF407" in result.stderr
    assert "fixed" in result.stdout and "init: runAsUser: 185, runAsGroup: 185" in result.stdout
    text = path.read_text()
    assert only_lines_added(original, text)
    before, after = original.split("---\n"), text.split("---\n")
    assert before[2] == after[2] and before[3] == after[3]  # the plain pod and the missing one: untouched
    audit = by_workload(cli("k8s", "check", "--format", "json", path).json())
    assert audit["analytics/Deployment/spark"] == [] and audit["default/CronJob/nightly"] == []
    again = cli("k8s", "fix", "--in-place", path)
    assert path.read_text() == text and "fixed" not in again.stdout  # idempotent
    checked = cli("k8s", "fix", "--check", path)  # nothing to change, but an error no edit can fix
    assert checked.exit_code == 1 and "would fix" not in checked.stdout and "KIF407" in checked.stderr



def test_fix_in_place_keeps_a_backup_force_writes_read_only_and_dash_is_stdout(cli, pushed, registry,
                                                                                 tmp_path, monkeypatch):
    """#24: `k8s fix --in-place` kept no backup; it refused a read-only manifest saying "use --force" and
    had no --force; `-o -` wrote a file named '-'."""
    path = tmp_path / "stream.yaml"
    original = manifest(pushed, registry)
    path.write_text(original)
    monkeypatch.chdir(tmp_path)
    shown = cli("k8s", "fix", "-o", "-", path)
    assert "runAsUser: 185" in shown.stdout and not (tmp_path / "-").exists()
    assert path.read_text() == original
    path.chmod(0o444)
    refused = cli("k8s", "fix", "--in-place", path)
    assert refused.exit_code == 2 and "read-only" in refused.stderr and "--force" in refused.stderr
    assert path.read_text() == original
    forced = cli("k8s", "fix", "--in-place", "--force", path)
    assert forced.exit_code == 1 and "runAsUser: 185" in path.read_text()  # 1: the missing image is left
    assert (tmp_path / "stream.yaml.bak").read_text() == original and "stream.yaml.bak" in forced.stdout

def test_patch_is_k8s_fix_narrowed_to_one_image(cli, pushed, tmp_path):
    """`k8s pod REF --patch` writes the containers' users exactly as `k8s fix` does, and like it keeps
    a runAsUser the manifest sets (containerd uses that one, not the image's USER)."""
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n"
                  "    spec:\n      runtimeClassName: kata-qemu-tdx\n      containers:\n"
                  "      - name: app\n        image: {image}\n{extra}")
    text = "---\n".join([
        deployment.format(name="plain", image=pushed["named"], extra=""),
        deployment.format(name="pinned", image=pushed["named"],
                          extra="        securityContext:\n          runAsUser: 1000\n"),
        deployment.format(name="other", image=pushed["root"], extra=""),
    ])
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    fixed, patched = tmp_path / "fixed.yaml", tmp_path / "patched.yaml"
    assert cli("k8s", "fix", path, "-o", fixed).exit_code == 0
    result = cli("k8s", "pod", f"docker://{pushed['named']}", "--image-name", pushed["named"],
                 "--patch", path, "-o", patched)
    assert result.exit_code == 0, result.stderr
    assert patched.read_text() == fixed.read_text()
    assert "patched Deployment/plain: app" in result.stderr and "Deployment/other" not in result.stderr
    pinned = fixed.read_text().split("---\n")[1]
    assert "runAsUser: 1000" in pinned and "runAsUser: 185" not in pinned


def test_each_written_value_says_why(cli, pushed, registry, tmp_path):
    uid_only = f"{registry.host}/{repo_name('k8s-uid')}:1"
    push_spec(RegistryClient(registry.host), tmp_path, uid_only.split("/", 1)[1].rsplit(":", 1)[0], "1",
              spark_like("185"))
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
           "{extra}  containers:\n  - name: c\n    image: {image}\n")
    path = tmp_path / "pods.yaml"
    path.write_text("---\n".join([
        pod.format(name="named", image=pushed["named"], extra=""),
        pod.format(name="uid-only", image=uid_only, extra=""),
        pod.format(name="lone-group", image=pushed["numeric"],
                   extra="  securityContext:\n    runAsGroup: 185\n"),
    ]))
    assert cli("k8s", "fix", "--in-place", path).exit_code == 0
    named, uid, lone = path.read_text().split("---\n")
    assert "runAsUser: 185  # the image's uid, explicit: containerd cannot look names up" in named
    assert "runAsGroup: 185  # the image's group: the kubelet drops it" in named
    assert "runAsUser: 185  # the image's uid, explicit" in uid
    assert "runAsGroup: 185  # the image's group" in uid
    assert "runAsUser: 185  # the image's uid, explicit" in lone
    assert lone.count("runAsGroup:") == 1  # the pod's own, not written again


def test_fix_raises_the_timeout_annotation_never_lowers_it(cli, pushed, tmp_path):
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\n  annotations:\n"
           '    io.katacontainers.config.runtime.create_container_timeout: "{t}"\n'
           "spec:\n  runtimeClassName: kata-qemu-tdx\n  containers:\n  - name: a\n    image: {image}\n")
    path = tmp_path / "pod.yaml"
    path.write_text(pod.format(t=5, image=pushed["root"]))
    result = cli("k8s", "fix", "--in-place", "--pull-rate", "0.01", path)
    assert result.exit_code == 0, result.stderr
    assert "timeout 5 -> " in result.stdout and '"5"' not in path.read_text()
    path.write_text(pod.format(t=99999, image=pushed["root"]))
    assert cli("k8s", "fix", "--check", "--pull-rate", "0.01", path).exit_code == 0  # higher: left alone


def test_shards_cover_every_workload_once_and_merge_to_the_same_report(cli, pushed, registry, tmp_path):
    path = tmp_path / "stream.yaml"
    path.write_text(manifest(pushed, registry))
    whole = cli("k8s", "check", "--format", "json", path).json()
    parts = []
    for index in range(3):
        result = cli("k8s", "check", "--format", "json", "--shard", f"{index}/3", path)
        out = tmp_path / f"shard-{index}.json"
        out.write_text(result.stdout)
        parts.append(out)
    names = [w["workload"] for p in parts for w in json.loads(p.read_text())["workloads"]]
    assert sorted(names) == sorted(w["workload"] for w in whole["workloads"])  # each exactly once
    merged = cli("merge", "--format", "json", *parts)
    assert merged.exit_code == 1
    assert by_workload(merged.json()) == by_workload(whole)
    table = cli("merge", "--format", "markdown", *parts).stdout
    assert "| ❌ |" in table and "KIF401" in table
    assert cli("k8s", "check", "--shard", "3/3", path).exit_code == 2
    assert json.loads(parts[1].read_text())["totals"]["shard"] == "1/3"  # each result says which it is
    twice = cli("merge", "--format", "json", parts[0], parts[1], parts[1])
    assert twice.exit_code == 2 and "shard 1/3 again" in twice.stderr  # would double its counts
    partial = cli("merge", "--format", "json", parts[0], parts[2])
    assert partial.exit_code == 2  # a report, and the gap named in it
    assert {"reference": "shards", "error": "shard 1/3 is missing: its workloads are not in this report"} \
        in partial.json()["errors"]
    text = cli("merge", *parts).stdout
    assert text.startswith(f"imagefix k8s check: {len(whole['workloads'])} workloads audited")
    assert json.loads(merged.stdout)["totals"]["workloads"] == whole["totals"]["workloads"]


def test_the_indexed_job_example_is_valid_kubernetes():
    import kubernetes_validate
    import yaml
    from conftest import ROOT

    for doc in yaml.safe_load_all((ROOT / "docs" / "examples" / "fleet-audit-job.yaml").read_text()):
        kubernetes_validate.validate(doc, "1.31", strict=True)
        assert doc["spec"]["completionMode"] == "Indexed"
        assert "--shard" in doc["spec"]["template"]["spec"]["containers"][0]["args"]


KINDS = {  # kind -> the path from the object to its pod template (the pod itself for Pod)
    "Pod": [], "Deployment": ["spec", "template"], "StatefulSet": ["spec", "template"],
    "DaemonSet": ["spec", "template"], "ReplicaSet": ["spec", "template"], "Job": ["spec", "template"],
    "CronJob": ["spec", "jobTemplate", "spec", "template"], "ReplicationController": ["spec", "template"],
    "PodTemplate": ["template"],
}


def test_every_workload_kind_is_audited(cli, pushed, tmp_path):
    items = []
    for kind, path in KINDS.items():
        containers = [{"name": "c", "image": pushed["named"]}]
        pod = {"spec": {"runtimeClassName": "kata-qemu-tdx", "containers": containers}}
        obj: dict = {"apiVersion": "v1", "kind": kind, "metadata": {"name": kind.lower()}}
        node = obj
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if path:
            node[path[-1]] = pod
        else:
            obj.update(pod)
        items.append(obj)
    manifest = tmp_path / "kinds.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    found = by_workload(cli("k8s", "check", "--format", "json", manifest).json())
    assert sorted(found) == sorted(f"default/{kind}/{kind.lower()}" for kind in KINDS)
    assert all(rules == [("KIF401", "c", rules[0][2])] for rules in found.values())


def test_generate_name_pods_are_titled_by_their_prefix(cli, pushed):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "job-run-"},
           "spec": {"runtimeClassName": "kata-qemu-tdx",
                    "containers": [{"name": "c", "image": pushed["numeric"],
                                    "securityContext": {"runAsUser": -1, "runAsGroup": 185}}]}}
    result = cli("k8s", "check", "--format", "json", "-", input=json.dumps(pod))
    assert [w["workload"] for w in result.json()["workloads"]] == ["default/Pod/job-run-*"]
    assert "KIF420" in [f["rule"] for f in result.json()["workloads"][0]["findings"]]  # -1: the API refuses


def test_a_binary_manifest_is_one_line(cli, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\x7fELF\x00\x01")
    result = cli("k8s", "check", path)
    assert result.exit_code == 2 and "binary" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_account_files_the_rules_need_are_read_with_the_image_in_parallel(pushed, registry,
                                                                              private_layer_cache):
    """Read ahead in the workers: every image's /etc/passwd and /etc/group (containerd and genpolicy derive
    ids and groups from them whatever the image's USER says)."""
    from kata_imagefix.image.sources import open_image
    from kata_imagefix.k8s.audit import AuditOptions, read_images
    from kata_imagefix.k8s.manifests import workloads_in

    images = read_images(workloads_in("m.yaml", manifest(pushed, registry)), AuditOptions(jobs=2), open_image)
    named, _ = images[pushed["named"]]
    numeric, _ = images[pushed["numeric"]]
    # config + the layers down to passwd (and a range request per layer not sized yet in the process); the
    # two images share their base layer, whose facts one worker may have cached before the other asks
    for image in (named, numeric):
        assert image.transfer.by_kind["manifest"] == 1 and 2 <= image.transfer.by_kind["blob"] <= 3
        assert image.transfer.by_kind.get("blob-range", 0) <= 2
    # the base layer is read once at least: 2 configs + 2 top layers + 1 base
    assert named.transfer.by_kind["blob"] + numeric.transfer.by_kind["blob"] >= 5



@pytest.mark.parametrize("kata", [True, False])
def test_the_streamed_json_report_is_the_whole_document_byte_for_byte(cli, pushed, registry, tmp_path, kata):
    """`k8s check --format json` writes one workload at a time; what it writes is json_out's document of
    the same audit (held whole), errors, skips and totals included; also with no workload audited."""
    from kata_imagefix.cli.k8s_cmds import audit_totals
    from kata_imagefix.image.sources import open_image
    from kata_imagefix.k8s.audit import AuditOptions, audit, read_sources
    from kata_imagefix.model.budget import BudgetModel
    from kata_imagefix.output import RenderOptions
    from kata_imagefix.output.json_out import render
    from kata_imagefix.registry.options import RegistryOptions
    from kata_imagefix.rules.finding import Severity
    from kata_imagefix.scan import RuleSelection

    stream = tmp_path / "stream.yaml"
    plain = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x}\n"
    stream.write_text(manifest(pushed, registry) if kata else plain)
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n")
    out = tmp_path / "report.json"
    result = cli("k8s", "check", "--format", "json", stream, broken, "-o", out)
    assert result.exit_code == 2 and "not valid YAML" in result.stderr
    assert cli("k8s", "check", "--format", "json", stream, broken).stdout == out.read_text()
    problems: list = []
    run = audit(read_sources([str(stream), str(broken)], problems), AuditOptions(), BudgetModel(),
                RuleSelection(), lambda ref: open_image(ref, registry=RegistryOptions()), problems=problems)
    totals = audit_totals(run, None)
    if not kata:
        totals["notes"].insert(0, f"no Kata workload in {stream}, {broken} (1 other workload skipped; "
                                  "--all audits every pod, --runtime-class names the classes)")
    whole = render(run.results, RenderOptions(Severity.ERROR, profile="kata-tdx", errors=run.errors,
                                              key="workloads", totals=totals))
    assert out.read_text() == whole
    assert len(json.loads(whole)["workloads"]) == (3 if kata else 0)


@pytest.mark.parametrize("others", [1, 3])
def test_the_skipped_line_counts_workloads_in_the_singular_and_plural(cli, pushed, tmp_path, others):
    kata = ("apiVersion: v1\nkind: Pod\nmetadata: {name: k}\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
            f"  containers:\n  - {{name: a, image: {pushed['numeric']}}}\n")
    plain = "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{n}}}\nspec:\n"
                    "  containers:\n  - {name: a, image: x}\n" for n in range(others))
    stream = tmp_path / "mixed.yaml"
    stream.write_text(kata + plain)
    said = "workload" if others == 1 else "workloads"
    text = cli("k8s", "check", stream)
    assert f"skipped: {others} {said} not for Kata (--all, --runtime-class)" in text.stdout.splitlines()
    markdown = cli("k8s", "check", "--format", "markdown", stream)
    assert f"Skipped: {others} {said} not for Kata (--all, --runtime-class)." in markdown.stdout
