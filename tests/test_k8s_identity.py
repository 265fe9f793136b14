"""`k8s check` / `k8s fix` / `k8s REF` / `k8s pod --patch` judge and write the identity the kubelet,
containerd under guest pull and genpolicy agree on - whole pods, images in the real registry."""

from __future__ import annotations

import pytest
import yaml
from conftest import only_lines_added
from registries import push_spec, repo_name
from test_identity import IMAGES, _spec

from kata_imagefix.image.sources import open_image
from kata_imagefix.registry.client import RegistryClient
from kata_imagefix.users.identity import resolve_identity

pytestmark = pytest.mark.registry

GHOST = ("nobody", "root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n")  # a name its passwd lacks


@pytest.fixture(scope="module")
def refs(registry, tmp_path_factory) -> dict[str, str]:
    client = RegistryClient(registry.host)
    work = tmp_path_factory.mktemp("k8s-identity")
    out = {}
    for key, files in {**IMAGES, "ghost": GHOST}.items():
        repository = repo_name("k8s-id")
        push_spec(client, work, repository, "1", _spec(*files))
        out[key] = f"{registry.host}/{repository}:1"
    return out


# (pod name, pod securityContext, [(container, image key, securityContext, init?)], rules before the fix)
PODS = [
    ("name-bare", {}, [("c", "name", {}, False)], ["KIF401"]),
    ("name-pod-uid", {"runAsUser": 185}, [("c", "name", {}, False)], ["KIF402", "KIF408", "KIF409"]),
    ("name-c-uid", {}, [("c", "name", {"runAsUser": 185}, False)], ["KIF402", "KIF408", "KIF409"]),
    ("name-c-other-uid", {}, [("c", "name", {"runAsUser": 1000}, False)], ["KIF409"]),
    ("name-pod-gid", {"runAsGroup": 3000}, [("c", "name", {}, False)], ["KIF401"]),
    ("name-both", {"runAsUser": 185, "runAsGroup": 185}, [("c", "name", {}, False)], ["KIF408", "KIF409"]),
    ("name-fs-group", {"fsGroup": 4000}, [("c", "name", {}, False)], ["KIF401"]),
    ("name-non-root", {}, [("c", "name", {"runAsNonRoot": True}, False)], ["KIF401", "KIF403"]),
    ("name-init", {}, [("setup", "name", {}, True), ("c", "uid:gid", {}, False)],
     ["KIF401", "KIF402", "KIF408", "KIF409"]),
    ("uid-bare", {}, [("c", "uid", {}, False)], ["KIF402", "KIF408", "KIF409"]),
    ("uidgid-bare", {}, [("c", "uid:gid", {}, False)], ["KIF402", "KIF408", "KIF409"]),
    ("uidgid-lone-group", {"runAsGroup": 185}, [("c", "uid:gid", {}, False)], ["KIF408", "KIF409"]),
    ("uidname-bare", {}, [("c", "uid:groupname", {}, False)], ["KIF402", "KIF409"]),
    ("colon-gid", {}, [("c", ":gid", {}, False)], ["KIF402"]),
    ("wheel-bare", {}, [("c", "root-in-wheel", {}, False)], ["KIF408", "KIF409"]),
    ("wheel-groups", {"supplementalGroups": [10]}, [("c", "root-in-wheel", {}, False)], []),
    ("wheel-c-gid", {}, [("c", "root-in-wheel", {"runAsGroup": 5}, False)], ["KIF408", "KIF409"]),
    ("wheel-non-root", {"runAsNonRoot": True}, [("c", "root-in-wheel", {}, False)],
     ["KIF403", "KIF408", "KIF409"]),
    ("no-passwd", {}, [("c", "no-passwd", {}, False)], ["KIF409"]),
    ("not-in-passwd", {}, [("c", "uid-not-in-passwd", {}, False)], ["KIF409"]),
    ("blank-line", {}, [("c", "blank-line", {}, False)], ["KIF401"]),
    ("pair", {}, [("a", "name", {}, False), ("b", "root-in-wheel", {}, False)],
     ["KIF401", "KIF408", "KIF409"]),
    ("ghost", {}, [("c", "ghost", {}, False)], ["KIF401"]),
]
# what no securityContext can mend: the ids are nowhere to be found; runAsNonRoot on a root image
LEFT = {"wheel-non-root": ["KIF403"], "ghost": ["KIF401"]}


