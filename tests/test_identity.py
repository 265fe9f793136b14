"""The identity a pod's container really gets - kubelet, containerd, genpolicy - for images read from the
real registry (identity.py).

The expected outcomes below are written from reading the upstream source, not from imagefix's output:

- kubelet: pkg/kubelet/kuberuntime/helpers.go `getImageUser` (no image user -> uid 0),
  security_context.go `determineEffectiveSecurityContext` (runAsUser/runAsGroup container over pod;
  without runAsUser the image's uid or name; fsGroup + supplementalGroups sent as extra groups),
  security_context_others.go `verifyRunAsNonRoot`.
- containerd (main @ 301026e5): internal/cri/server/images/image_status.go:62-98 `getUserFromImage`
  (only the USER part before ':'), internal/cri/server/container_create.go:571-585 (`GenerateUserString`
  -> `oci.WithUser`), container_create_linux.go:39-64 (`WithAdditionalGIDs` + `WithSupplementalGroups`),
  pkg/oci/spec_opts.go:757-805 `WithUserID` (no passwd entry or file: gid 0), 813-864 `WithUsername`
  (lookup error fails the container), 869-940 `WithAdditionalGIDs` (groups listing the user, not the
  user's own-name group; missing files tolerated), 134-141 `ensureAdditionalGids`.
  Guest pull: the host's snapshot of the container has none of the image's files (nydus-snapshotter
  snapshot/process.go:38-76 skips the unpack).
- genpolicy (kata-containers @ 7c6ba40c54, 4.1): src/tools/genpolicy/src/registry.rs:362-481
  `get_process` (workload: group part ignored, gid from passwd), 797-853 (a line without exactly 7/4
  fields makes the file unusable), 278-307 `get_additional_groups_from_uid`; policy.rs:944-1111
  `get_container_process` (pod runAsUser -> gid from passwd or 0, pod runAsGroup clears the groups),
  847-942 `exit_if_guest_pull_needs_security_context`; pod.rs:1140-1215 (container runAsUser: gid from
  passwd, else the gid so far; container ids never clear the groups).
"""

from __future__ import annotations

import pytest
from make_samples import Entry, ImageSpec, LayerSpec
from registries import push_spec, repo_name

from kata_imagefix.image.sources import open_image
from kata_imagefix.registry.client import RegistryClient
from kata_imagefix.users.identity import explicit_identity, resolve_identity

pytestmark = pytest.mark.registry

ROOT = "root:x:0:0:root:/root:/bin/sh\n"
SPARK_PASSWD = ROOT + "spark:x:185:185:Spark:/opt/spark:/bin/sh\n"
SPARK_GROUP = "root:x:0:\nspark:x:185:\nextra:x:2000:spark\n"
APP_PASSWD = ROOT + "app:x:1000:1000::/app:/bin/sh\n"
APP_GROUP = "root:x:0:\napp:x:1000:\ndocker:x:999:\n"
BUSYBOX_GROUP = "root:x:0:\nwheel:x:10:root\n"
BLANK_PASSWD = ROOT + "\n" + "spark:x:185:185:Spark:/opt/spark:/bin/sh\n"  # containerd skips it

# key: (USER, /etc/passwd, /etc/group); None: no such file (or no USER)
IMAGES = {
    "name": ("spark", SPARK_PASSWD, SPARK_GROUP),
    "uid": ("185", SPARK_PASSWD, SPARK_GROUP),
    "uid:gid": ("185:185", SPARK_PASSWD, SPARK_GROUP),
    "uid:groupname": ("1000:docker", APP_PASSWD, APP_GROUP),
    ":gid": (":185", SPARK_PASSWD, SPARK_GROUP),
    "root-in-wheel": (None, ROOT, BUSYBOX_GROUP),
    "no-passwd": ("1000", None, None),
    "uid-not-in-passwd": ("1000", ROOT, "root:x:0:\n"),
    "blank-line": ("spark", BLANK_PASSWD, SPARK_GROUP),
}

NON_ROOT = {"runAsNonRoot": True}
SPARK_ALL = "runAsUser: 185, runAsGroup: 185, supplementalGroups: [2000]"  # genpolicy's demand

