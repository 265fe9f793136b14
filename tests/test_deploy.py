"""deploy/: the kustomize base and overlay render with the kustomize inside kubectl, every built-in object
validates against the Kubernetes schema, and the webhook is wired as docs/webhook.md says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.31"


def render(folder: str) -> list[dict]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed (Debian: kubernetes-client)")
    text = subprocess.run(["kubectl", "kustomize", str(ROOT / folder)], check=True, capture_output=True,
                          text=True).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


@pytest.mark.parametrize("folder", ["deploy/base", "deploy/overlays/cert-manager"])
def test_every_object_validates(folder):
    docs = render(folder)
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
