"""Ids past 31 bits or below 0, end to end through the CLI: in a pod's securityContext (the API server
refuses them, containerd too) and in an image's /etc/passwd (containerd refuses them; older versions
wrapped 4294967296 to 0, root). `k8s check` finds them, `k8s fix`, `scan` and `fix` never write or offer
one."""

from __future__ import annotations

import json
import re

import pytest
from conftest import base_image
from make_samples import ImageSpec, base_layer
from registries import push_spec, repo_name, spark_like

from kata_imagefix.registry.client import RegistryClient

OUT_OF_RANGE = ["4294967296", "2147483648", "-1"]
PASSWD = "root:x:0:0::/root:/bin/sh\nspark:x:{uid}:{gid}::/opt/spark:/bin/sh\n"


def why_unusable(which: str, value: str) -> str:
    """containerd does not range-check an /etc/passwd id (moby/sys/user's Atoi, then a uint32 cast)."""
    cast = int(value) % 2**32
    return (f"user 'spark' has {which} {value} in /etc/passwd, outside 0..2147483647: containerd does "
            f"not check it and takes {cast}{' (root)' if cast == 0 else ''}")


@pytest.fixture(scope="module")
def refs(registry, tmp_path_factory) -> dict[str, str]:
    """Images in the loopback registry: spark as 185:185, and spark whose passwd line has a uid (or a gid)
    containerd refuses."""
    client = RegistryClient(registry.host)
    work = tmp_path_factory.mktemp("ids")
    specs = {"spark": spark_like("spark")}
    for uid, gid in (("4294967296", "185"), ("2147483648", "185"), ("185", "4294967296")):
        specs[f"{uid}:{gid}"] = ImageSpec([base_layer(PASSWD.format(uid=uid, gid=gid), "spark:x:185:\n")],
                                          config={"User": "spark"})
    out = {}
    for key, spec in specs.items():
        repository = repo_name("ids")
        push_spec(client, work, repository, "1", spec)
        out[key] = f"{registry.host}/{repository}:1"
    return out


def pod(image: str, *, user: str | None = None, on_pod: bool = False) -> str:
    """A Kata pod of one container, runAsUser (with runAsGroup 185) in the container's or the pod's
    securityContext, or none."""
    lines = ["apiVersion: v1", "kind: Pod", "metadata:", "  name: p", "spec:",
             "  runtimeClassName: kata-qemu-tdx"]
    security = [] if user is None else ["securityContext:", f"  runAsUser: {user}", "  runAsGroup: 185"]
    if on_pod:
        lines += [f"  {line}" for line in security]
    lines += ["  containers:", "  - name: c", f"    image: {image}"]
    if not on_pod:
        lines += [f"    {line}" for line in security]
    return "\n".join(lines) + "\n"


pytestmark = pytest.mark.registry


@pytest.mark.parametrize("on_pod", [False, True], ids=["container", "pod"])
@pytest.mark.parametrize("user", OUT_OF_RANGE)
def test_k8s_check_refuses_a_run_as_user_past_31_bits_or_below_0(cli, refs, tmp_path, user, on_pod):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(pod(refs["spark"], user=user, on_pod=on_pod))
    result = cli("k8s", "check", "--format", "json", manifest)
    assert result.exit_code == 1, result.stderr
    findings = {f["rule"]: f["message"] for f in result.json()["workloads"][0]["findings"]}
    whose = " (the pod's)" if on_pod else ""
    assert findings["KIF420"] == (f"container 'c' has runAsUser {user}{whose}: the API server accepts 0 to "
                                  "2147483647")
    assert f"uid {user} is outside 0..2147483647: containerd refuses it" in findings["KIF401"]
    text = cli("k8s", "check", manifest)
    assert text.exit_code == 1 and "KIF420" in text.stdout and "✗ FAIL  2 errors" in text.stdout
    assert cli("k8s", "check", "--fail-on", "never", manifest).exit_code == 0  # found, not failed


