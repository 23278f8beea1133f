"""Mouse text selection for the Line API panes (log, diff, file viewer).

Textual selects text by the `offset` meta of each drawn segment: a pane tags its rows with
`Strip.apply_offsets(x, row)` and answers `get_selection` with the text under the selection.
These helpers do the parts the panes share: cut the selected text out of the rows, and draw
the selected span of a row in the screen's selection style. Row text is what the pane shows
(control characters already replaced), so a copy holds what the user sees.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.selection import Selection
from textual.strip import Strip


def selected_rows(selection: Selection, first: int, end: int, row_text: Callable[[int], str]) -> str:
    """The text under `selection` among rows `first` ≤ y < `end`, each row as `row_text(y)` draws it.

    A selection edge on a row the pane no longer has (a log's dropped lines) is clamped to the
    rows it still has.
    """
    if end <= first:
        return ""
    start, stop = selection
    start_y, start_x = (first, 0) if start is None or start.y < first else (start.y, start.x)
    stop_y, stop_x = (end - 1, None) if stop is None or stop.y >= end else (stop.y, stop.x)
    if stop_y < start_y:
        return ""
    lines = [row_text(y) for y in range(start_y, stop_y + 1)]
    if len(lines) == 1:
        return lines[0][start_x:stop_x]
    lines[0] = lines[0][start_x:]
    lines[-1] = lines[-1][:stop_x]
    return "\n".join(lines)


def strip_text(strip: Strip) -> str:
    """The characters of a strip (what a row shows)."""
    return "".join(segment.text for segment in strip)


def highlight_span(strip: Strip, span: tuple[int, int], style: RichStyle) -> Strip:
    """`strip` with characters `span` (end -1: to the end of the row) drawn over in `style`."""
    text = strip_text(strip)
    start, end = span
    if end == -1 or end > len(text):
        end = len(text)
    left, right = cell_len(text[:start]), cell_len(text[:end])
    if right <= left:
        return strip
    before, selected, after = strip.divide([left, right, strip.cell_length])[:3]
    painted = Strip(Segment.apply_style(list(selected), None, post_style=style), selected.cell_length)
    return Strip.join([before, painted, after])


def selection_span(selection: Selection | None, row: int) -> tuple[int, int] | None:
    """The selected characters of `row`, or None when the row is not selected."""
    return None if selection is None else selection.get_span(row)
