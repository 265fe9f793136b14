"""Derived from the rule catalogue: every rule has a case that fires and one that stays quiet."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kata_imagefix.rules import catalogue

CATALOGUE = catalogue()  # every rule loaded: the rules are imported by target, on demand

HERE = Path(__file__).parent


def _cases(name: str) -> list:
    path = HERE / f"test_{name}_rules.py"
    spec = importlib.util.spec_from_file_location(f"imagefix_rule_cases_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def test_every_rule_fires_once_and_stays_quiet_once_in_its_family_spec():
    cases = [c for family in ("user", "image", "kata", "pod") for c in _cases(family)]
    for rule_id in CATALOGUE:
        outcomes = {case[2] for case in cases if case[0] == rule_id}
        assert outcomes == {True, False}, f"{rule_id}: add a firing and a quiet case to tests/rules/"


def test_every_rule_has_a_title_and_a_fix_or_example_in_its_docs():
    for rule in CATALOGUE.values():
        assert rule.title and ("Fix" in rule.doc or "Good" in rule.doc or "Also" in rule.doc), rule.id
