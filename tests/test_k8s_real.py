"""`k8s check` / `k8s fix` over manifests as public repositories write them (tests/data/manifests, origins
in its README), their images served by a second loopback registry acting as the nodes' mirror."""

from __future__ import annotations

import difflib
import json
import shutil

import pytest
import yaml
from conftest import ROOT, only_lines_added, patched
from registries import make_certificate, push_spec, spark_like, start_registry

from kata_imagefix.registry.client import RegistryClient
from kata_imagefix.registry.session import Session
from kata_imagefix.registry.tls import HostTLS

pytestmark = pytest.mark.registry

DATA = ROOT / "tests" / "data" / "manifests"
UPSTREAMS = ("docker.io", "k8s.gcr.io", "registry.k8s.io")
# the images the manifests name, as paths under their registry, and the USER each is built with
IMAGES = {"library/controller:latest": "spark", "monopole/hello:1": "spark", "pause:3.6": "spark",
          "ingress-nginx/controller:v1.15.1": "101:82",
          "ingress-nginx/kube-webhook-certgen:v1.6.9": "65532:65532"}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A second registry of our own: the mirror the nodes pull through (the upstreams are unreachable)."""
    work = tmp_path_factory.mktemp("mirror")
    started = start_registry(work / "registry")
    client = RegistryClient(started.host)
    for path, user in IMAGES.items():
        repository, tag = path.rsplit(":", 1)
        push_spec(client, work, repository, tag, spark_like(user))
    yield started
    started.stop()


def via(mirror) -> list[str]:
    return [arg for upstream in UPSTREAMS for arg in ("--registry-mirror", f"{upstream}={mirror.host}")]


def corpus(tmp_path):
    """The committed manifests, the ingress-nginx stream without its digests (the mirror's images are
    ours), a CRLF copy of it, and one file that is not valid YAML."""
    folder = tmp_path / "repo"
    shutil.copytree(DATA, folder, ignore=shutil.ignore_patterns("README.md"))
    stream = folder / "ingress-nginx-deploy.yaml"
    text = stream.read_text()
    for line in [t for t in text.splitlines() if "image: " in t and "@sha256:" in t]:
        text = text.replace(line, line.split("@sha256:")[0])
    stream.write_text(text)
    (folder / "crlf").mkdir()
    (folder / "crlf" / "deploy.yaml").write_bytes(text.replace("\n", "\r\n").encode())
    (folder / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n")
    return folder


def test_a_repository_wide_check_always_reports(cli, mirror, tmp_path):
    folder = corpus(tmp_path)
    result = cli("k8s", "check", "--all", "--format", "json", *via(mirror), folder)
    assert result.exit_code == 2, result.stderr  # an input error: reported, after the report
    doc = result.json()
    names = sorted(w["workload"] for w in doc["workloads"])
    assert names.count("ingress-nginx/Deployment/ingress-nginx-controller") == 2  # LF and CRLF alike
    assert "system/Deployment/controller-manager" in names and "default/Deployment/the-deployment" in names
    assert {"default/ReplicationController/mock", "default/ReplicationController/mock2"} <= set(names)
    assert doc["errors"] == [{"reference": f"{folder / 'broken.yaml'}:5", "error": "not valid YAML or JSON: "
                              "while parsing a flow sequence (line 4): did not find expected ',' or ']'"}]
    assert "broken.yaml:5: not valid YAML" in result.stderr
    fragment = [s for s in doc["totals"]["skipped_files"] if s["reason"].startswith("patch fragment")]
    assert [(s["file"], s["line"]) for s in fragment] == [
        (str(folder / "coco-operator-config/default/manager_auth_proxy_patch.yaml"), 23)]  # `- name: manager`
    assert doc["totals"]["unreadable_refs"] == []  # every image read through the mirror
    by_name = {w["workload"]: w for w in doc["workloads"]}
    named = by_name["default/Deployment/the-deployment"]["findings"]
    # the reference reported is the manifest's, not the mirror's
    assert [f["rule"] for f in named] == ["KIF401"] and "monopole/hello:1" in named[0]["message"]
    assert mirror.host not in json.dumps(doc["workloads"])
    ingress = by_name["ingress-nginx/Deployment/ingress-nginx-controller"]
    # runAsUser 101 / runAsGroup 82 as written upstream: nothing fails (genpolicy may still want groups)
    assert [f for f in ingress["findings"] if f["severity"] == "error"] == []


def test_without_the_mirror_an_unreachable_image_is_one_cause_listing_its_containers(cli, tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    shutil.copy(DATA / "kubernetes-rclist.json", folder)
    result = cli("k8s", "check", "--all", "--registry-timeout", "1", folder)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("imagefix k8s check: 2 workloads audited, 2 containers, "
                               "1 image (1 unreadable)")  # words.plural: never "1 images"
    assert sum("KIF407" in line for line in lines) == 2  # the by-rule count, and the one cause
    cause = next(i for i, line in enumerate(lines) if line.startswith("error") and "KIF407" in line)
    assert "(2 containers)" in lines[cause]
    assert "ReplicationController/mock mock-container" in "\n".join(lines[cause:])


def test_the_text_summary_says_one_workload_one_container_one_image_in_the_singular(cli, tmp_path):
    only = json.loads((DATA / "kubernetes-rclist.json").read_text())
    only["items"] = only["items"][:1]
    (tmp_path / "one.json").write_text(json.dumps(only))
    result = cli("k8s", "check", "--all", "--registry-timeout", "1", tmp_path / "one.json")
    assert result.exit_code == 1, result.stderr
    first, findings = result.stdout.splitlines()[:2]
    assert first.startswith("imagefix k8s check: 1 workload audited, 1 container, 1 image (1 unreadable)")
    assert findings.startswith("findings: 1 error"), findings
    assert "1 containers" not in result.stdout and "1 images" not in result.stdout


def test_a_kubectl_json_list_is_fixed_as_json_keeping_its_indentation(cli, mirror, tmp_path):
    original = (DATA / "kubernetes-rclist.json").read_text()
    result = cli("k8s", "fix", "--all", *via(mirror), "-", input=original)
    assert result.exit_code == 0, result.stderr
    fixed = result.stdout
    doc = json.loads(fixed)
    for item in doc["items"]:
        context = item["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        assert context == {"runAsUser": 185, "runAsGroup": 185}
    assert "                    \"securityContext\": {\n" in fixed  # the container keys' own column
    added = [line for line in fixed.splitlines() if line not in original.splitlines()]
    assert [line.strip() for line in added] == ['}],', '"securityContext": {', '"runAsUser": 185,',
                                               '"runAsGroup": 185', '}'] * 2  # a comma, then new lines
    again = cli("k8s", "fix", "--all", *via(mirror), "-", input=fixed)
    assert again.stdout == fixed  # idempotent
    items = json.loads(original)["items"]  # as `kubectl get rc -o json` writes them: 4 spaces
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4) + "\n"
    out = cli("k8s", "fix", "--all", *via(mirror), "-", input=text).stdout
    assert json.loads(out)["items"][1]["spec"]["template"]["spec"]["containers"][0]["securityContext"] == \
        {"runAsUser": 185, "runAsGroup": 185}
    assert (" " * 32 + '"securityContext": {\n' + " " * 36 + '"runAsUser": 185,\n') in out
    assert only_lines_added(uncomma(text), uncomma(out))


def uncomma(text: str) -> str:
    """The text without the commas at line ends (a key added after the last one puts one there)."""
    return "\n".join(line.rstrip(",") for line in text.splitlines()) + "\n"


FLOW = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  runtimeClassName: kata-qemu-tdx
  securityContext: {runAsNonRoot: true}
  containers:
    - {name: web, image: "monopole/hello:1", securityContext: {readOnlyRootFilesystem: true}}
    - name: side
      image: monopole/hello:1
      securityContext: {readOnlyRootFilesystem: true}  # kept
"""


