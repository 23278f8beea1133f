"""A read-only view of one file of a task's checkout, syntax highlighted, with cited lines marked.

The text comes from the task manager (OP_READ_FILE: read safely, bounded) and is untrusted: every
line goes through `clean_line` (control characters shown as U+FFFD), and is drawn with the Line API
so a large file costs only the rows on screen. Highlighting uses the diff pane's pygments machinery
(`highlight.py`), computed in a thread.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual import on, work
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.worker import get_current_worker

from codex_tui.tui.copy_text import CopyItem
from codex_tui.tui.widgets.highlight import (
    LineSpans,
    StyleResolver,
    clean_line,
    highlight_lines,
    lexer_for_path,
    styled_segments,
)
from codex_tui.tui.widgets.line_selection import highlight_span, selected_rows, selection_span


def split_lines(text: str) -> list[str]:
    """The file's lines, cleaned for display (a trailing newline adds no empty line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [clean_line(line.removesuffix("\r")) for line in lines] or [""]


def file_spans(path: str, lines: list[str]) -> list[LineSpans]:
    """Highlight spans of every line (no spans when the file type is unknown or the lexer fails)."""
    lexer = lexer_for_path(path)
    if lexer is None:
        return []
    try:
        return highlight_lines(lines, lexer)
    except Exception:  # a lexer bug shows plain text rather than breaking the viewer
        return []


class FileView(ScrollView, can_focus=True):
    """Numbered, highlighted lines of one file; the cited range has a marked gutter and background."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "file-view--gutter",
        "file-view--gutter-cited",
        "file-view--line",
        "file-view--cited",
    }
    DEFAULT_CSS = """
    FileView {
        background: $surface;
        color: $foreground;
        & > .file-view--gutter { background: $surface; color: $text-muted; }
        & > .file-view--gutter-cited { background: $accent-muted; color: $text-accent; text-style: bold; }
        & > .file-view--line { background: $surface; color: $foreground; }
        & > .file-view--cited { background: $accent-muted; color: $foreground; }
    }
    """

    class _Highlighted(Message, bubble=False):
        def __init__(self, generation: int, spans: list[LineSpans]) -> None:
            super().__init__()
            self.generation = generation
            self.spans = spans

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.path = ""
        self.lines: list[str] = []
        self.spans: list[LineSpans] = []
        self.start = 0
        self.end = 0
        self._generation = 0
        self._resolver: StyleResolver | None = None
        self._shown: LRUCache[tuple[int, int, int], Strip] = LRUCache(256)
        """Rows as drawn, by (line, scroll x, width); cleared when the text, highlighting or theme changes."""

    def show_text(self, path: str, text: str, start: int = 0, end: int = 0) -> None:
        """Show `text` as the content of `path`, lines `start`–`end` (1-based) marked and in view."""
        self.path = path
        self._shown.clear()
        self.lines = split_lines(text)
        self.spans = []
        self.start, self.end = start, max(start, end)
        width = len(str(len(self.lines))) + 3 + max((len(line) for line in self.lines), default=0)
        self.virtual_size = Size(width, len(self.lines))
        self._generation += 1
        self._highlight(path, self.lines, self._generation)
        self.refresh()
        self.call_after_refresh(self.scroll_to_cited)

    def scroll_to_cited(self) -> None:
        """Scroll so the cited lines are in view, with a little context above."""
        if self.start > 0:
            self.scroll_to(y=max(0, self.start - 4), animate=False, immediate=True, force=True)

    @work(thread=True, exclusive=True, group="file-view-highlight")
    def _highlight(self, path: str, lines: list[str], generation: int) -> None:
        spans = file_spans(path, lines)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Highlighted(generation, spans))

    @on(_Highlighted)
    def _show_highlighted(self, message: _Highlighted) -> None:
        if message.generation == self._generation:
            self.spans = message.spans
            self._shown.clear()
            self.refresh()

    def notify_style_update(self) -> None:
        """Forget resolved styles when the theme changes."""
        super().notify_style_update()
        self._shown.clear()
        if self._resolver is not None:
            self._resolver.clear()

    def cited(self, number: int) -> bool:
        """Whether a 1-based line number is in the cited range."""
        return self.start > 0 and self.start <= number <= self.end

    def render_line(self, y: int) -> Strip:
        """Draw one row: line number, marker, highlighted text."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        span = selection_span(self.text_selection, index)
        key = (index, scroll_x, width)
        if span is None and (shown := self._shown.get(key)) is not None:
            return shown
        number = index + 1
        cited = self.cited(number)
        gutter = self.get_component_rich_style("file-view--gutter-cited" if cited else "file-view--gutter")
        base = self.get_component_rich_style("file-view--cited" if cited else "file-view--line")
        if self._resolver is None:
            self._resolver = StyleResolver(self.app.stylesheet.parse_style)
        spans = self.spans[index] if index < len(self.spans) else ()
        segments = [Segment(self._gutter(index), gutter)]
        segments += styled_segments(self.lines[index], spans, base, self._resolver)
        strip = Strip(segments)
        if span is not None:
            strip = highlight_span(strip, span, self.screen.get_component_rich_style("screen--selection"))
            return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)
        shown = self._shown[key] = strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(
            scroll_x, index
        )
        return shown

    def _gutter(self, index: int) -> str:
        digits = len(str(len(self.lines)))
        return f"{index + 1:>{digits}} {'▌' if self.cited(index + 1) else ' '} "

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected rows as shown (line numbers included, as on screen)."""
        return selected_rows(selection, 0, len(self.lines), lambda y: self._gutter(y) + self.lines[y]), "\n"

    def copy_item(self) -> CopyItem | None:
        """The cited lines when the file was opened at some, else the lines in view (text only)."""
        if not self.lines:
            return None
        if self.start > 0:
            first, last = self.start - 1, min(self.end, len(self.lines))
            what = f"line {self.start}" if last <= self.start else f"lines {self.start}–{last}"
        else:
            first = self.scroll_offset.y
            last = min(len(self.lines), first + max(1, self.scrollable_content_region.height))
            what = f"lines {first + 1}–{last}"
        return CopyItem("\n".join(self.lines[first:last]), f"{what} of {self.path}")
