"""KIF401-KIF420 on fake subjects: a workload's containers, their securityContexts and in-memory images.
(The identity model itself is tested against real registry images in tests/test_identity.py.)"""

from __future__ import annotations

import pytest
from in_memory_files import Files

from kata_imagefix.image.model import Image, Layer
from kata_imagefix.model.budget import BudgetModel
from kata_imagefix.model.workload import Container, Workload
from kata_imagefix.rules import catalogue
from kata_imagefix.rules.pod_subject import ContainerView, PodSubject

CATALOGUE = catalogue()  # every rule loaded: the rules are imported by target, on demand

PASSWD = b"root:x:0:0::/root:/bin/sh\nspark:x:185:185::/opt/spark:/bin/sh\n"
GROUP = b"root:x:0:\nspark:x:185:\n"
GROUPS = GROUP + b"extra:x:2000:spark\n"
MB = 10**6
TIMEOUT = "io.katacontainers.config.runtime.create_container_timeout"
MEMORY = "io.katacontainers.config.hypervisor.default_memory"


def image(user: str | None = "spark", size: int = 10 * MB, group: bytes = GROUP) -> Image:
    config = {"config": {"User": user} if user is not None else {}}
    return Image("oci:x", "oci", config, [Layer(0, None, None, size, None)],
                 contents=Files({"/etc/passwd": PASSWD, "/etc/group": group}))


def pod(*containers: tuple[dict, Image | None], pod_security: dict | None = None,
        model: BudgetModel | None = None, error: str | None = None, annotations: dict | None = None,
        runtime_class: str = "kata-qemu-tdx") -> PodSubject:
    workload = Workload("deploy.yaml", "Deployment", "ns", "app", runtime_class,
                        {k: str(v) for k, v in (annotations or {}).items()}, pod_security or {})
    workload.raw_annotations = dict(annotations or {})
    views = []
    for index, (security, img) in enumerate(containers):
        container = Container(f"c{index}", f"registry.example/app{index}:1", 10 + index, False, security,
                              None)
        workload.containers.append(container)
        views.append(ContainerView(container, workload.security, img, None if img else error))
    return PodSubject(workload, views, model or BudgetModel(), "the defaults", "the defaults")


CASES = [
    ("KIF401", pod(({}, image("spark"))), True),
    ("KIF401", pod(({"runAsUser": 185, "runAsGroup": 185}, image("spark"))), False),
    ("KIF401", pod(({}, image("spark")), pod_security={"runAsUser": 185}), False),
    ("KIF401", pod(({}, image("spark:"))), True),  # the user part is a name
    ("KIF401", pod(({}, image("185:spark"))), False),  # the group part never reaches containerd
    ("KIF402", pod(({"runAsUser": 185}, image("spark"))), True),
    ("KIF402", pod(({}, image("185"))), True),
    ("KIF402", pod(({}, image("185:185"))), True),  # the kubelet drops the image's group
    ("KIF402", pod(({"runAsGroup": 185}, image("185:185"))), False),
    ("KIF402", pod(({"runAsUser": 1001}, image("spark"))), False),
    ("KIF403", pod(({"runAsNonRoot": True}, image("spark"))), True),
    ("KIF403", pod(({"runAsNonRoot": True}, image(None))), True),
    ("KIF403", pod(({"runAsNonRoot": True, "runAsUser": 185, "runAsGroup": 185}, image("spark"))), False),
    ("KIF408", pod(({"runAsUser": 185, "runAsGroup": 185}, image("spark", group=GROUPS))), True),
    ("KIF408", pod(({"runAsUser": 185, "runAsGroup": 185}, image("spark", group=GROUPS)),
                   pod_security={"supplementalGroups": [2000]}), False),
    ("KIF409", pod(({}, image("185:185"))), True),  # implicit ids: genpolicy refuses
    ("KIF409", pod(({"runAsUser": 1000}, image("spark"))), True),  # it keeps gid 185, containerd gives 0
    ("KIF409", pod(({"runAsUser": 185, "runAsGroup": 185}, image("spark"))), False),
    ("KIF405", pod(({}, image("0:0", size=600 * MB))), True),
    ("KIF405", pod(({}, image("0:0", size=600 * MB)), model=BudgetModel(create_timeout_s=120)), False),
    # a large Kata timeout does not help past the kubelet's runtimeRequestTimeout (120 s by default)
    ("KIF405", pod(({}, image("0:0", size=1500 * MB)), model=BudgetModel(create_timeout_s=1200)), True),
    ("KIF405", pod(({}, image("0:0", size=1500 * MB)),
                   model=BudgetModel(create_timeout_s=1200, kubelet_timeout_s=600)), False),
    # ... nor past the guest's own agent.image_pull_timeout
    ("KIF405", pod(({}, image("0:0", size=12000 * MB)),
                   model=BudgetModel(create_timeout_s=3000, kubelet_timeout_s=3000)), True),
    ("KIF406", pod(({}, image("0:0", size=700 * MB)), ({}, image("0:0", size=700 * MB))), True),
    ("KIF406", pod(({}, image("0:0", size=300 * MB)), ({}, image("0:0", size=300 * MB))), False),
    ("KIF407", pod(({}, None), error="no manifest 1 (tag or digest unknown)"), True),
    ("KIF407", pod(({}, image("0:0"))), False),
    *[("KIF410", pod(({}, image("0:0")), annotations={TIMEOUT: value}), True)
      for value in ("+600", " 600", "6_00", "\uff16\uff10\uff10", "-1", "600s", 600, "18446744073709551616")],
    ("KIF410", pod(({}, image("0:0")), annotations={TIMEOUT: "600"}), False),
    ("KIF410", pod(({}, image("0:0")), annotations={TIMEOUT: "18446744073709551615"}), False),  # Go: 64-bit
    # runtime-rs trims and takes a sign, but only 32 bits
    ("KIF410", pod(({}, image("0:0")), annotations={TIMEOUT: " +600"},
                   runtime_class="kata-qemu-tdx-runtime-rs"), False),
    ("KIF410", pod(({}, image("0:0")), annotations={TIMEOUT: "4294967296"},
                   runtime_class="kata-qemu-tdx-runtime-rs"), True),
    # default_memory on a Go class that does not enable it: the pod is refused
    ("KIF410", pod(({}, image("0:0")), annotations={MEMORY: "4096"}, runtime_class="kata-qemu"), True),
    ("KIF410", pod(({}, image("0:0")), annotations={MEMORY: "4096"}), False),
    ("KIF420", pod(({"runAsUser": -1, "runAsGroup": 185}, image("spark"))), True),
    ("KIF420", pod(({}, image("spark")), pod_security={"runAsUser": 4294967296, "runAsGroup": 0}), True),
    ("KIF420", pod(({}, image("0:0")), pod_security={"supplementalGroups": [100, -5]}), True),
    ("KIF420", pod(({"runAsUser": 2147483647, "runAsGroup": 0}, image("spark")),
                   pod_security={"fsGroup": 0}), False),
]


@pytest.mark.parametrize(("rule_id", "subject", "fires"), CASES,
                         ids=[f"{c[0]}-{'fires' if c[2] else 'quiet'}-{i}" for i, c in enumerate(CASES)])
def test_pod_rule(rule_id, subject, fires):
    found = [f for f in CATALOGUE[rule_id].check(subject) if f.rule == rule_id]
    assert bool(found) == fires, found
    for finding in found:
        assert finding.message and finding.fix and finding.file == "deploy.yaml" and finding.line
        assert finding.data["workload"] == "ns/Deployment/app"
