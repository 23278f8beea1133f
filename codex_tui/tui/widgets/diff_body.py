"""The hunks of the diff pane, drawn row by row from a precomputed layout (Line API).

`DiffBody` draws only the rows on screen with per-row strips in an LRU cache, and highlights
lazily, a chunk of one hunk side at a time, with the pygments lexer guessed from the file name.
Lines with review findings carry a marker in the gutter. Every text drawn from the patch goes
through `clean_line`: a control character a task wrote shows as U+FFFD, never reaches the terminal.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pygments.lexer import Lexer
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer

from codex_tui.tui.widgets.diff_model import DiffLayout, DiffLine, FileDiff, Patch, Row
from codex_tui.tui.widgets.highlight import (
    LineSpans,
    StyleResolver,
    clean_line,
    highlight_lines,
    styled_segments,
)
from codex_tui.tui.widgets.line_selection import highlight_span, selected_rows, selection_span, strip_text
from codex_tui.tui.widgets.short_path import shorten_path

EMPTY_TEXT = "No changes yet"
HIGHLIGHT_CHUNK = 48
"""Lines of one hunk side tokenised together: enough context for the lexer, cheap on first paint."""
PREFETCH_PAGES = 3
"""Pages below the view whose highlighting is prepared ahead, while idle, for smooth scrolling."""
PREFETCH_BUDGET_S = 0.004
"""Time one idle tick may spend tokenising ahead."""

STATUS_TAGS: dict[str, tuple[str, str]] = {
    "added": ("A", "$text-success bold"),
    "modified": ("M", "$text-warning bold"),
    "deleted": ("D", "$text-error bold"),
    "renamed": ("R", "$text-accent bold"),
}
SIGNS = {"added": "+", "removed": "-", "context": " "}
MARKER = "●"
"""Drawn in the gutter of a line that a review finding points at."""
MARKER_STYLE = "$text-warning bold"


class DiffBody(ScrollView, can_focus=True):
    """The hunks of every file, drawn row by row from a precomputed layout (Line API)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diff-view--file-header",
        "diff-view--hunk-header",
        "diff-view--hunk-current",
        "diff-view--context",
        "diff-view--added",
        "diff-view--removed",
        "diff-view--gutter-context",
        "diff-view--gutter-added",
        "diff-view--gutter-removed",
        "diff-view--filler",
        "diff-view--note",
        "diff-view--empty",
    }
    DEFAULT_CSS = """
    DiffBody {
        background: $surface;
        color: $foreground;
        & > .diff-view--file-header { background: $panel; color: $text; text-style: bold; }
        & > .diff-view--hunk-header { background: $boost; color: $text-secondary; }
        & > .diff-view--hunk-current { background: $accent-muted; color: $text; text-style: bold; }
        & > .diff-view--context { background: $surface; color: $foreground; }
        & > .diff-view--added { background: $success-muted; color: $foreground; }
        & > .diff-view--removed { background: $error-muted; color: $foreground; }
        & > .diff-view--gutter-context { background: $surface; color: $text-muted; }
        & > .diff-view--gutter-added { background: $success-muted; color: $text-muted; }
        & > .diff-view--gutter-removed { background: $error-muted; color: $text-muted; }
        & > .diff-view--filler { background: $boost; color: $text-disabled; }
        & > .diff-view--note { background: $surface; color: $text-muted; text-style: italic; }
        & > .diff-view--empty { background: $surface; color: $text-muted; }
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.patch = Patch()
        self.diff_layout = DiffLayout()
        self.lexers: list[Lexer | None] = []
        self.current_hunk: int | None = None
        """Global ordinal of the hunk last moved to (its header is drawn highlighted)."""
        self._strips: LRUCache[tuple[int, int, bool], tuple[Strip, RichStyle]] = LRUCache(512)
        self._shown: LRUCache[tuple[int, int, int], tuple[Strip, Strip]] = LRUCache(256)
        """Rows as drawn (cropped, tagged for mouse selection), valid while their row strip is cached."""
        self._spans: LRUCache[tuple[int, str, int], list[LineSpans]] = LRUCache(1024)
        self._resolver: StyleResolver | None = None
        self._prefetch_timer: Timer | None = None
        self.empty_text = EMPTY_TEXT
        """Shown when the patch has no files (e.g. why no diff is expected)."""
        self.markers: dict[str, set[int]] = {}
        """Lines (new-side numbers) with review findings, per path."""

    def on_mount(self) -> None:
        """Start the (paused) timer that highlights ahead of the view."""
        self._prefetch_timer = self.set_interval(1 / 30, self._prefetch, pause=True)

    def show(self, patch: Patch, layout: DiffLayout, lexers: list[Lexer | None]) -> None:
        """Draw a new patch/layout (scroll position is left to the caller)."""
        if patch is not self.patch:
            self._spans.clear()
        self.patch, self.diff_layout, self.lexers = patch, layout, lexers
        self._strips.clear()
        width = 0 if layout.split else self._gutter_width() + 2 + layout.text_width
        self.virtual_size = Size(width, len(layout.rows))
        self.refresh()
        self._wake_prefetch()

    def set_markers(self, markers: dict[str, set[int]]) -> None:
        """Mark these new-side lines of these paths in the gutter (review findings)."""
        if markers != self.markers:
            self.markers = {path: set(lines) for path, lines in markers.items()}
            self._strips.clear()
            self.refresh()

    def is_marked(self, row: Row, line: DiffLine | None) -> bool:
        """Whether a line of a row carries a finding marker (removed lines never do)."""
        if line is None or line.new_no is None or line.kind == "removed" or not self.markers:
            return False
        if row.file >= len(self.patch.files):
            return False
        return line.new_no in self.markers.get(self.patch.files[row.file].path, ())

    def marked_rows(self) -> list[int]:
        """The first row of every run of marked rows, top to bottom."""
        starts: list[int] = []
        previous = False
        for index, row in enumerate(self.diff_layout.rows):
            marked = self.is_marked(row, row.line) or self.is_marked(row, row.right)
            if marked and not previous:
                starts.append(index)
            previous = marked
        return starts

    def set_current_hunk(self, ordinal: int | None) -> None:
        """Highlight one hunk's header."""
        self.current_hunk = ordinal
        self.refresh()

    @property
    def top_row(self) -> int:
        """The index of the first row on screen."""
        return round(self.scroll_y)

    def row_visible(self, row: int) -> bool:
        """Whether a row is on screen."""
        return self.top_row <= row < self.top_row + max(1, self.scrollable_content_region.height)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Redraw and highlight ahead of the new position."""
        super().watch_scroll_y(old_value, new_value)
        self._wake_prefetch()

    def _wake_prefetch(self) -> None:
        if self._prefetch_timer is not None and any(self.lexers):
            self._prefetch_timer.resume()

    def _prefetch(self) -> None:
        """Tokenise chunks of the next pages within a small time budget; pause when all are done."""
        deadline = time.perf_counter() + PREFETCH_BUDGET_S
        rows = self.diff_layout.rows
        height = max(1, self.scrollable_content_region.height)
        for index in range(self.top_row, min(len(rows), self.top_row + height * (1 + PREFETCH_PAGES))):
            row = rows[index]
            for line in (row.line, row.right):
                if line is not None and self._chunk_key(row, line) not in self._spans:
                    self._line_spans(row, line)
                    if time.perf_counter() > deadline:
                        return
        if self._prefetch_timer is not None:
            self._prefetch_timer.pause()

    def notify_style_update(self) -> None:
        """Drop styled rows when CSS or the theme changes."""
        super().notify_style_update()
        self._strips.clear()
        if self._resolver is not None:
            self._resolver.clear()

    # --- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """Draw one row of the viewport."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        rows = self.diff_layout.rows
        if not rows:
            return self._empty_line(y, width)
        index = scroll_y + y
        if index >= len(rows):
            return Strip.blank(width, self.rich_style)
        if self.diff_layout.split:
            scroll_x = 0
        strip, fill = self._row_strip(index, width)
        span = selection_span(self.text_selection, index)
        if span is not None:
            strip = highlight_span(strip, span, self.screen.get_component_rich_style("screen--selection"))
            return strip.crop_extend(scroll_x, scroll_x + width, fill).apply_offsets(scroll_x, index)
        key = (index, scroll_x, width)
        shown = self._shown.get(key)
        if shown is None or shown[0] is not strip:
            shown = self._shown[key] = (
                strip,
                strip.crop_extend(scroll_x, scroll_x + width, fill).apply_offsets(scroll_x, index),
            )
        return shown[1]

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected rows as drawn (line numbers and signs included, as on screen)."""
        width = self.scrollable_content_region.width
        rows = len(self.diff_layout.rows)
        return selected_rows(selection, 0, rows, lambda y: strip_text(self._row_strip(y, width)[0])), "\n"

    def hunk_in_view(self) -> int | None:
        """The hunk to act on: the current one when it is on screen, else the first one in view."""
        rows = self.diff_layout.rows
        shown = range(
            self.top_row, min(len(rows), self.top_row + max(1, self.scrollable_content_region.height))
        )
        in_view = [rows[index].hunk for index in shown if rows[index].hunk >= 0]
        if self.current_hunk is not None and self.current_hunk in in_view:
            return self.current_hunk
        return in_view[0] if in_view else None

    def hunk_text(self, ordinal: int) -> str:
        """Hunk `ordinal` as patch text: its `@@` header, then each line with its sign."""
        file_index, hunk_index = self.diff_layout.hunk_refs[ordinal]
        hunk = self.patch.files[file_index].hunks[hunk_index]
        lines = [hunk.header] + [SIGNS[line.kind] + line.text for line in hunk.lines]
        return "\n".join(lines)

    def _empty_line(self, y: int, width: int) -> Strip:
        style = self.get_component_rich_style("diff-view--empty")
        height = self.scrollable_content_region.height
        if y != height // 2:
            return Strip.blank(width, style)
        text = clean_line(self.patch.errors[0]) if self.patch.errors else self.empty_text
        text = text[:width]
        left = max(0, (width - len(text)) // 2)
        return Strip([Segment(" " * left, style), Segment(text, style)]).crop_extend(0, width, style)

    def _row_strip(self, index: int, width: int) -> tuple[Strip, RichStyle]:
        row = self.diff_layout.rows[index]
        current = row.kind == "hunk" and row.hunk == self.current_hunk
        key = (index, width if self.diff_layout.split or row.kind == "file" else 0, current)
        cached = self._strips.get(key)
        if cached is None:
            cached = self._build_row(row, width, current)
            self._strips[key] = cached
        return cached

    def _build_row(self, row: Row, width: int, current: bool) -> tuple[Strip, RichStyle]:
        style = self.get_component_rich_style
        if row.kind == "line" and row.line is not None:
            return self._unified_line(row, row.line)
        if row.kind == "pair":
            return self._pair_line(row, width)
        if row.kind == "file":
            return self._file_header(self.patch.files[row.file], width)
        if row.kind == "hunk":
            hunk_style = style("diff-view--hunk-current" if current else "diff-view--hunk-header")
            marker = "▶ " if current else "  "
            return Strip([Segment(marker + clean_line(row.text), hunk_style)]), hunk_style
        if row.kind == "note":
            note_style = style("diff-view--note")
            pad = " " * (self._gutter_width() + 2)
            return Strip([Segment(pad + clean_line(row.text), note_style)]), note_style
        return Strip([]), self.rich_style

    def _gutter_width(self) -> int:
        digits = self.diff_layout.number_width
        return digits + 1 if self.diff_layout.split else digits * 2 + 2

    def _resolve(self) -> StyleResolver:
        if self._resolver is None:
            self._resolver = StyleResolver(self.app.stylesheet.parse_style)
        return self._resolver

    def _file_header(self, file: FileDiff, width: int) -> tuple[Strip, RichStyle]:
        """` A path  added  +N −M`; in a narrow pane the path's middle gives way, then the status word."""
        base = self.get_component_rich_style("diff-view--file-header")
        resolve = self._resolve().resolve
        tag, tag_style = STATUS_TAGS.get(file.status, ("?", ""))
        muted = resolve(base, "$foreground 60% not bold")
        counts = (
            [Segment("binary", muted)]
            if file.binary
            else [
                Segment(f"+{file.added}", resolve(base, "$text-success")),
                Segment(" "),
                Segment(f"−{file.removed}", resolve(base, "$text-error")),
            ]
        )
        path = clean_line(file.display_path)
        status = f"  {file.status}  "
        room = width - 3 - len(status) - sum(len(segment.text) for segment in counts)
        if width > 0 and room < len(path):
            status = "  "
            room = width - 3 - len(status) - sum(len(segment.text) for segment in counts)
            path = shorten_path(path, max(12, room))
        segments = [
            Segment(f" {tag} ", resolve(base, tag_style)),
            Segment(path, base),
            Segment(status, muted),
        ]
        return Strip(segments + counts), base

    def _unified_line(self, row: Row, line: DiffLine) -> tuple[Strip, RichStyle]:
        width = self.diff_layout.number_width
        base = self.get_component_rich_style(f"diff-view--{line.kind}")
        gutter = self.get_component_rich_style(f"diff-view--gutter-{line.kind}")
        old = f"{line.old_no:>{width}}" if line.old_no is not None else " " * width
        new = f"{line.new_no:>{width}}" if line.new_no is not None else " " * width
        text = clean_line(line.text)
        segments = [Segment(f"{old} {new}", gutter), self._marker(row, line, gutter)]
        segments.append(Segment(SIGNS[line.kind] + " ", gutter))
        segments += styled_segments(text, self._line_spans(row, line), base, self._resolve())
        return Strip(segments), base

    def _pair_line(self, row: Row, width: int) -> tuple[Strip, RichStyle]:
        left_width = max(1, (width - 1) // 2)
        right_width = max(1, width - 1 - left_width)
        left = self._half(row, row.line, "old", left_width)
        right = self._half(row, row.right, "new", right_width)
        separator = Segment("│", self.get_component_rich_style("diff-view--gutter-context"))
        return Strip.join([left, Strip([separator], 1), right]), self.rich_style

    def _half(self, row: Row, line: DiffLine | None, side: Literal["old", "new"], width: int) -> Strip:
        if line is None:
            filler = self.get_component_rich_style("diff-view--filler")
            return Strip.blank(width, filler)
        base = self.get_component_rich_style(f"diff-view--{line.kind}")
        gutter = self.get_component_rich_style(f"diff-view--gutter-{line.kind}")
        number = line.old_no if side == "old" else line.new_no
        digits = self.diff_layout.number_width
        label = f"{number:>{digits}}" if number is not None else " " * digits
        text = clean_line(line.text)
        segments = [Segment(label, gutter), self._marker(row, line, gutter)]
        segments.append(Segment(f"{SIGNS[line.kind]} ", gutter))
        segments += styled_segments(text, self._line_spans(row, line), base, self._resolve())
        return Strip(segments).crop_extend(0, width, base)

    def _marker(self, row: Row, line: DiffLine, gutter: RichStyle) -> Segment:
        if self.is_marked(row, line):
            return Segment(MARKER, self._resolve().resolve(gutter, MARKER_STYLE))
        return Segment(" ", gutter)

    @staticmethod
    def _chunk_key(row: Row, line: DiffLine) -> tuple[int, Literal["old", "new"], int]:
        """(hunk ordinal, side, chunk number): which tokenised chunk holds a line."""
        side: Literal["old", "new"] = "old" if line.kind == "removed" else "new"
        return row.hunk, side, line.side_index // HIGHLIGHT_CHUNK

    def _line_spans(self, row: Row, line: DiffLine) -> LineSpans:
        """Highlight spans for one line, tokenising its chunk of the hunk side on first use."""
        lexer = self.lexers[row.file] if row.file < len(self.lexers) else None
        if lexer is None or row.hunk < 0:
            return ()
        key = self._chunk_key(row, line)
        _, side, chunk = key
        spans = self._spans.get(key)
        if spans is None:
            file_index, hunk_index = self.diff_layout.hunk_refs[row.hunk]
            texts = self.patch.files[file_index].hunks[hunk_index].side_texts(side)
            start = chunk * HIGHLIGHT_CHUNK
            lines = [clean_line(text) for text in texts[start : start + HIGHLIGHT_CHUNK]]
            try:
                spans = highlight_lines(lines, lexer)
            except Exception:  # a lexer bug shows plain text rather than breaking the pane
                spans = [() for _ in lines]
            self._spans[key] = spans
        offset = line.side_index - chunk * HIGHLIGHT_CHUNK
        return spans[offset] if offset < len(spans) else ()