def test_flow_style_mappings_are_edited_in_place(cli, mirror, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW)
    assert cli("k8s", "fix", "--in-place", *via(mirror), path).exit_code == 0
    text = path.read_text()
    lines = text.splitlines()
    assert lines[7] == ('    - {name: web, image: "monopole/hello:1", securityContext: '
                        '{readOnlyRootFilesystem: true, runAsUser: 185, runAsGroup: 185}}')
    assert lines[10] == ("      securityContext: {readOnlyRootFilesystem: true, runAsUser: 185, "
                         "runAsGroup: 185}  # kept")
    assert [a for a, b in zip(FLOW.splitlines(), lines, strict=True) if a != b] == \
        [FLOW.splitlines()[7], FLOW.splitlines()[10]]  # only the mappings that had to change
    pod = yaml.safe_load(text)
    assert all(c["securityContext"]["runAsUser"] == 185 for c in pod["spec"]["containers"])
    audit = cli("k8s", "check", "--format", "json", *via(mirror), path).json()
    assert audit["workloads"][0]["findings"] == []


MERGED = """\
apiVersion: v1
kind: List
common: &common
  image: monopole/hello:1
  imagePullPolicy: IfNotPresent
shared: &shared
  image: monopole/hello:1
  securityContext:
    readOnlyRootFilesystem: true
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: merged
  spec:
    runtimeClassName: kata-qemu-tdx
    containers:
    - <<: *common
      name: app
- apiVersion: v1
  kind: Pod
  metadata:
    name: shared
  spec:
    runtimeClassName: kata-qemu-tdx
    containers:
    - <<: *shared
      name: app
"""