# (image, container securityContext, pod securityContext) -> (guest pull, host pull, genpolicy, kubelet
# refuses). Outcomes: "uid:gid+groups" or "FAIL" (containerd cannot create it); genpolicy: "ok" or what
# it demands, as its message prints it.
CASES = [
    # named USER: the kubelet sends the name, containerd looks it up (WithUsername)
    ("name", {}, {}, "FAIL", "185:185+2000", SPARK_ALL, False),
    ("name", {}, {"runAsUser": 185}, "185:0", "185:185+2000",
     SPARK_ALL, False),
    ("name", {"runAsUser": 185}, {}, "185:0", "185:185+2000",
     SPARK_ALL, False),
    ("name", {}, {"runAsUser": 1000}, "1000:0", "1000:0", "ok", False),  # pod path: no entry, gid 0
    ("name", {"runAsUser": 1000}, {}, "1000:0", "1000:0", "runAsUser: 1000, runAsGroup: 185",
     False),  # genpolicy keeps the image's gid 185 for a uid passwd does not list
    ("name", {}, {"runAsGroup": 3000}, "FAIL", "185:3000+2000",
     "runAsUser: 185, runAsGroup: 3000, supplementalGroups: [2000]", False),
    ("name", {"runAsGroup": 3000}, {}, "FAIL", "185:3000+2000",
     "runAsUser: 185, runAsGroup: 3000, supplementalGroups: [185, 2000]", False),  # 185 not cleared
    ("name", {}, {"runAsUser": 185, "runAsGroup": 185}, "185:185", "185:185+2000",
     "supplementalGroups: [2000]", False),
    ("name", {}, {"runAsUser": 185, "runAsGroup": 185, "supplementalGroups": [2000]}, "185:185+2000",
     "185:185+2000", "ok", False),
    ("name", {}, {"fsGroup": 4000}, "FAIL", "185:185+2000,4000",
     SPARK_ALL, False),
    ("name", NON_ROOT, {}, "FAIL", "185:185+2000", SPARK_ALL,
     True),  # the kubelet cannot verify a name
    ("name", {**NON_ROOT, "runAsUser": 185, "runAsGroup": 185}, {"supplementalGroups": [2000]},
     "185:185+2000", "185:185+2000", "ok", False),
    ("name", {"runAsUser": 1000, "runAsGroup": 1000}, {}, "1000:1000", "1000:1000",
     "supplementalGroups: [185]", False),  # the image's gid stays in genpolicy's set
    # numeric USER: the kubelet sends the uid only, whatever the group part says
    ("uid", {}, {}, "185:0", "185:185+2000", SPARK_ALL, False),
    ("uid", NON_ROOT, {}, "185:0", "185:185+2000", SPARK_ALL,
     False),
    ("uid:gid", {}, {}, "185:0", "185:185+2000", SPARK_ALL,
     False),
    ("uid:gid", {}, {"runAsGroup": 185}, "185:185", "185:185+2000",
     SPARK_ALL, False),  # valid: the kubelet sends 185
    ("uid:groupname", {}, {}, "1000:0", "1000:1000", "runAsUser: 1000, runAsGroup: 1000", False),  # no lookup
    (":gid", {}, {}, "0:0", "0:0", "ok", False),  # reported as no user: uid 0, its passwd group
    (":gid", NON_ROOT, {}, "0:0", "0:0", "ok", True),
    # no USER: uid 0, and root's groups of /etc/group (busybox: wheel)
    ("root-in-wheel", {}, {}, "0:0", "0:0+10", "supplementalGroups: [10]", False),
    ("root-in-wheel", {}, {"supplementalGroups": [10]}, "0:0+10", "0:0+10", "ok", False),
    ("root-in-wheel", {}, {"runAsUser": 1000}, "1000:0", "1000:0", "ok", False),
    ("root-in-wheel", {}, {"runAsGroup": 5}, "0:5", "0:5+10", "supplementalGroups: [10]", False),
    ("root-in-wheel", {"runAsGroup": 5}, {}, "0:5", "0:5+10", "supplementalGroups: [0, 10]", False),
    ("root-in-wheel", {}, {"fsGroup": 2000}, "0:0+2000", "0:0+10,2000", "supplementalGroups: [10]", False),
    ("root-in-wheel", NON_ROOT, {}, "0:0", "0:0+10", "supplementalGroups: [10]", True),
    # no passwd, or a uid it does not list: gid 0 everywhere
    ("no-passwd", {}, {}, "1000:0", "1000:0", "runAsUser: 1000", False),
    ("no-passwd", {"runAsUser": 1000}, {}, "1000:0", "1000:0", "ok", False),
    ("uid-not-in-passwd", {}, {}, "1000:0", "1000:0", "runAsUser: 1000", False),
    # a blank line: containerd reads past it, genpolicy cannot parse the file (the name becomes uid 0)
    ("blank-line", {}, {}, "FAIL", "185:185+2000", "ok", False),
    ("blank-line", {"runAsUser": 185, "runAsGroup": 185}, {"supplementalGroups": [2000]}, "185:185+2000",
     "185:185+2000", "supplementalGroups: [0]", False),
]


