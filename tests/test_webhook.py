"""`imagefix webhook serve`: a real server process, real AdmissionReview v1 JSON over real TLS, images in
the real registry; the JSONPatch it answers is applied with a JSON-patch library and the patched pod must
be what `imagefix k8s fix` writes for the same pod, and pass `imagefix k8s check`."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jsonpatch
import kubernetes_validate
import pytest
import yaml
from registries import free_port, make_certificate, push_spec, repo_name
from test_identity import IMAGES, _spec
from test_k8s_identity import GHOST, LEFT, PODS

from kata_imagefix.registry.client import RegistryClient
from kata_imagefix.webhook.admission import UNFIXED_ANNOTATION

pytestmark = pytest.mark.registry

# every image then needs more than the class's 60 s, less than the kubelet's 120 s
BUDGET = ("--pull-overhead", "50")
TIMEOUT = "io.katacontainers.config.runtime.create_container_timeout"


@pytest.fixture(scope="module")
def refs(registry, tmp_path_factory) -> dict[str, str]:
    client = RegistryClient(registry.host)
    work = tmp_path_factory.mktemp("webhook-images")
    out = {}
    for key, files in {**IMAGES, "ghost": GHOST}.items():
        repository = repo_name("webhook")
        push_spec(client, work, repository, "1", _spec(*files))
        out[key] = f"{registry.host}/{repository}:1"
    out["unreachable"] = f"127.0.0.1:{free_port()}/nowhere/app:1"
    return out


class Server:
    def __init__(self, folder: Path, *extra: str, tls: tuple[Path, Path] | None = None) -> None:
        self.cert, self.key = tls or make_certificate(folder)
        env = {**os.environ, "IMAGEFIX_CACHE_DIR": str(folder / "cache")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kata_imagefix", "webhook", "serve", "--tls-cert-file", str(self.cert),
             "--tls-private-key-file", str(self.key), "--listen", "127.0.0.1:0", "--deadline-seconds", "4",
             "--registry-timeout", "2", *BUDGET, *extra],
            stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stderr.readline()
        assert "listening on https://127.0.0.1:" in line, line
        self.port = int(line.rsplit(":", 1)[1])

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def review(self, path: str, review: dict | bytes) -> tuple[int, dict]:
        body = review if isinstance(review, bytes) else json.dumps(review).encode()
        status, data = self.request("POST", path, body, {"Content-Type": "application/json"})
        return status, json.loads(data)

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.stderr.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = Server(tmp_path_factory.mktemp("webhook"), "--also-templates")
    yield started
    started.stop()


def pod(name: str, refs: dict[str, str], pod_security: dict, containers: list, runtime_class: str | None =
        "kata-qemu-tdx", annotations: dict | None = None) -> dict:
    spec: dict = {"runtimeClassName": runtime_class} if runtime_class else {}
    if pod_security:
        spec["securityContext"] = copy.deepcopy(pod_security)
    for key, init in (("initContainers", True), ("containers", False)):
        listed = [{"name": c, "image": refs[image], **({"securityContext": dict(sc)} if sc else {})}
                  for c, image, sc, is_init in containers if is_init == init]
        if listed:
            spec[key] = listed
    metadata: dict = {"name": name, "namespace": "team-a"}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def admission_review(obj: dict, operation: str = "CREATE", dry_run: bool = False,
                     old: dict | None = None) -> dict:
    """The shape of the Kubernetes API reference (admission.k8s.io/v1 AdmissionReview)."""
    group, _, version = obj["apiVersion"].rpartition("/")
    kind = {"group": group, "version": version, "kind": obj["kind"]}
    resource = {"group": group, "version": version, "resource": obj["kind"].lower() + "s"}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": kind, "resource": resource, "requestKind": kind,
        "requestResource": resource,
        "name": obj["metadata"].get("name", ""), "namespace": "team-a", "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


def patched(obj: dict, response: dict) -> dict:
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.JsonPatch(ops).apply(obj)


def leaves(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*prefix, key))
    elif isinstance(node, list) and not all(isinstance(v, int) for v in node):
        for index, value in enumerate(node):
            yield from leaves(value, (*prefix, index))
    else:
        yield prefix, node


def at(node, path):
    for key in path:
        node = node[key]
    return node


def identity_and_annotations(doc: dict) -> dict:
    spec = doc["spec"]
    annotations = {k: v for k, v in (doc["metadata"].get("annotations") or {}).items()
                   if k != UNFIXED_ANNOTATION}
    return {"pod": spec.get("securityContext") or {}, "annotations": annotations,
            "containers": {c["name"]: c.get("securityContext") or {}
                           for c in spec.get("initContainers", []) + spec["containers"]}}


def test_mutate_writes_what_k8s_fix_writes_and_nothing_fixable_is_left(server, refs, cli, tmp_path):
    pods = [pod(name, refs, pod_security, containers) for name, pod_security, containers, _ in PODS]
    manifest = tmp_path / "pods.yaml"
    manifest.write_text("---\n".join(yaml.safe_dump(p, sort_keys=False) for p in pods))
    fixed = tmp_path / "fixed.yaml"
    cli("k8s", "fix", "-o", fixed, *BUDGET, manifest)
    by_fix = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(fixed.read_text())}
    out = []
    for original in pods:
        name = original["metadata"]["name"]
        status, review = server.review("/mutate", admission_review(original))
        assert status == 200, review
        response = review["response"]
        assert response["allowed"] is True and response["uid"], name
        after = patched(original, response)
        assert identity_and_annotations(after) == identity_and_annotations(by_fix[name]), name
        for path, value in leaves(original):  # nothing the pod set changed
            assert at(after, path) == value, (name, path)
        assert int(after["metadata"]["annotations"][TIMEOUT]) > 0, name
        if name in LEFT:
            assert after["metadata"]["annotations"][UNFIXED_ANNOTATION] == ",".join(LEFT[name]), name
            assert any(LEFT[name][0] in w for w in response["warnings"]), name
        else:
            assert UNFIXED_ANNOTATION not in after["metadata"]["annotations"], name
            assert not response.get("warnings"), (name, response.get("warnings"))
        kubernetes_validate.validate(after, "1.31", strict=True)  # the patched pod is schema-valid
        _, again = server.review("/mutate", admission_review(after))  # reinvocationPolicy: IfNeeded
        assert "patch" not in again["response"], name  # the patched pod needs nothing more
        out.append(after)
    result_path = tmp_path / "patched.yaml"
    result_path.write_text("---\n".join(yaml.safe_dump(p, sort_keys=False) for p in out))
    check = cli("k8s", "check", "--format", "json", "--fail-on", "never", *BUDGET, result_path)
    left = {w["workload"].split("/")[-1]: sorted({f["rule"] for f in w["findings"]})
            for w in check.json()["workloads"]}
    assert {name: rules for name, rules in left.items() if rules} == LEFT
    again = cli("k8s", "fix", "--check", *BUDGET, result_path)  # k8s fix finds nothing to write either
    # exit 1: the errors no edit can mend (LEFT) remain, and are all it names
    assert again.exit_code == 1 and "would fix" not in again.stdout, again.stdout + again.stderr
    assert {line.split(":")[1].split("/")[-1] for line in again.stderr.splitlines()} == set(LEFT)


def test_dry_run_gets_the_same_answer_and_update_is_left_alone(server, refs):
    obj = pod("dry", refs, {}, [("c", "name", {}, False)])
    _, real = server.review("/mutate", admission_review(obj))
    _, dry = server.review("/mutate", admission_review(obj, dry_run=True))
    assert dry["response"]["patch"] == real["response"]["patch"]
    _, update = server.review("/mutate", admission_review(obj, "UPDATE", old=obj))
    assert update["response"]["allowed"] is True and "patch" not in update["response"]


def test_a_pod_not_on_kata_and_a_pod_with_everything_set_are_not_patched(server, refs):
    plain = pod("runc", refs, {}, [("c", "name", {}, False)], runtime_class=None)
    _, review = server.review("/mutate", admission_review(plain))
    assert review["response"] == {"uid": review["response"]["uid"], "allowed": True}
    complete = pod("complete", refs, {"runAsUser": 185, "runAsGroup": 185, "supplementalGroups": [2000]},
                   [("c", "uid:gid", {}, False)], annotations={TIMEOUT: "100000"})
    _, review = server.review("/mutate", admission_review(complete))
    assert review["response"]["allowed"] is True and "patch" not in review["response"], review
    assert not review["response"].get("warnings")
    _, judged = server.review("/validate", admission_review(complete))
    assert judged["response"]["allowed"] is True and not judged["response"].get("warnings")


def test_validate_denies_with_the_rule_and_its_fix(server, refs):
    obj = pod("named", refs, {}, [("c", "name", {}, False)])
    _, review = server.review("/validate", admission_review(obj))
    response = review["response"]
    assert response["allowed"] is False
    assert "KIF401" in response["status"]["message"] and "Fix:" in response["status"]["message"]
    assert "runAsUser: 185" in response["status"]["message"]
    _, mutated = server.review("/mutate", admission_review(obj))  # mutate first, as the API server does
    fixed = patched(obj, mutated["response"])
    _, after = server.review("/validate", admission_review(fixed))
    assert after["response"]["allowed"] is True and not after["response"].get("warnings")


def test_an_unreachable_image_is_admitted_unchanged_with_a_warning(server, refs):
    obj = pod("offline", refs, {}, [("c", "unreachable", {}, False)])
    for path in ("/mutate", "/validate"):
        status, review = server.review(path, admission_review(obj))
        response = review["response"]
        assert status == 200 and response["allowed"] is True and "patch" not in response, path
        warning = response["warnings"][0]
        assert refs["unreachable"] in warning and "admitted unchanged" in warning


def test_malformed_reviews_get_an_admission_review_error(server):
    status, review = server.review("/mutate", b"{not json")
    assert status == 400 and review["kind"] == "AdmissionReview"
    assert review["response"]["allowed"] is True and "not JSON" in review["response"]["status"]["message"]
    wrong = {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u-1"}}
    status, review = server.review("/mutate", wrong)
    assert status == 200 and review["response"]["uid"] == "u-1" and review["response"]["allowed"] is True
    assert "admission.k8s.io/v1" in review["response"]["status"]["message"]
    no_object = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"uid": "u-2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                             "operation": "CREATE", "object": "nonsense"}}
    status, review = server.review("/validate", no_object)
    assert status == 200 and review["response"]["status"]["code"] == 400
    oversized = {"Content-Length": str(5 * 2**20)}  # refused from its header, before any byte is read
    assert server.request("POST", "/mutate", b"", oversized)[0] == 413
    assert server.request("GET", "/healthz")[0] == 200  # still up


def test_health_readiness_and_metrics(server, refs):
    obj = pod("metered", refs, {}, [("c", "uid", {}, False)])
    server.review("/mutate", admission_review(obj))
    server.review("/mutate", admission_review(obj))
    assert server.request("GET", "/healthz") == (200, b"ok\n")
    assert server.request("GET", "/readyz") == (200, b"ok\n")
    _, body = server.request("GET", "/metrics")
    text = body.decode()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values['imagefix_webhook_requests_total{path="/mutate",outcome="mutated"}'] >= 2
    assert values["imagefix_webhook_image_cache_hits_total"] >= 1
    assert values["imagefix_webhook_answer_cache_hits_total"] >= 1  # the same pod again: judged once
    assert values["imagefix_webhook_image_reads_total"] >= 1
    assert values['imagefix_webhook_request_duration_seconds_count{path="/mutate"}'] >= 2
    assert values["imagefix_webhook_failures_total{path=\"/mutate\"}"] >= 0


def test_the_certificate_is_reloaded_when_its_files_change(tmp_path):
    started = Server(tmp_path / "tls")
    try:
        def served() -> bytes:
            with ssl.create_connection(("127.0.0.1", started.port), timeout=10) as sock:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                with context.wrap_socket(sock) as tls:
                    return tls.getpeercert(binary_form=True)

        first = served()
        fresh_cert, fresh_key = make_certificate(tmp_path / "rotated")
        os.replace(fresh_key, started.key)  # cert-manager writes the Secret's files anew
        os.replace(fresh_cert, started.cert)
        wanted = ssl.PEM_cert_to_DER_cert(started.cert.read_text())
        for _ in range(50):
            if served() == wanted:
                break
            time.sleep(0.2)
        assert served() == wanted != first
    finally:
        started.stop()


def test_requests_at_once_get_the_answers_they_get_one_by_one(server, refs):
    from concurrent.futures import ThreadPoolExecutor

    pods = [pod(name, refs, pod_security, containers) for name, pod_security, containers, _ in PODS[:12]]
    alone = [server.review("/mutate", admission_review(p))[1]["response"].get("patch") for p in pods]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda p: server.review("/mutate", admission_review(p))[1]["response"]
                                 .get("patch"), pods * 3))
    assert together == alone * 3


def test_a_registry_that_stalls_past_the_deadline_gets_allowed_unchanged(tmp_path):
    from registries import FaultServer

    stalled = FaultServer(b"", b"", hang=True)  # a registry that accepts and never answers
    started = Server(tmp_path / "slow", "--registry-timeout", "25", "--deadline-seconds", "1")
    try:
        obj = pod("stalled", {"app": f"{stalled.host}/team/app:1"}, {}, [("c", "app", {}, False)])
        for path in ("/mutate", "/validate"):
            status, review = started.review(path, admission_review(obj))
            response = review["response"]
            assert status == 200 and response["allowed"] is True and "patch" not in response, review
            assert "deadline" in response["warnings"][0] and "admitted unchanged" in response["warnings"][0]
        assert started.request("GET", "/healthz")[0] == 200
        _, body = started.request("GET", "/metrics")
        # the read that missed its deadline is counted (the second answer may come from the answer memo)
        assert re.search(r"^imagefix_webhook_image_deadline_misses_total [12]$", body.decode(), re.M)
    finally:
        stalled.stop_event.set()
        stalled.stop()
        started.stop()


def test_bad_tls_files_or_listen_address_are_one_line_errors(cli, tmp_path):
    cert, key = make_certificate(tmp_path / "a")
    other_cert, _ = make_certificate(tmp_path / "b")
    for args, words in (((other_cert, key, "127.0.0.1:0"), "belong together"),
                        ((tmp_path / "missing.pem", key, "127.0.0.1:0"), "belong together"),
                        ((cert, key, "localhost"), "HOST:PORT")):
        result = cli("webhook", "serve", "--tls-cert-file", args[0], "--tls-private-key-file", args[1],
                     "--listen", args[2])
        assert result.exit_code == 2 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def deployment(refs: dict[str, str]) -> dict:
    template = pod("web", refs, {}, [("c", "name", {}, False)])
    del template["apiVersion"], template["kind"], template["metadata"]["name"]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {**template, "metadata": {"labels": {"app": "web"}}}}}


def test_also_templates_fixes_a_deployment_as_k8s_fix_does(server, refs, cli, tmp_path):
    obj = deployment(refs)
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml.safe_dump(obj, sort_keys=False))
    fixed = tmp_path / "fixed.yaml"
    cli("k8s", "fix", "-o", fixed, *BUDGET, manifest)
    want = yaml.safe_load(fixed.read_text())["spec"]["template"]
    for operation in ("CREATE", "UPDATE"):
        _, review = server.review("/mutate", admission_review(obj, operation, old=obj))
        after = patched(obj, review["response"])
        assert identity_and_annotations(after["spec"]["template"]) == identity_and_annotations(want)
        assert after["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {"runAsUser": 185,
                                                                                         "runAsGroup": 185}


def test_warn_only_validation_warns_where_it_would_deny(tmp_path, refs):
    started = Server(tmp_path / "warn", "--warn-only")
    try:
        _, review = started.review("/mutate", admission_review(deployment(refs)))
        assert review["response"] == {"uid": review["response"]["uid"], "allowed": True}  # not asked to
        obj = pod("named", refs, {}, [("c", "name", {}, False)])
        _, review = started.review("/validate", admission_review(obj))
        response = review["response"]
        assert response["allowed"] is True and "status" not in response
        fixes = [w for w in response["warnings"] if w.startswith("imagefix KIF401 Fix: ")]
        assert fixes and "runAsUser: 185" in fixes[0], response
    finally:
        started.stop()


def test_a_tag_is_re_resolved_after_its_ttl_and_kept_before(server, registry, tmp_path):
    from test_identity import ROOT, SPARK_GROUP, SPARK_PASSWD

    client = RegistryClient(registry.host)
    repository = repo_name("webhook-ttl")
    push_spec(client, tmp_path, repository, "1", _spec("spark", SPARK_PASSWD, SPARK_GROUP))
    refs = {"app": f"{registry.host}/{repository}:1"}
    obj = pod("moving", refs, {}, [("c", "app", {}, False)])

    def uid(started: Server) -> int:
        _, review = started.review("/mutate", admission_review(obj))
        return patched(obj, review["response"])["spec"]["containers"][0]["securityContext"]["runAsUser"]

    fresh = Server(tmp_path / "ttl0", "--tag-ttl-seconds", "0", "--insecure-port", str(free_port()))
    try:
        assert uid(server) == uid(fresh) == 185
        moved = ROOT + "spark:x:200:200:Spark:/opt/spark:/bin/sh\n"  # the tag now names another image
        push_spec(client, tmp_path, repository, "1", _spec("spark", moved, "root:x:0:\nspark:x:200:\n"))
        assert uid(fresh) == 200  # TTL 0: every request resolves the tag again
        assert uid(server) == 185  # TTL 300 s: the digest read before still answers
        plain = http.client.HTTPConnection("127.0.0.1", int(fresh.process.args[-1]), timeout=10)
        plain.request("GET", "/healthz")  # --insecure-port: plain HTTP beside HTTPS, for tests
        assert plain.getresponse().status == 200
        plain.close()
    finally:
        fresh.stop()