def manifest(refs: dict[str, str]) -> str:
    docs = []
    for name, pod_security, containers, _ in PODS:
        spec: dict = {"runtimeClassName": "kata-qemu-tdx"}
        if pod_security:
            spec["securityContext"] = pod_security
        for key, init in (("initContainers", True), ("containers", False)):
            listed = [{"name": c, "image": refs[image], **({"securityContext": sc} if sc else {})}
                      for c, image, sc, is_init in containers if is_init == init]
            if listed:
                spec[key] = listed
        docs.append(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                    "spec": spec}, sort_keys=False))
    return "---\n".join(docs)


def rules_by_pod(result) -> dict[str, list[str]]:
    return {w["workload"].split("/")[-1]: sorted({f["rule"] for f in w["findings"]})
            for w in result.json()["workloads"]}


def test_check_judges_what_the_process_will_really_run_as(cli, refs, tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text(manifest(refs))
    result = cli("k8s", "check", "--format", "json", "--fail-on", "never", path)
    assert result.exit_code == 0, result.stderr
    assert rules_by_pod(result) == {name: sorted(rules) for name, _, _, rules in PODS}


def test_check_messages_say_what_it_runs_as_and_what_to_set(cli, refs, tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text(manifest(refs))
    found = {(w["workload"].split("/")[-1], f["rule"]): f for w in cli(
        "k8s", "check", "--format", "json", path).json()["workloads"] for f in w["findings"]}
    lost = found[("uidgid-bare", "KIF402")]
    assert "will run as 185:0 under guest pull, not 185:185" in lost["message"]
    assert "runAsUser: 185, runAsGroup: 185" in lost["fix"] and "supplementalGroups: [2000]" in lost["fix"]
    policy = found[("wheel-bare", "KIF409")]
    assert "expects UID=0, GID=0, AdditionalGids={0, 10}" in policy["message"]
    assert "supplementalGroups: [10]" in policy["message"]
    assert "supplementary groups [10]" in found[("wheel-bare", "KIF408")]["message"]


def test_fix_writes_the_whole_explicit_identity_and_the_chain_then_agrees(cli, refs, tmp_path):
    path = tmp_path / "pods.yaml"
    original = manifest(refs)
    path.write_text(original)
    result = cli("k8s", "fix", "--in-place", path)
    assert result.exit_code == 1, result.stderr  # what cannot be mended is listed
    text = path.read_text()
    assert only_lines_added(original, text)  # values the manifest sets are kept
    after = cli("k8s", "check", "--format", "json", "--fail-on", "never", path)
    assert {name: rules for name, rules in rules_by_pod(after).items() if rules} == LEFT
    # the whole chain, container by container, on the manifest as written
    images = {key: open_image(f"docker://{ref}") for key, ref in refs.items()}
    by_ref = {ref: key for key, ref in refs.items()}
    for doc in yaml.safe_load_all(text):
        if doc["metadata"]["name"] in LEFT:
            continue
        spec = doc["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = images[by_ref[container["image"]]]
            identity = resolve_identity(image.user or "", image.read_file, container.get("securityContext"),
                                        spec.get("securityContext"))
            where = f"{doc['metadata']['name']}/{container['name']}"
            assert identity.guest.ids is not None, where
            target = identity.target.ids
            assert (identity.guest.ids.uid, identity.guest.ids.gid) == (target.uid, target.gid), where
            assert target.groups <= identity.guest.ids.groups, where
            assert not identity.policy.refuses and not identity.policy_denies, where
    again = cli("k8s", "fix", "--in-place", path)
    assert path.read_text() == text and "fixed" not in again.stdout  # idempotent


def test_k8s_ref_patch_and_fix_write_the_same_identity(cli, refs, tmp_path):
    for key in ("name", "uid:groupname", "root-in-wheel"):
        generated = yaml.safe_load(cli("k8s", f"docker://{refs[key]}", "--image-name", refs[key]).stdout)
        bare = tmp_path / f"{key.replace(':', '-')}.yaml"
        bare.write_text(f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  runtimeClassName: "
                        f"kata-qemu-tdx\n  containers:\n  - name: c\n    image: {refs[key]}\n")
        fixed, patched = tmp_path / f"fixed-{bare.name}", tmp_path / f"patched-{bare.name}"
        assert cli("k8s", "fix", bare, "-o", fixed).exit_code == 0
        assert cli("k8s", "pod", f"docker://{refs[key]}", "--image-name", refs[key], "--patch", bare,
                   "-o", patched).exit_code == 0
        assert patched.read_text() == fixed.read_text(), key

        def identity(pod: dict) -> tuple:
            spec = pod["spec"]
            return (spec.get("securityContext") or {}, spec["containers"][0].get("securityContext") or {})

        assert identity(generated) == identity(yaml.safe_load(fixed.read_text())), key