def test_merge_keys_are_followed_and_a_shared_anchor_is_refused_with_its_place(cli, mirror, tmp_path):
    merged, other = tmp_path / "merged.yaml", tmp_path / "other.yaml"
    merged.write_text(MERGED)
    other.write_text(FLOW)
    check = cli("k8s", "check", "--format", "json", *via(mirror), merged).json()
    lines = {f["data"]["container"] + w["workload"]: f["line"]
             for w in check["workloads"] for f in w["findings"]}
    assert lines == {"appdefault/Pod/merged": 4, "appdefault/Pod/shared": 7}  # the anchors' image lines
    result = cli("k8s", "fix", "--in-place", *via(mirror), merged, other)
    assert result.exit_code == 1  # the shared one could not be fixed: said, the rest written
    assert f"not fixed: {merged}:27: " in result.stderr and "merge key" in result.stderr
    text = merged.read_text()
    assert only_lines_added(MERGED, text)
    assert "    - <<: *common\n      name: app\n      securityContext:\n        runAsUser: 185" in text
    assert text.count("runAsUser") == 1  # nothing written into the shared anchor
    assert "runAsUser: 185" in other.read_text()  # one refused file does not stop the others


def test_a_duplicate_key_is_refused_with_both_lines_not_guessed(cli, mirror, tmp_path):
    text = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: dup\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
            "  containers:\n  - name: app\n    image: monopole/hello:1\n    image: monopole/hello:1\n")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    check = cli("k8s", "check", "--format", "json", *via(mirror), path)
    # k8s check reads the last of the two (as kubectl does): line 10
    assert [f["rule"] for f in check.json()["workloads"][0]["findings"]] == ["KIF401"]
    assert check.json()["workloads"][0]["findings"][0]["line"] == 10
    result = cli("k8s", "fix", "--in-place", *via(mirror), path)
    assert result.exit_code == 1 and f"{path}:9: image is written twice (also line 10)" in result.stderr
    assert path.read_text() == text


