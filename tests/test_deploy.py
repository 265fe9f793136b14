"""deploy/: the kustomize base and overlay render with the kustomize inside kubectl, every built-in object
validates against the Kubernetes schema, and the webhook is wired as docs/webhook.md says."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.31"


SERVICE_NAMES = ("imagefix-webhook.imagefix-system.svc", "imagefix-webhook.imagefix-system.svc.cluster.local")


def render(folder: str | Path) -> list[dict]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed (Debian: kubernetes-client)")
    text = subprocess.run(["kubectl", "kustomize", str(ROOT / folder)], check=True, capture_output=True,
                          text=True).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def static_cert(tmp_path_factory) -> Path:
    """A copy of deploy/ whose static-cert overlay has the files its comment says to make, made with the
    same openssl command."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    copy = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(ROOT / "deploy", copy)
    overlay = copy / "overlays" / "static-cert"
    names = ",".join(f"DNS:{name}" for name in SERVICE_NAMES)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-keyout",
                    "tls.key", "-out", "tls.crt", "-subj", f"/CN={SERVICE_NAMES[0]}", "-addext",
                    f"subjectAltName={names}"], cwd=overlay, check=True, capture_output=True)
    shutil.copyfile(overlay / "tls.crt", overlay / "ca.crt")
    return overlay


@pytest.mark.parametrize("folder", ["deploy/base", "deploy/overlays/cert-manager", "static-cert"])
def test_every_object_validates(folder, request):
    docs = render(request.getfixturevalue("static_cert") if folder == "static-cert" else folder)
    for doc in docs:
        if doc["apiVersion"].startswith("cert-manager.io/"):
            continue  # not a built-in kind: its fields are checked below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_webhook_is_opt_in_never_blocks_and_skips_its_own_namespace():
    kinds = by_kind(render("deploy/base"))
    namespace = kinds["Namespace"]["metadata"]["name"]
    for kind, path in (("MutatingWebhookConfiguration", "/mutate"), ("ValidatingWebhookConfiguration",
                                                                       "/validate")):
        (hook,) = kinds[kind]["webhooks"]
        assert hook["clientConfig"]["service"]["path"] == path
        assert hook["clientConfig"]["service"]["namespace"] == namespace
        assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"] and hook["timeoutSeconds"] == 10
        selector = {e["key"]: e for e in hook["namespaceSelector"]["matchExpressions"]}
        assert selector["imagefix.kata/webhook"]["operator"] == "In"
        assert selector["kubernetes.io/metadata.name"] == {"key": "kubernetes.io/metadata.name",
                                                           "operator": "NotIn", "values": [namespace]}
        assert hook["rules"][0]["operations"] == ["CREATE"] and hook["rules"][0]["resources"] == ["pods"]
    assert kinds["MutatingWebhookConfiguration"]["webhooks"][0]["reinvocationPolicy"] == "IfNeeded"


def test_the_deployment_runs_two_non_root_replicas_with_probes_and_arguments_the_command_takes():
    from kata_imagefix.cli.webhook_cmd import webhook_serve

    kinds = by_kind(render("deploy/base"))
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False  # no API access: least privilege
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:2] == ["webhook", "serve"]
    context = webhook_serve.make_context("serve", list(container["args"][2:]))  # click accepts them all
    assert context.params["deadline_seconds"] < 10  # below the webhooks' timeoutSeconds
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert "Role" not in kinds and "ClusterRole" not in kinds


def test_the_cert_manager_overlay_issues_the_mounted_secret_and_injects_the_ca():
    docs = render("deploy/overlays/cert-manager")
    kinds = by_kind(docs)
    certificate = kinds["Certificate"]
    secret = kinds["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
    assert certificate["spec"]["secretName"] == secret
    assert "imagefix-webhook.imagefix-system.svc" in certificate["spec"]["dnsNames"]
    wanted = f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert kinds[kind]["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == wanted


def test_the_static_cert_overlay_mounts_its_secret_and_the_ca_bundle_trusts_it_for_the_service(static_cert,
                                                                                               tmp_path):
    """The rendered objects, taken as the cluster would: the server runs with the Secret's files, and a client
    that trusts only the caBundle of each webhook configuration connects to it under the Service's name."""
    from test_webhook import Server

    docs = render(static_cert)
    kinds = by_kind(docs)
    secret = kinds["Secret"]
    assert secret["type"] == "kubernetes.io/tls" and secret["metadata"]["namespace"] == "imagefix-system"
    volume = kinds["Deployment"]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["name"] == "tls" and volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert secret["metadata"]["name"].startswith("imagefix-webhook-tls-")  # a content hash: rotation rolls
    files = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert files["ca.crt"] == (static_cert / "ca.crt").read_bytes()
    tls = tmp_path / "tls"
    tls.mkdir()
    for key in ("tls.crt", "tls.key"):
        (tls / key).write_bytes(files[key])
    started = Server(tmp_path, tls=(tls / "tls.crt", tls / "tls.key"))  # on the rendered Secret's own files
    try:
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            (hook,) = kinds[kind]["webhooks"]
            bundle = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
            assert "annotations" not in kinds[kind]["metadata"]  # no cert-manager injection here
            context = ssl.create_default_context(cadata=bundle)
            for name in SERVICE_NAMES:
                with socket.create_connection(("127.0.0.1", started.port), timeout=10) as sock, \
                        context.wrap_socket(sock, server_hostname=name) as conn:
                    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    assert conn.recv(64).startswith(b"HTTP/1.1 200"), (kind, name)
    finally:
        started.stop()


def test_the_webhook_and_the_fleet_audit_run_the_image_of_this_version_as_its_user(cli, tmp_path):
    """Both name the image the Dockerfile builds (tests/test_self_image.py), at the package's version, and
    the audit's arguments, as Kubernetes expands them, run `imagefix k8s check` to its result file."""
    from kata_imagefix import __version__

    (webhook,) = by_kind(render("deploy/base"))["Deployment"]["spec"]["template"]["spec"]["containers"]
    (job,) = yaml.safe_load_all((ROOT / "docs" / "examples" / "fleet-audit-job.yaml").read_text())
    pod = job["spec"]["template"]["spec"]
    (audit,) = pod["containers"]
    assert webhook["image"] == audit["image"] and audit["image"].endswith(f"/imagefix:{__version__}")
    assert "command" not in audit and "command" not in webhook  # the image's ENTRYPOINT, no shell
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsGroup"] == 65532
    listed = tmp_path / "workloads.json"  # what the init container's `kubectl get ... -o json` writes
    listed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "a"},
         "spec": {"containers": [{"name": "c", "image": "registry.example/web:1"}]}}]}))
    args = [arg.replace("$(JOB_COMPLETION_INDEX)", "0").replace("/work/workloads.json", str(listed))
            .replace("/results/", f"{tmp_path}/") for arg in audit["args"]]
    result = cli(*args)
    assert result.exit_code == 0, result.stdout + result.stderr
    totals = json.loads((tmp_path / "shard-0.json").read_text())["totals"]
    assert totals["shard"] == "0/4" and sum(totals["skipped"].values()) == 1  # the one pod, not on Kata
