"""KIF201-KIF204 on fake subjects: an image's layer sizes against the budget model."""

from __future__ import annotations

import pytest

from kata_imagefix.image.model import Image, Layer
from kata_imagefix.model.budget import BudgetModel
from kata_imagefix.rules import ImageSubject, catalogue

CATALOGUE = catalogue()  # every rule loaded: the rules are imported by target, on demand

MB = 10**6


DEFAULTS = BudgetModel()


def subject(*sizes: int, model: BudgetModel = DEFAULTS, max_layer: int = 100 * MB) -> ImageSubject:
    layers = [Layer(i, None, None, size, None, f"/bin/sh -c step {i}") for i, size in enumerate(sizes)]
    image = Image("oci:x", "oci", {"config": {}}, layers)
    return ImageSubject(image, model.estimate(image.unpacked_size), max_layer)


CASES = [
    ("KIF201", subject(150 * MB), True), ("KIF201", subject(90 * MB, 90 * MB), False),
    ("KIF202", subject(1200 * MB), True), ("KIF202", subject(600 * MB), False),
    ("KIF203", subject(600 * MB), True), ("KIF203", subject(200 * MB), False),
    ("KIF204", subject(1500 * MB), True), ("KIF204", subject(600 * MB), False),
    ("KIF203", subject(600 * MB, model=BudgetModel(create_timeout_s=120)), False),
    ("KIF202", subject(1200 * MB, model=BudgetModel(guest_memory_mib=4096)), False),
]


@pytest.mark.parametrize(("rule_id", "image", "fires"), CASES,
                         ids=[f"{c[0]}-{'fires' if c[2] else 'quiet'}-{i}" for i, c in enumerate(CASES)])
def test_image_rule(rule_id, image, fires):
    found = [f for f in CATALOGUE[rule_id].check(image) if f.rule == rule_id]
    assert bool(found) == fires, found
    for finding in found:
        assert finding.message and finding.fix
