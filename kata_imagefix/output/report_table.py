"""The size report's layer table, laid out for the width it gets.

Every column it shows keeps its whole header. When the width runs short the
bar narrows (down to its header), then the least needed columns go - the bar
(the share says the same), the compressed size, the share - and the build
command wraps under its own header; what was left out is said under the table.
At the narrowest (40 columns), "base" moves under the digest and the digests
shorten (to 7) before the command's header would have to break a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.cells import cell_len
from rich.table import Table

from ..sizes import human_size
from .untrusted import for_terminal

if TYPE_CHECKING:
    from ..report.model import LayerRow

BAR, BAR_HEADER = 20, "of the image"  # the bar's full width; it narrows to its header's
COMMAND, COMMAND_MIN = "created by", 20  # the build command wraps, but not narrower than this
COMMAND_LEAST = len("created")  # ... unless the terminal is that narrow: then its header takes two lines
GAP = 3  # " │ " between two columns (no edge, no padding at the edges)
LEFT_OUT_FIRST = (BAR_HEADER, "compressed", "share")
SAID = {BAR_HEADER: "the bars", "compressed": "the compressed sizes", "share": "the shares"}  # when left out


@dataclass
class _Column:
    header: str
    justify: Literal["left", "right"]
    cells: list[str]

    @property
    def width(self) -> int:
        return max(cell_len(line) for text in [self.header, *self.cells] for line in text.split("\n"))


def layer_table(layers: Sequence[LayerRow], width: int) -> tuple[Table, list[str]]:
    """The table at most `width` columns wide, and what it left out, said for a sentence."""
    columns = _columns(layers, 12, base_below=False)
    left_out: list[str] = []
    bar = _bar_width(columns, width)
    if bar:
        columns.append(_Column(BAR_HEADER, "left", [_bar(row, bar) for row in layers]))
    else:
        left_out.append(SAID[BAR_HEADER])
    for header in LEFT_OUT_FIRST[1:]:
        if _room_for_command(columns, width) >= COMMAND_MIN:
            break
        columns = [c for c in columns if c.header != header]
        left_out.append(SAID[header])
    kept = {c.header for c in columns}
    if _room_for_command(columns, width) < COMMAND_MIN:  # the narrowest terminals: "base" under the digest,
        columns = [c for c in _columns(layers, 12, base_below=True) if c.header in kept]
        short = COMMAND_LEAST - _room_for_command(columns, width)  # then shorter digests (never below 7)
        if short > 0:
            columns = [c for c in _columns(layers, max(7, 12 - short), base_below=True) if c.header in kept]
    command = next(c for c in columns if c.header == COMMAND)
    # the command gets what the others leave, never more than it needs, never less than its header's words
    command_width = max(min(command.width, _room_for_command(columns, width)), COMMAND_LEAST)
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        if column is command:
            table.add_column(column.header, justify=column.justify, overflow="fold", width=command_width)
        else:
            table.add_column(column.header, justify=column.justify, no_wrap=True, min_width=column.width)
    for row in zip(*(c.cells for c in columns), strict=True):
        table.add_row(*row)
    return table, left_out


def _columns(layers: Sequence[LayerRow], digits: int, *, base_below: bool) -> list[_Column]:
    """Every column but the bar; a layer's digest `digits` long, "base" after it or on a line below."""
    mark = "\nbase" if base_below else " base"
    return [
        _Column("#", "right", [str(row.index) for row in layers]),
        _Column("layer", "left", [row.digest[7:7 + digits] + (mark if row.in_base else "")
                                  for row in layers]),
        _Column(COMMAND, "left", [for_terminal(row.created_by) for row in layers]),
        _Column("unpacked", "right", [human_size(row.unpacked) + ("~" if row.estimated else "")
                                      for row in layers]),
        _Column("compressed", "right", [human_size(row.compressed) if row.compressed is not None else "-"
                                        for row in layers]),
        _Column("share", "right", [f"{row.share:.0%}" for row in layers]),
    ]


def _room_for_command(columns: list[_Column], width: int) -> int:
    others = [c for c in columns if c.header != COMMAND]
    return width - sum(c.width for c in others) - GAP * len(others)


def _bar_width(columns: list[_Column], width: int) -> int:
    """The bar's width beside the other columns and the command's least width; 0: no room for it."""
    room = _room_for_command(columns, width) - COMMAND_MIN - GAP
    return min(BAR, room) if room >= cell_len(BAR_HEADER) else 0


def _bar(row: LayerRow, width: int) -> str:
    return "█" * max(1, round(row.share * width)) if row.unpacked else ""
