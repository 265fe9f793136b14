"""KIF101-KIF107 on fake subjects: a USER string and the files an image would have."""

from __future__ import annotations

import pytest

from kata_imagefix.rules import UserSubject, catalogue
from kata_imagefix.users import UserSpec, resolve_user

CATALOGUE = catalogue()  # every rule loaded: the rules are imported by target, on demand

PASSWD = b"root:x:0:0::/root:/bin/sh\nspark:x:185:185::/opt/spark:/bin/sh\napp:x:1001:0::/app:/bin/sh\n"
GROUP = b"root:x:0:\nspark:x:185:\n"
FILES = {"/etc/passwd": PASSWD, "/etc/group": GROUP}

# (rule, USER, fires?, files the image has, unknown) - every rule fires at least once and stays quiet once
CASES = [
    ("KIF101", "spark", True, FILES, None), ("KIF101", "root", True, FILES, None),
    ("KIF101", "185:spark", True, FILES, None), ("KIF101", "185:185", False, FILES, None),
    ("KIF102", "185", True, FILES, None), ("KIF102", "1001", False, FILES, None),
    ("KIF102", "4242", False, FILES, None), ("KIF102", "185:185", False, FILES, None),
    ("KIF103", "", True, FILES, None), ("KIF103", "0:0", True, FILES, None),
    ("KIF103", "root", False, FILES, None), ("KIF103", "185", False, FILES, None),
    ("KIF104", "ghost", True, FILES, None), ("KIF104", "spark", True, {}, None),
    ("KIF104", "spark", False, FILES, None),
    ("KIF105", "-1", True, FILES, None), ("KIF105", "a:b:c", True, FILES, None),
    ("KIF105", "2147483647", False, FILES, None),
    ("KIF106", "${NB_UID}", True, FILES, "the base image's ENV decides"),
    ("KIF106", "1000", False, FILES, None),
    ("KIF107", "185:185", True, FILES, None),  # the kubelet drops the group: the pod must say 185
    ("KIF107", "", False, FILES, None),  # root in no other group: nothing to make explicit
    ("KIF107", "ghost", False, FILES, None),  # no ids to give (KIF104 says so)
]


def fired(rule_id: str, raw: str, files: dict, unknown: str | None) -> list:
    spec = UserSpec.parse(raw)
    subject = UserSubject(spec, lambda: resolve_user(spec, files.get), unknown=unknown, read_file=files.get)
    return [f for f in CATALOGUE[rule_id].check(subject) if f.rule == rule_id]


@pytest.mark.parametrize(("rule_id", "raw", "fires", "files", "unknown"), CASES,
                         ids=[f"{c[0]}-{c[1] or 'empty'}-{'fires' if c[2] else 'quiet'}" for c in CASES])
def test_user_rule(rule_id, raw, fires, files, unknown):
    found = fired(rule_id, raw, files, unknown)
    assert bool(found) == fires, found
    for finding in found:
        assert finding.message and finding.fix


def test_an_unknown_user_silences_the_other_user_rules():
    for rule_id in ("KIF101", "KIF102", "KIF103", "KIF104", "KIF105"):
        assert fired(rule_id, "spark", FILES, "not known here") == []