def test_the_diff_of_k8s_fix_applies_to_give_what_it_writes(cli, mirror, tmp_path, monkeypatch):
    """#26: `k8s fix --diff` is made from each changed document's edits (diffing.py: the diff of the two
    whole texts did not end on a 100,000-item List). Of these files - multi-document streams, LF and
    CRLF, a JSON List, flow mappings, merge keys - it is byte for byte the diff of the two whole texts,
    and `patch -p1` or `git apply` of it onto the original gives what `-o FILE` writes."""
    folder = corpus(tmp_path)
    (folder / "flow.yaml").write_text(FLOW)
    (folder / "merged.yaml").write_text(MERGED)
    monkeypatch.chdir(folder)  # the diff names the files as given: a/NAME relative here
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.*") if p.name != "broken.yaml")
    changed = []
    for name in names:
        out = tmp_path / "fixed" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        result = cli("k8s", "fix", "--all", *via(mirror), "--diff", "-o", out, name)  # the diff, and the file
        assert result.exit_code in (0, 1), result.stderr
        original, fixed = (folder / name).read_bytes().decode(), out.read_bytes().decode()
        whole = "".join(difflib.unified_diff(original.splitlines(keepends=True),
                                             fixed.splitlines(keepends=True), f"a/{name}", f"b/{name}"))
        diff = result.stdout_bytes.decode()
        assert diff == whole, name
        if fixed != original:
            changed.append(name)
            assert patched(original, diff, tmp_path / "patch" / name) == fixed, name
            assert patched(original, diff, tmp_path / "git" / name, "git") == fixed, name
    assert {"ingress-nginx-deploy.yaml", "crlf/deploy.yaml", "kubernetes-rclist.json", "flow.yaml",
            "merged.yaml"} <= set(changed), changed


def test_mirrors_from_containerd_hosts_and_registries_conf(cli, mirror, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  runtimeClassName: kata\n"
                        "  containers:\n  - name: a\n    image: monopole/hello:1\n"
                        "  - name: b\n    image: registry.k8s.io/ingress-nginx/controller:v1.15.1\n")
    hosts = tmp_path / "certs.d"
    (hosts / "docker.io").mkdir(parents=True)
    (hosts / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n\n'
        '[host."http://127.0.0.1:9"]\n  capabilities = ["pull"]\n\n'  # no resolve: never asked for a tag
        f'[host."http://{mirror.host}"]\n  capabilities = ["pull", "resolve"]\n')
    (hosts / "_default").mkdir()
    (hosts / "_default" / "hosts.toml").write_text(f'[host."http://{mirror.host}"]\n')
    doc = cli("k8s", "check", "--format", "json", "--registry-config", hosts, manifest).json()
    assert doc["totals"]["unreadable_refs"] == []
    rules = [f["rule"] for f in doc["workloads"][0]["findings"]]
    assert "KIF401" in rules and "KIF407" not in rules  # both images read: a's named user is judged
    (hosts / "docker.io" / "hosts.toml").write_text(f'[host."http://{mirror.host}"]\n'
                                                    '  capabilities = ["pull"]\n')
    pull_only = cli("k8s", "check", "--format", "json", "--registry-timeout", "2", "--registry-config", hosts,
                    manifest).json()  # a host that may not resolve tags is not asked for one
    assert pull_only["totals"]["unreadable_refs"] == ["monopole/hello:1"]
    conf = tmp_path / "registries.conf"
    conf.write_text('unqualified-search-registries = ["docker.io"]\n\n[[registry]]\n'
                    'prefix = "docker.io/monopole"\nlocation = "docker.io/monopole"\n\n'
                    '[[registry.mirror]]\nlocation = "127.0.0.1:9/nowhere"\ninsecure = true\n\n'
                    f'[[registry.mirror]]\nlocation = "{mirror.host}/monopole"\ninsecure = true\n')
    result = cli("k8s", "check", "--format", "json", "--registry-timeout", "2", "--registry-config", conf,
                 manifest)
    refs = result.json()["totals"]
    assert refs["unreadable_refs"] == ["registry.k8s.io/ingress-nginx/controller:v1.15.1"]  # no mirror for it
    assert cli("k8s", "check", "--registry-mirror", "docker.io", manifest).exit_code == 2
    assert cli("k8s", "check", "--registry-config", tmp_path / "none", manifest).exit_code == 2


