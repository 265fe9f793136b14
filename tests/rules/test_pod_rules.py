"""KIF401-KIF420 on fake subjects: a workload's containers, their securityContexts and in-memory images."""

from __future__ import annotations

import pytest

from kata_imagefix.image.model import Image, Layer
from kata_imagefix.k8s.manifests import Container, Workload
from kata_imagefix.kata.budget import BudgetModel
from kata_imagefix.rules import CATALOGUE
from kata_imagefix.rules.pod_subject import ContainerView, PodSubject

PASSWD = b"root:x:0:0::/root:/bin/sh\nspark:x:185:185::/opt/spark:/bin/sh\n"
GROUP = b"root:x:0:\nspark:x:185:\n"
MB = 10**6


class Files:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_file(self, path: str):
        return self.files.get(path)

    def layer_entries(self, how: str):
        raise ValueError("not needed")


def image(user: str | None = "spark", size: int = 10 * MB) -> Image:
    config = {"config": {"User": user} if user is not None else {}}
    return Image("oci:x", "oci", config, [Layer(0, None, None, size, None)],
                 contents=Files({"/etc/passwd": PASSWD, "/etc/group": GROUP}))


def pod(*containers: tuple[dict, Image | None], pod_security: dict | None = None,
        model: BudgetModel | None = None, error: str | None = None) -> PodSubject:
    workload = Workload("deploy.yaml", "Deployment", "ns", "app", "kata-qemu-tdx", {}, pod_security or {})
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
    ("KIF402", pod(({"runAsUser": 185}, image("spark"))), True),
    ("KIF402", pod(({}, image("185"))), True),
    ("KIF402", pod(({"runAsUser": 1001}, image("spark"))), False),
    ("KIF403", pod(({"runAsNonRoot": True}, image("spark"))), True),
    ("KIF403", pod(({"runAsNonRoot": True}, image(None))), True),
    ("KIF403", pod(({"runAsNonRoot": True, "runAsUser": 185, "runAsGroup": 185}, image("spark"))), False),
    ("KIF404", pod(({"runAsGroup": 185}, image("185:185"))), True),
    ("KIF404", pod(({"runAsGroup": 185}, image("185:185")), pod_security={"runAsUser": 185}), False),
    ("KIF405", pod(({}, image("0:0", size=600 * MB))), True),
    ("KIF405", pod(({}, image("0:0", size=600 * MB)), model=BudgetModel(create_timeout_s=120)), False),
    ("KIF406", pod(({}, image("0:0", size=700 * MB)), ({}, image("0:0", size=700 * MB))), True),
    ("KIF406", pod(({}, image("0:0", size=300 * MB)), ({}, image("0:0", size=300 * MB))), False),
    ("KIF407", pod(({}, None), error="no manifest 1 (tag or digest unknown)"), True),
    ("KIF407", pod(({}, image("0:0"))), False),
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
