"""A unified diff made from a text's edits, not from the two whole texts: `k8s fix --diff` of a
100,000-item List.

difflib.unified_diff of the whole file split both texts (25 MB, a million lines each there) and ran
SequenceMatcher over them: it did not end in 10 minutes, and its autojunk heuristic (a line found in
more than 1% of a big text is junk) made its alignment of such a file poor anyway. Here the edits are
splices (original[start:end] becomes a new text, in order, never overlapping): difflib runs on each
changed region alone - a small document whole, as a diff of the small file saw it, a big one splice by
splice, each widened to whole lines - its line numbers offset to the file's. The hunks are grouped as
unified_diff groups them (3 lines of context; changes at most 6 equal lines apart share a hunk), and
written a hunk at a time: until its header is written a hunk holds numbers only, its lines are read
again from the original and the splices as they are written. `patch` of the diff onto the original gives
the spliced text byte for byte (a last line without a newline is marked so).
"""

from __future__ import annotations

import difflib
from array import array
from collections.abc import Iterable, Iterator, Sequence

CONTEXT = 3  # unified_diff's n
WHOLE = 64 * 1024  # a changed document up to this size is diffed whole, beyond it splice by splice
NO_NEWLINE = "\n\\ No newline at end of file\n"
FLUSH = 4096  # lines of a hunk joined into one piece


def lines(text: str) -> list[str]:
    """The lines of `text`, each with its newline (the last may have none). Only "\\n" ends a line, as
    for patch (str.splitlines also splits at "\\r", "\\x0c", "\\u2028" ...)."""
    parts = text.split("\n")
    last = parts.pop()
    out = [part + "\n" for part in parts]
    if last:
        out.append(last)
    return out


def spliced_diff(original: str, starts: Sequence[int], ends: Sequence[int], news: Sequence[str],
                 groups: Iterable[tuple[int, int, int, int]], from_file: str, to_file: str) -> Iterator[str]:
    """The unified diff of `original` to `original` with splice k (original[starts[k]:ends[k]] ->
    news[k]) made, in pieces. `groups` are (begin, end, first, stop): splices first..stop-1 lie in
    original[begin:end] (a document); a group up to WHOLE characters is diffed whole, a bigger one
    splice by splice. Nothing when no line differs."""
    if not news:
        return
    splices = _Splices(original, starts, ends, news)
    total = original.count("\n") + (1 if original and not original.endswith("\n") else 0)
    hunk = _Hunk(splices, total, f"--- {from_file}\n+++ {to_file}\n")
    line = position = delta = 0  # `line` is the original line `position` begins; delta: lines added
    for begin, end, first, stop in splices.regions(groups):
        line += original.count("\n", position, begin)
        position = begin
        old, new = lines(original[begin:end]), lines(splices.text(begin, end, first, stop))
        splices.cache = (first, new)
        region = (begin, end, first, stop, line, line + delta)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
            if tag == "equal":
                continue
            if hunk.ops and line + i1 - hunk.ops[-3] > 2 * CONTEXT:
                yield from hunk.written()
            hunk.add(region, line + i1, line + i2, line + delta + j1, line + delta + j2)
        delta += len(new) - len(old)
    if hunk.ops:
        yield from hunk.written()