def test_markdown_fits_a_pull_request_comment_and_output_writes_all(cli, tmp_path):
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n  runtimeClassName: kata\n"
           "  containers:\n  - name: c\n    image: 127.0.0.1:9/app-{i}-{pad}:1\n")
    path = tmp_path / "many.yaml"
    path.write_text("---\n".join(pod.format(i=i, pad="x" * 80) for i in range(600)))
    result = cli("k8s", "check", "--format", "markdown", "--registry-timeout", "1", "--jobs", "16", path)
    assert result.exit_code == 1 and len(result.stdout) <= 65_536
    assert "more causes (" in result.stdout and "`--output FILE`" in result.stdout
    assert result.stdout.startswith("**imagefix k8s check**: 600 workloads audited, 600 containers")
    full = tmp_path / "full.md"
    assert cli("k8s", "check", "--format", "markdown", "--registry-timeout", "1", "--jobs", "16",
               "-o", full, path).exit_code == 1
    assert len(full.read_text()) > 65_536 and "more causes" not in full.read_text()


def test_k8s_ref_reads_through_the_mirror_and_keeps_the_manifest_name(cli, mirror):
    result = cli("k8s", "docker://monopole/hello:1", "--registry-mirror", f"docker.io={mirror.host}")
    assert result.exit_code == 0, result.stderr
    pod = yaml.safe_load(result.stdout)
    assert pod["spec"]["containers"][0]["image"] == "monopole/hello:1"
    assert pod["spec"]["containers"][0]["securityContext"] == {"runAsUser": 185, "runAsGroup": 185}


# --- a mirror's own trust from hosts.toml (ca, skip_verify, client), over real TLS -----------------------

UNREACHABLE = "127.0.0.1:9"  # the registry the manifest names: refused at once, only the mirror serves


@pytest.fixture(scope="module")
def tls_mirrors(tmp_path_factory):
    """Two HTTPS mirrors with self-made certificates: one that only checks the server, one that also
    demands a client certificate (docker-registry's http.tls.clientcas)."""
    work = tmp_path_factory.mktemp("tls-mirrors")
    client_cert, client_key = make_certificate(work / "client")
    plain = start_registry(work / "plain", tls=True)
    mutual = start_registry(work / "mutual", tls=True, client_ca=client_cert)
    for registry, clients in ((plain, ()), (mutual, ((str(client_cert), str(client_key)),))):
        trusted = Session([(registry.host, HostTLS((str(registry.ca),), clients))])
        client = RegistryClient(registry.host, session=trusted)
        push_spec(client, work, "monopole/hello", "1", spark_like("185"))
    yield plain, mutual, (client_cert, client_key)
    plain.stop()
    mutual.stop()


def _hosts(tmp_path, mirror, table: str):
    """containerd's config_path for the unreachable registry: one mirror, with `table` as its settings."""
    folder = tmp_path / "hosts" / UNREACHABLE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts.toml").write_text(f'[host."https://{mirror.host}"]\n'
                                       '  capabilities = ["pull", "resolve"]\n' + table)
    return tmp_path / "hosts"


def _pod_of(cli, hosts):
    return cli("k8s", f"docker://{UNREACHABLE}/monopole/hello:1", "--registry-config", hosts)


def test_a_mirrors_own_ca_is_trusted_and_without_it_the_failure_is_one_line(cli, tls_mirrors, tmp_path,
                                                                            certs):
    plain, _, _ = tls_mirrors
    # certs.d (the `certs` fixture) is empty: only hosts.toml can make the mirror trusted
    untrusted = _pod_of(cli, _hosts(tmp_path / "a", plain, ""))
    assert untrusted.exit_code == 2 and untrusted.stdout == ""
    assert len(untrusted.stderr.strip().splitlines()) == 1, untrusted.stderr
    assert f"mirror {plain.host}" in untrusted.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr.upper().replace(" ", "_")
    hosts = _hosts(tmp_path / "b", plain, '  ca = "mirror-ca.pem"\n')  # relative: to the hosts.toml folder
    shutil.copy(plain.ca, hosts / UNREACHABLE / "mirror-ca.pem")
    trusted = _pod_of(cli, hosts)
    assert trusted.exit_code == 0, trusted.stderr
    container = yaml.safe_load(trusted.stdout)["spec"]["containers"][0]
    assert container["image"] == f"{UNREACHABLE}/monopole/hello:1"  # the manifest's name, not the mirror's
    assert container["securityContext"] == {"runAsUser": 185, "runAsGroup": 185}
    assert "not applied" not in trusted.stderr
    skipping = _pod_of(cli, _hosts(tmp_path / "c", plain, "  skip_verify = true\n"))
    assert skipping.exit_code == 0, skipping.stderr
    missing = _pod_of(cli, _hosts(tmp_path / "d", plain, '  ca = "/nonexistent/ca.pem"\n'))
    assert missing.exit_code == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "CA file /nonexistent/ca.pem: cannot use it" in missing.stderr


