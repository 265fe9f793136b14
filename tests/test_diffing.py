"""#26: the unified diff of a text's splices (diffing.py, `k8s fix --diff`): `patch` and `git apply` of it
onto the original give the spliced text byte for byte, and a region diffed whole is what
difflib.unified_diff wrote of the two whole texts."""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path
from unittest import mock

from conftest import patched
from hypothesis import given, settings
from hypothesis import strategies as st

from kata_imagefix import diffing
from kata_imagefix.diffing import spliced_diff

# lines that recur (difflib must align them), CRLF, a blank line, and text without a newline
PARTS = st.sampled_from(["a\n", "b\n", "  x: 1\n", "- y\n", "\n", "c\r\n", "tail"])
TEXTS = st.lists(PARTS, max_size=30).map("".join)


@st.composite
def edits(draw) -> tuple[str, list[int], list[int], list[str]]:
    original = draw(TEXTS)
    points = sorted(draw(st.lists(st.integers(0, len(original)), min_size=2, max_size=12)))
    starts, ends, news = [], [], []
    for start, end in zip(points[0::2], points[1::2], strict=False):
        new = draw(TEXTS.filter(lambda text, old=original[start:end]: text != old))
        starts.append(start)
        ends.append(end)
        news.append(new)
    return original, starts, ends, news


def spliced(original: str, starts: list[int], ends: list[int], news: list[str]) -> str:
    pieces, position = [], 0
    for start, end, new in zip(starts, ends, news, strict=True):
        pieces += [original[position:start], new]
        position = end
    return "".join(pieces) + original[position:]


@settings(max_examples=150)
@given(edits(), st.sampled_from(["whole", "by splice", "a group each"]))
def test_the_diff_of_splices_applies_to_give_the_spliced_text(edit, how):
    original, starts, ends, news = edit
    fixed = spliced(original, starts, ends, news)
    groups = ([(start, end, k, k + 1) for k, (start, end) in enumerate(zip(starts, ends, strict=True))]
              if how == "a group each" else [(0, len(original), 0, len(news))])
    with mock.patch.object(diffing, "WHOLE", -1 if how == "by splice" else diffing.WHOLE):
        diff = "".join(spliced_diff(original, starts, ends, news, groups, "a/f.yaml", "b/f.yaml"))
    if fixed == original:
        return
    with tempfile.TemporaryDirectory() as folder:
        assert patched(original, diff, Path(folder) / "patch") == fixed, diff
        assert patched(original, diff, Path(folder) / "git", "git") == fixed, diff
    lone_cr = "\r" in original.replace("\r\n", "") + fixed.replace("\r\n", "")
    if how == "whole" and original.endswith("\n") and fixed.endswith("\n") and not lone_cr:
        # the whole text as one region: what difflib made of the two texts (it cannot mark a missing
        # newline, and str.splitlines ends a line at a lone "\r" too, where patch does not)
        assert diff == "".join(difflib.unified_diff(original.splitlines(keepends=True),
                                                    fixed.splitlines(keepends=True), "a/f.yaml", "b/f.yaml"))


def test_a_last_line_without_a_newline_is_marked(tmp_path):
    original = "a\nb\nc"
    diff = "".join(spliced_diff(original, [2], [3], ["B"], [(0, 5, 0, 1)], "a/f", "b/f"))
    assert diff == "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\\ No newline at end of file\n"
    assert patched(original, diff, tmp_path) == "a\nB\nc"
    grown = "".join(spliced_diff(original, [5], [5], ["\nd\n"], [(0, 5, 0, 1)], "a/f", "b/f"))
    assert grown == ("--- a/f\n+++ b/f\n@@ -1,3 +1,4 @@\n a\n b\n-c\n\\ No newline at end of file\n+c\n+d\n")
    assert patched(original, grown, tmp_path / "grown", "git") == "a\nb\nc\nd\n"


def test_changes_six_lines_apart_share_a_hunk_seven_do_not():
    """As unified_diff groups them: 3 lines of context, hunks whose context would touch are one."""
    original = "".join(f"{i}\n" for i in range(30))

    def hunks(gap: int) -> list[str]:
        at = [2, 2 + sum(len(f"{i}\n") for i in range(1, gap + 1))]  # before line 1 and before 1 + gap
        diff = "".join(spliced_diff(original, at, at, ["new\n", "new\n"], [(0, len(original), 0, 2)],
                                    "a/f", "b/f"))
        fixed = spliced(original, at, at, ["new\n", "new\n"])
        assert diff == "".join(difflib.unified_diff(original.splitlines(keepends=True),
                                                    fixed.splitlines(keepends=True), "a/f", "b/f"))
        return [line for line in diff.splitlines() if line.startswith("@@")]

    assert hunks(6) == ["@@ -1,10 +1,12 @@"]
    assert hunks(7) == ["@@ -1,4 +1,5 @@", "@@ -6,6 +7,7 @@"]


def test_splices_that_change_no_line_make_no_diff():
    original = "a\nb\n"
    assert list(spliced_diff(original, [], [], [], [], "a/f", "b/f")) == []
    # "b" written anew, then its newline: one line as it was (no header without a hunk)
    assert "".join(spliced_diff(original, [2, 3], [3, 4], ["b", "\n"], [(0, 4, 0, 2)], "a/f", "b/f")) == ""