def _spec(user: str | None, passwd: str | None, group: str | None) -> ImageSpec:
    entries = [Entry("etc", kind="dir")]
    entries += [Entry("etc/passwd", passwd.encode())] if passwd is not None else []
    entries += [Entry("etc/group", group.encode())] if group is not None else []
    return ImageSpec([LayerSpec(entries, "/bin/sh -c #(nop) ADD file:accounts in / ")],
                     config={"User": user} if user is not None else {})


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory) -> dict[str, str]:
    client = RegistryClient(registry.host)
    work = tmp_path_factory.mktemp("identity")
    out = {}
    for key, (user, passwd, group) in IMAGES.items():
        repository = repo_name("identity")
        push_spec(client, work, repository, "1", _spec(user, passwd, group))
        out[key] = f"{registry.host}/{repository}:1"
    return out


@pytest.fixture(scope="module")
def images(pushed):
    return {key: open_image(f"docker://{ref}") for key, ref in pushed.items()}


def shown(outcome) -> str:
    if outcome.ids is None:
        return "FAIL"
    ids = outcome.ids
    return f"{ids.uid}:{ids.gid}" + (f"+{','.join(map(str, sorted(ids.groups)))}" if ids.groups else "")


@pytest.mark.parametrize(("key", "container", "pod", "guest", "host", "policy", "refused"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_what_each_step_makes_of_the_container(images, key, container, pod, guest, host, policy, refused):
    image = images[key]
    identity = resolve_identity(image.user or "", image.read_file, container, pod)
    assert (shown(identity.guest), shown(identity.host)) == (guest, host)
    assert (identity.policy.demands() if identity.policy.refuses else "ok") == policy
    assert (identity.refusal is not None) == refused


@pytest.mark.parametrize(("key", "container", "pod"), [c[:3] for c in CASES if not c[6]],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES) if not c[6]])
@pytest.mark.parametrize("sole", [True, False], ids=["one-container", "several"])
def test_the_explicit_identity_makes_the_whole_chain_agree(images, key, container, pod, sole):
    """What explicit_identity adds: under guest pull containerd then gives the target identity, genpolicy
    writes a policy and the policy matches what containerd sends - or it says why it cannot."""
    image = images[key]
    before = resolve_identity(image.user or "", image.read_file, container, pod)
    explicit = explicit_identity(image.user or "", image.read_file, container, pod, sole=sole)
    if explicit.left is not None:
        assert before.target.ids is None  # only a user whose ids are nowhere to be found
        return
    assert not set(explicit.container) & set(container)  # nothing the manifest sets is changed
    assert not set(explicit.pod) & set(pod)
    new_pod = {**pod, **explicit.pod}
    if explicit.pod_groups:
        new_pod["supplementalGroups"] = list(pod.get("supplementalGroups", [])) + list(explicit.pod_groups)
    after = resolve_identity(image.user or "", image.read_file, {**container, **explicit.container}, new_pod)
    target = before.target.ids
    assert after.guest.ids is not None and after.host.ids is not None
    assert (after.guest.ids.uid, after.guest.ids.gid) == (target.uid, target.gid)
    assert target.groups <= after.guest.ids.groups
    assert after.guest.ids.groups - target.groups == set(explicit.extra_groups)
    assert not after.policy.refuses and not after.policy_denies
    again = explicit_identity(image.user or "", image.read_file, {**container, **explicit.container}, new_pod,
                              sole=sole)
    assert not again  # idempotent: nothing more to add


@pytest.mark.parametrize(("key", "target", "written"), [
    ("name", "185:185+2000", ({"runAsUser": 185, "runAsGroup": 185}, {}, (2000,))),
    ("uid:gid", "185:185+2000", ({"runAsUser": 185, "runAsGroup": 185}, {}, (2000,))),
    ("uid:groupname", "1000:999", ({}, {"runAsUser": 1000, "runAsGroup": 999}, ())),  # docker's gid, not 1000
    (":gid", "0:185", ({}, {"runAsGroup": 185}, ())),
    ("root-in-wheel", "0:0+10", ({}, {}, (10,))),
    ("no-passwd", "1000:0", ({"runAsUser": 1000}, {}, ())),
    ("blank-line", "185:185+2000", ({}, {"runAsUser": 185, "runAsGroup": 185}, (2000,))),
])
def test_a_bare_pod_gets_the_identity_the_image_means(images, key, target, written):
    """The target is what `docker run` gives the image (its USER's group included); for a pod of one
    container the ids go to the pod where genpolicy would otherwise keep a group the image does not mean
    (`USER 1000:docker`: container-level runAsUser re-reads gid 1000 from passwd)."""
    image = images[key]
    identity = resolve_identity(image.user or "", image.read_file, {}, {})
    assert shown(identity.target) == target
    explicit = explicit_identity(image.user or "", image.read_file, {}, {}, sole=True)
    assert (explicit.container, explicit.pod, explicit.pod_groups) == written
    assert explicit.extra_groups == ()