def test_a_mirror_that_demands_a_client_certificate_gets_the_pair_hosts_toml_names(cli, tls_mirrors, tmp_path,
                                                                                   certs):
    _, mutual, (cert, key) = tls_mirrors
    ca = f'  ca = "{mutual.ca}"\n'
    without = _pod_of(cli, _hosts(tmp_path / "a", mutual, ca))
    assert without.exit_code == 2 and len(without.stderr.strip().splitlines()) == 1, without.stderr
    assert f"mirror {mutual.host}" in without.stderr and "wants a client certificate" in without.stderr
    paired = _pod_of(cli, _hosts(tmp_path / "b", mutual, ca + f'  client = [["{cert}", "{key}"]]\n'))
    assert paired.exit_code == 0, paired.stderr
    assert yaml.safe_load(paired.stdout)["spec"]["containers"][0]["securityContext"]["runAsUser"] == 185
    # Docker's certs.d holds the same for every connection to that host: its CA and a client pair
    folder = certs / mutual.host
    folder.mkdir(parents=True)
    shutil.copy(mutual.ca, folder / "ca.crt")
    shutil.copy(cert, folder / "client.cert")
    shutil.copy(key, folder / "client.key")
    assert _pod_of(cli, _hosts(tmp_path / "c", mutual, "")).exit_code == 0



KATA_POD = f"""apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  runtimeClassName: kata-qemu-tdx
  containers:
  - name: hello
    image: {UNREACHABLE}/monopole/hello:1
"""


def test_k8s_check_and_fix_read_through_a_mirror_with_its_own_ca_and_client_pair(cli, tls_mirrors, tmp_path,
                                                                                   certs):
    """The same hosts.toml trust as `k8s pod` on the other two commands' mirror path: without the pair
    the image is unreadable (one cause), with `ca` + `client` it is read and fixed."""
    _, mutual, (cert, key) = tls_mirrors
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(KATA_POD)
    ca = f'  ca = "{mutual.ca}"\n'
    without = cli("k8s", "check", "--format", "json", "--registry-config", _hosts(tmp_path / "a", mutual, ca),
                  manifest)
    assert without.exit_code == 1, without.stderr
    assert without.json()["totals"]["unreadable_refs"] == [f"{UNREACHABLE}/monopole/hello:1"]
    assert "wants a client certificate" in json.dumps(without.json()["workloads"])
    hosts = _hosts(tmp_path / "b", mutual, ca + f'  client = [["{cert}", "{key}"]]\n')
    checked = cli("k8s", "check", "--format", "json", "--registry-config", hosts, manifest)
    assert checked.json()["totals"]["unreadable_refs"] == [], checked.stdout
    rules = {f["rule"]: f["severity"] for f in checked.json()["workloads"][0]["findings"]}
    assert "KIF407" not in rules and rules.get("KIF402") == "warning"  # read: its USER 185 is judged
    fixed = cli("k8s", "fix", "--registry-config", hosts, "-o", "-", manifest)
    assert fixed.exit_code == 0, fixed.stderr
    context = yaml.safe_load(fixed.stdout)["spec"]["containers"][0]["securityContext"]
    assert context == {"runAsUser": 185, "runAsGroup": 185}
    assert only_lines_added(KATA_POD, fixed.stdout)
    refused = cli("k8s", "fix", "--registry-config", _hosts(tmp_path / "c", mutual, ca), "-o", "-", manifest)
    assert refused.exit_code == 1 and "not fixed:" in refused.stderr
