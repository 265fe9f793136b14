"""The background digest gives hashlib's answer for any blob size, and lets its thread go on failure."""

import hashlib
import threading

import pytest

from kata_imagefix.registry.digesting import BackgroundDigest


@pytest.mark.parametrize("sizes", [[], [10], [BackgroundDigest.THRESHOLD], [700_000, 700_000, 5],
                                   [1 << 20] * 40 + [3]])
def test_same_digest_as_hashlib(sizes):
    pieces = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    digest = BackgroundDigest("sha256")
    for piece in pieces:
        digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert digest.thread is None


def test_memory_in_flight_is_bounded_and_abandon_ends_the_thread(monkeypatch):
    monkeypatch.setattr(BackgroundDigest, "IN_FLIGHT", 4 << 20)
    digest = BackgroundDigest("sha256")
    for _ in range(20):
        digest.update(b"x" * (1 << 20))
        assert digest.queued <= (4 << 20) + (1 << 20)
    before = threading.active_count()
    digest.abandon()
    assert digest.thread is None and threading.active_count() == before - 1