class _Splices:
    """The original and its splices, and the text of a region with them made."""

    def __init__(self, original: str, starts: Sequence[int], ends: Sequence[int],
                 news: Sequence[str]) -> None:
        self.original, self.starts, self.ends, self.news = original, starts, ends, news
        self.cache: tuple[int, list[str]] = (-1, [])  # the new lines of the region last diffed (its first)

    def text(self, begin: int, end: int, first: int, stop: int) -> str:
        """original[begin:end] with splices first..stop-1 made."""
        original, starts, ends, news = self.original, self.starts, self.ends, self.news
        pieces: list[str] = []
        position = begin
        for k in range(first, stop):
            pieces += (original[position:starts[k]], news[k])
            position = ends[k]
        pieces.append(original[position:end])
        return "".join(pieces)

    def new_lines(self, begin: int, end: int, first: int, stop: int) -> list[str]:
        if self.cache[0] != first:
            self.cache = (first, lines(self.text(begin, end, first, stop)))
        return self.cache[1]

    def regions(self, groups: Iterable[tuple[int, int, int, int]]) -> Iterator[tuple[int, int, int, int]]:
        """(begin, end, first, stop) of each region difflib is run on: whole lines of the original holding
        splices first..stop-1, the text they make ending a line too; regions that would share a line are
        one."""
        spans = self._spans(groups)
        pending = next(spans, None)
        while pending is not None:
            begin, end, first, stop = pending
            pending = next(spans, None)
            while True:
                joins = not self._ends_line(begin, end, first, stop)  # the new text runs on into what follows
                if pending is not None and (pending[0] < end or (joins and pending[0] == end)):
                    end, stop = max(end, pending[1]), pending[3]
                    pending = next(spans, None)
                elif joins and end < len(self.original):
                    end = self._line_end(end + 1)
                else:
                    break
            yield begin, end, first, stop

    def _spans(self, groups: Iterable[tuple[int, int, int, int]]) -> Iterator[tuple[int, int, int, int]]:
        starts, ends = self.starts, self.ends
        for begin, end, first, stop in groups:
            if first >= stop:
                continue
            if end - begin <= WHOLE:
                yield (self._line_start(min(begin, starts[first])), self._line_end(max(end, ends[stop - 1])),
                       first, stop)
            else:
                for k in range(first, stop):
                    yield self._line_start(starts[k]), self._line_end(ends[k]), k, k + 1

    def _line_start(self, position: int) -> int:
        return self.original.rfind("\n", 0, position) + 1

    def _line_end(self, position: int) -> int:
        """Where the line holding original[position - 1] ends (`position` itself at a line's start)."""
        original = self.original
        if position == 0 or original[position - 1] == "\n":
            return position
        newline = original.find("\n", position)
        return len(original) if newline < 0 else newline + 1

    def _ends_line(self, begin: int, end: int, first: int, stop: int) -> bool:
        """Whether original[begin:end] with the splices made is empty or ends with a newline."""
        original, starts, ends, news = self.original, self.starts, self.ends, self.news
        after = end
        for k in range(stop - 1, first - 1, -1):
            if ends[k] < after:
                return original[after - 1] == "\n"
            if news[k]:
                return news[k].endswith("\n")
            after = starts[k]
        return after == begin or original[after - 1] == "\n"


class _Hunk:
    """The changes of one hunk as numbers: per region (begin, end, first, stop, its first original line,
    its first new line), per change (its region, original lines a1..a2-1, new lines b1..b2-1)."""

    def __init__(self, splices: _Splices, total: int, header: str) -> None:
        self.splices, self.total = splices, total
        self.header = header  # the file names, written before the first hunk (none: no lines differ)
        self.regions, self.ops = array("q"), array("q")

    def add(self, region: tuple[int, int, int, int, int, int], a1: int, a2: int, b1: int, b2: int) -> None:
        regions = self.regions
        if not regions or regions[-4] != region[2]:  # a region is known by its first splice
            regions.extend(region)
        self.ops.extend((len(regions) // 6 - 1, a1, a2, b1, b2))

    def written(self) -> Iterator[str]:
        """The hunk, header first, in pieces; then it is empty again."""
        original, regions, ops = self.splices.original, self.regions, self.ops
        before = min(CONTEXT, ops[1])
        after = min(CONTEXT, self.total - ops[-3])
        a_start, a_end, b_start = ops[1] - before, ops[-3] + after, ops[3] - before
        out = [self.header, f"@@ -{_range(a_start, a_end)} +{_range(b_start, ops[-1] + after)} @@\n"]
        self.header = ""
        line, position = regions[4], regions[0]  # the first region's first line, where it begins
        while line > a_start:
            position = original.rfind("\n", 0, position - 1) + 1
            line -= 1
        while line < a_start:
            position = original.find("\n", position) + 1
            line += 1

        def take(count: int, mark: str) -> Iterator[str]:
            nonlocal position
            for _ in range(count):
                newline = original.find("\n", position)
                if newline < 0:
                    out.append(mark + original[position:] + NO_NEWLINE)
                    position = len(original)
                else:
                    out.append(mark + original[position:newline + 1])
                    position = newline + 1
                if len(out) >= FLUSH:
                    yield "".join(out)
                    out.clear()

        for index in range(0, len(ops), 5):
            region, a1, a2, b1, b2 = ops[index:index + 5]
            begin, end, first, stop, _, b0 = regions[region * 6:region * 6 + 6]
            yield from take(a1 - line, " ")
            yield from take(a2 - a1, "-")
            line = a2
            for text in self.splices.new_lines(begin, end, first, stop)[b1 - b0:b2 - b0]:
                out.append("+" + text if text.endswith("\n") else "+" + text + NO_NEWLINE)
                if len(out) >= FLUSH:
                    yield "".join(out)
                    out.clear()
        yield from take(a_end - line, " ")
        yield "".join(out)
        del self.regions[:], self.ops[:]


def _range(start: int, stop: int) -> str:
    """A hunk's range as unified_diff writes it: 1-based start, the length unless 1, an empty range
    named by the line before it."""
    length = stop - start
    if length == 1:
        return f"{start + 1}"
    return f"{start + 1 if length else start},{length}"
