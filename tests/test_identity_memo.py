"""users/memo.py: an identity judgement kept in its Image answers exactly what judging afresh answers, for
every case of the identity model (tests/test_identity.py's table), and nothing it cannot key exactly is
kept."""

from __future__ import annotations

import datetime

import pytest
from in_memory_files import Files
from test_identity import CASES, IMAGES

from kata_imagefix.image.model import Image, Layer
from kata_imagefix.users import memo
from kata_imagefix.users.identity import explicit_identity, resolve_identity


def image(key: str) -> Image:
    user, passwd, group = IMAGES[key]
    files = {path: text.encode() for path, text in (("/etc/passwd", passwd), ("/etc/group", group)) if text}
    return Image("oci:x", "oci", {"config": {"User": user} if user else {}}, [Layer(0, None, None, 1, None)],
                 contents=Files(files))


def afresh(img: Image):
    return lambda path: img.read_file(path)  # not a bound method of an Image: never kept


@pytest.mark.parametrize(("key", "container", "pod"), [case[:3] for case in CASES])
def test_a_kept_judgement_is_the_one_made_afresh(key, container, pod):
    img = image(key)
    for sole in (False, True):
        first = explicit_identity(img.user, img.read_file, container, pod, sole=sole)
        assert first == explicit_identity(img.user, afresh(img), container, pod, sole=sole)
        assert explicit_identity(img.user, img.read_file, dict(container), dict(pod), sole=sole) is first
    resolved = resolve_identity(img.user, img.read_file, container, pod)
    assert resolved == resolve_identity(img.user, afresh(img), container, pod)
    assert resolve_identity(img.user, img.read_file, container, pod) is resolved
    assert img.judged  # kept in the image


def test_the_key_tells_apart_what_json_tells_apart_and_the_rest_is_not_kept():
    img = image("name")
    one = resolve_identity(img.user, img.read_file, {"runAsUser": 185}, {})
    other = resolve_identity(img.user, img.read_file, {"runAsUser": "185"}, {})  # a string is not a uid
    assert one != other and one.security.run_as_user == 185 and other.security.run_as_user is None
    kept = len(img.judged)
    odd = {"runAsUser": 185, "seLinuxOptions": {"level": datetime.date(2026, 1, 1)}}  # a YAML date
    assert resolve_identity(img.user, img.read_file, odd, {}) == resolve_identity(img.user, afresh(img), odd,
                                                                                  {})
    assert len(img.judged) == kept


def test_each_image_keeps_a_bounded_number(monkeypatch):
    monkeypatch.setattr(memo, "MAX_PER_IMAGE", 3)
    img = image("uid")
    for uid in range(10):
        resolve_identity(img.user, img.read_file, {"runAsUser": 1000 + uid}, {})
    assert len(img.judged) == 3
    assert resolve_identity(img.user, img.read_file, {"runAsUser": 1009}, {}).security.run_as_user == 1009