def test_k8s_check_takes_2147483647_the_largest_id_containerd_takes(cli, refs, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(pod(refs["spark"], user="2147483647"))
    result = cli("k8s", "check", "--format", "json", manifest)
    assert result.exit_code == 0 and result.json()["workloads"][0]["findings"] == []


@pytest.mark.parametrize("on_pod", [False, True], ids=["container", "pod"])
@pytest.mark.parametrize("user", OUT_OF_RANGE)
def test_k8s_fix_leaves_an_out_of_range_run_as_user_alone_and_says_so(cli, refs, tmp_path, user, on_pod):
    manifest = tmp_path / "pod.yaml"
    original = pod(refs["spark"], user=user, on_pod=on_pod)
    manifest.write_text(original)
    result = cli("k8s", "fix", "--in-place", manifest)
    assert result.exit_code == 1
    assert manifest.read_text() == original  # an explicit id is the user's: never replaced, never added to
    assert f"not fixed: default/Pod/p: KIF420 container 'c' has runAsUser {user}" in result.stderr


@pytest.mark.parametrize("uid", ["4294967296", "2147483648"])
def test_k8s_fix_never_writes_a_passwd_uid_past_31_bits(cli, refs, tmp_path, uid):
    manifest = tmp_path / "pod.yaml"
    original = pod(refs[f"{uid}:185"])
    manifest.write_text(original)
    check = cli("k8s", "check", manifest)
    assert check.exit_code == 1
    assert why_unusable("uid", uid) in " ".join(check.stdout.split())
    result = cli("k8s", "fix", "--in-place", manifest)
    assert result.exit_code == 1 and manifest.read_text() == original  # nothing written: no id to write
    assert "not fixed: default/Pod/p: KIF401" in result.stderr
    assert cli("k8s", "pod", refs[f"{uid}:185"]).exit_code == 2  # and no pod is offered with it


def test_k8s_fix_leaves_a_pod_whose_image_has_a_passwd_gid_past_31_bits_for_the_user(cli, refs, tmp_path):
    """runAsUser alone would run it as 185:0 under guest pull - not what the image means: nothing is
    written, the reason is said, and k8s check and k8s pod agree."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(pod(refs["185:4294967296"]))
    before = manifest.read_bytes()
    fixed = cli("k8s", "fix", "--in-place", manifest)
    assert fixed.exit_code == 1 and manifest.read_bytes() == before
    assert "not fixed" in fixed.stderr
    check = cli("k8s", "check", manifest)
    assert check.exit_code == 1
    assert why_unusable("gid", "4294967296") in " ".join(check.stdout.split())
    assert "on the host it would run as 185:0" in check.stdout  # what containerd makes of it: no fix
    assert "set runAsUser: 185" not in check.stdout
    assert cli("k8s", "pod", refs["185:4294967296"]).exit_code == 2


@pytest.mark.engine
@pytest.mark.parametrize(("uid", "gid"), [("4294967296", "185"), ("2147483648", "185"),
                                          ("185", "4294967296")])
def test_scan_and_fix_never_offer_a_passwd_id_past_31_bits(cli, engine, images, tmp_path, uid, gid):
    """A daemon image and its docker-archive, built by the engine with such a passwd line."""
    passwd = PASSWD.format(uid=uid, gid=gid).replace("\n", "\\n")  # printf's escapes
    tag = images.build(f"FROM {base_image()}\nRUN printf '{passwd}' > /etc/passwd && "
                       "printf 'root:x:0:\\nspark:x:185:\\n' > /etc/group\nUSER spark\n", name="bigid")
    archive = images.save(tag, tmp_path / "bigid.tar")
    bad, which = (uid, "uid") if uid != "185" else (gid, "gid")
    why = why_unusable(which, bad)
    for ref in (tag, f"docker-archive:{archive}"):
        scanned = cli("scan", "--format", "json", ref)
        assert scanned.exit_code == 1, scanned.stderr
        findings = {f["rule"]: f for f in scanned.json()["images"][0]["findings"]}
        assert findings["KIF104"]["message"].endswith(why)  # the id it has, and why it is no use
        offered = json.dumps([f.get("fix") for f in findings.values()])
        assert not re.search(r"USER \d", offered) and bad not in offered  # no numeric USER offered at all
        text = cli("scan", ref).stdout
        assert "KIF104" in text and why in " ".join(text.split()) and not re.search(r"USER \d", text)
        rendered = cli("fix", ref, "--no-build", "-o", tmp_path / "out")
        assert rendered.exit_code == 2 and not (tmp_path / "out").exists()
        assert rendered.stderr == (f"imagefix: error: {ref}: cannot write a numeric USER for 'spark': "
                                   f"{why}; use --user-mode reset or root\n")
    built = cli("fix", tag)
    assert built.exit_code == 2 and why in built.stderr
    assert not [t for image in engine.images() for t in image.get("RepoTags") or [] if t == f"{tag}-kata"]
