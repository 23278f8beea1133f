"""The diff pane: a file list (path, status, +N −M) over a virtualised view of every hunk.

The patch is parsed and laid out in a thread worker; `DiffBody` draws only the rows on screen
(Line API) with per-row strips in an LRU cache, and highlights lazily, a chunk of one hunk side
at a time, with the pygments lexer guessed from the file name. All colours come from theme
variables (component classes + `textual.highlight` styles), so every theme looks right.
Every text drawn from the patch (lines, paths, hunk headers) goes through `clean_line`: a control
character a task wrote shows as U+FFFD, never reaches the terminal, and never hides code under review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pygments.lexer import Lexer
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from codex_tui.tui.bindings import DIFF_BINDINGS
from codex_tui.tui.widgets.diff_model import (
    DiffLayout,
    DiffLine,
    FileDiff,
    Patch,
    Row,
    layout_patch,
    parse_patch,
)
from codex_tui.tui.widgets.highlight import (
    LineSpans,
    StyleResolver,
    clean_line,
    highlight_lines,
    lexer_for_path,
    styled_segments,
)

EMPTY_TEXT = "No changes yet"
HIGHLIGHT_CHUNK = 48
"""Lines of one hunk side tokenised together: enough context for the lexer, cheap on first paint."""
PREFETCH_PAGES = 3
"""Pages below the view whose highlighting is prepared ahead, while idle, for smooth scrolling."""
PREFETCH_BUDGET_S = 0.004
"""Time one idle tick may spend tokenising ahead."""

_STATUS_TAGS: dict[str, tuple[str, str]] = {
    "added": ("A", "$text-success bold"),
    "modified": ("M", "$text-warning bold"),
    "deleted": ("D", "$text-error bold"),
    "renamed": ("R", "$text-accent bold"),
}
_SIGNS = {"added": "+", "removed": "-", "context": " "}


@dataclass(slots=True)
class ParsedPatch:
    """A patch with both layouts and a lexer per file, ready to show."""

    patch: Patch
    unified: DiffLayout
    split: DiffLayout
    lexers: list[Lexer | None] = field(default_factory=list)


def prepare_patch(text: str) -> ParsedPatch:
    """Parse and lay out a diff (run in a thread: a large diff takes tens of milliseconds)."""
    try:
        patch = parse_patch(text)
    except Exception as error:  # the parser does not raise by design; this keeps the pane alive
        patch = Patch(errors=[f"could not read the diff: {error}"])
    return ParsedPatch(
        patch,
        layout_patch(patch, split=False),
        layout_patch(patch, split=True),
        [lexer_for_path(file.path) for file in patch.files],
    )


def file_list_prompt(file: FileDiff) -> Content:
    """The file list entry: status letter, path, +N −M (styles are theme variables)."""
    tag, tag_style = _STATUS_TAGS.get(file.status, ("?", "$foreground 60%"))
    parts: list[str | tuple[str, str]] = [(tag, tag_style), " ", clean_line(file.display_path), "  "]
    if file.binary:
        parts.append(("binary", "$foreground 60% italic"))
    else:
        parts += [(f"+{file.added}", "$text-success"), " ", (f"−{file.removed}", "$text-error")]
    return Content.assemble(*parts)


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
        self._spans: LRUCache[tuple[int, str, int], list[LineSpans]] = LRUCache(1024)
        self._resolver: StyleResolver | None = None
        self._prefetch_timer: Timer | None = None

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
        return strip.crop_extend(scroll_x, scroll_x + width, fill)

    def _empty_line(self, y: int, width: int) -> Strip:
        style = self.get_component_rich_style("diff-view--empty")
        height = self.scrollable_content_region.height
        if y != height // 2:
            return Strip.blank(width, style)
        text = clean_line(self.patch.errors[0]) if self.patch.errors else EMPTY_TEXT
        text = text[:width]
        left = max(0, (width - len(text)) // 2)
        return Strip([Segment(" " * left, style), Segment(text, style)]).crop_extend(0, width, style)

    def _row_strip(self, index: int, width: int) -> tuple[Strip, RichStyle]:
        row = self.diff_layout.rows[index]
        current = row.kind == "hunk" and row.hunk == self.current_hunk
        key = (index, width if self.diff_layout.split else 0, current)
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
            return self._file_header(self.patch.files[row.file])
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

    def _file_header(self, file: FileDiff) -> tuple[Strip, RichStyle]:
        base = self.get_component_rich_style("diff-view--file-header")
        resolve = self._resolve().resolve
        tag, tag_style = _STATUS_TAGS.get(file.status, ("?", ""))
        segments = [
            Segment(f" {tag} ", resolve(base, tag_style)),
            Segment(clean_line(file.display_path), base),
            Segment(f"  {file.status}  ", resolve(base, "$foreground 60% not bold")),
        ]
        if file.binary:
            segments.append(Segment("binary", resolve(base, "$foreground 60% not bold")))
        else:
            segments += [
                Segment(f"+{file.added}", resolve(base, "$text-success")),
                Segment(" "),
                Segment(f"−{file.removed}", resolve(base, "$text-error")),
            ]
        return Strip(segments), base

    def _unified_line(self, row: Row, line: DiffLine) -> tuple[Strip, RichStyle]:
        width = self.diff_layout.number_width
        base = self.get_component_rich_style(f"diff-view--{line.kind}")
        gutter = self.get_component_rich_style(f"diff-view--gutter-{line.kind}")
        old = f"{line.old_no:>{width}}" if line.old_no is not None else " " * width
        new = f"{line.new_no:>{width}}" if line.new_no is not None else " " * width
        text = clean_line(line.text)
        segments = [Segment(f"{old} {new} ", gutter), Segment(_SIGNS[line.kind] + " ", gutter)]
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
        segments = [Segment(f"{label} {_SIGNS[line.kind]} ", gutter)]
        segments += styled_segments(text, self._line_spans(row, line), base, self._resolve())
        return Strip(segments).crop_extend(0, width, base)

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


class DiffView(Widget):
    """The diff pane: file list plus hunks (unified or side by side), fed with `set_patch`."""

    BINDINGS: ClassVar[list[BindingType]] = DIFF_BINDINGS
    DEFAULT_CSS = """
    DiffView {
        layout: vertical;
        height: 1fr;
        background: $surface;
        & > #diff-files {
            height: auto;
            max-height: 30%;
            border: none;
            border-bottom: solid $panel;
            background: $surface;
            padding: 0;
            &.-empty { display: none; }
        }
        & > #diff-body { height: 1fr; }
    }
    """

    class FileSelected(Message):
        """The user picked a file (in the list or with next/prev file)."""

        def __init__(self, diff_view: DiffView, path: str, index: int) -> None:
            super().__init__()
            self.diff_view = diff_view
            self.path = path
            self.index = index

        @property
        def control(self) -> DiffView:
            """The DiffView that posted this."""
            return self.diff_view

    class PatchLoaded(Message):
        """A patch given to `set_patch` is parsed and on screen."""

        def __init__(self, diff_view: DiffView, patch: Patch) -> None:
            super().__init__()
            self.diff_view = diff_view
            self.patch = patch

        @property
        def control(self) -> DiffView:
            """The DiffView that posted this."""
            return self.diff_view

    class _Prepared(Message, bubble=False):
        """A worker finished parsing (private to DiffView)."""

        def __init__(self, generation: int, prepared: ParsedPatch) -> None:
            super().__init__()
            self.generation = generation
            self.prepared = prepared

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._generation = 0
        self._prepared = prepare_patch("")
        self._split = False
        self._deferred_patch: str | None = None
        self.current_file: int | None = None
        """Index of the file last moved to or picked."""

    def compose(self) -> ComposeResult:
        """A file list over the hunks."""
        yield OptionList(id="diff-files", classes="-empty")
        yield DiffBody(id="diff-body")

    @property
    def body(self) -> DiffBody:
        """The hunks view."""
        return self.query_one("#diff-body", DiffBody)

    @property
    def file_list(self) -> OptionList:
        """The file list."""
        return self.query_one("#diff-files", OptionList)

    @property
    def patch(self) -> Patch:
        """The patch on screen."""
        return self._prepared.patch

    @property
    def split(self) -> bool:
        """Whether the side-by-side view is on."""
        return self._split

    @property
    def diff_layout(self) -> DiffLayout:
        """The rows on screen (unified or split)."""
        return self._prepared.split if self._split else self._prepared.unified

    # --- loading ----------------------------------------------------------------------------

    def set_patch(self, patch: str) -> None:
        """Show a unified git diff; parsing happens in a thread, the newest call wins."""
        self._generation += 1
        if not self.is_mounted:
            self._deferred_patch = patch
            return
        self._prepare(patch, self._generation)

    def on_mount(self) -> None:
        """Load a patch given before the widget was mounted."""
        if self._deferred_patch is not None:
            patch, self._deferred_patch = self._deferred_patch, None
            self._prepare(patch, self._generation)

    @work(thread=True, exclusive=True, group="diff-view-parse")
    def _prepare(self, text: str, generation: int) -> None:
        prepared = prepare_patch(text)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Prepared(generation, prepared))

    @on(_Prepared)
    def _show_prepared(self, message: _Prepared) -> None:
        if message.generation != self._generation:
            return
        body = self.body
        anchor = self._scroll_anchor()
        self._prepared = message.prepared
        self.current_file = None
        body.current_hunk = None
        body.show(self.patch, self.diff_layout, self._prepared.lexers)
        self._fill_file_list(anchor[0] if anchor else None)
        body.scroll_to(y=self._anchor_row(anchor, body.scroll_y), animate=False, immediate=True, force=True)
        self.post_message(self.PatchLoaded(self, self.patch))

    def _scroll_anchor(self) -> tuple[str, int] | None:
        """(path of the file at the top, rows below its header) to restore after an update."""
        layout = self.diff_layout
        file = layout.file_at(self.body.top_row)
        if file is None or file >= len(self.patch.files):
            return None
        return self.patch.files[file].path, self.body.top_row - layout.file_rows[file]

    def _anchor_row(self, anchor: tuple[str, int] | None, fallback: float) -> float:
        if anchor is None:
            return fallback
        file = self.patch.index_of(anchor[0])
        if file is None:
            return fallback
        layout = self.diff_layout
        start = layout.file_rows[file]
        return start + max(0, min(anchor[1], layout.file_end(file) - start - 1))

    def _fill_file_list(self, keep_path: str | None) -> None:
        file_list = self.file_list
        file_list.clear_options()
        file_list.add_options(
            Option(file_list_prompt(file), id=str(index)) for index, file in enumerate(self.patch.files)
        )
        file_list.set_class(not self.patch.files, "-empty")
        keep = self.patch.index_of(keep_path) if keep_path else None
        if self.patch.files:
            file_list.highlighted = keep or 0

    # --- navigation -------------------------------------------------------------------------

    def action_toggle_split(self) -> None:
        """Switch between unified and side-by-side views, keeping the top line in view."""
        body = self.body
        rows = self.diff_layout.rows
        top = rows[body.top_row] if body.top_row < len(rows) else None
        self._split = not self._split
        body.show(self.patch, self.diff_layout, self._prepared.lexers)
        body.scroll_to(y=self._same_row(top), animate=False, immediate=True, force=True)

    def _same_row(self, old: Row | None) -> int:
        """The row of the new layout that shows what `old` showed (same line, hunk or file)."""
        layout = self.diff_layout
        if old is None or not layout.rows:
            return 0
        if old.hunk < 0:
            return layout.file_rows[old.file] if old.file < len(layout.file_rows) else 0
        start = layout.hunk_rows[old.hunk]
        end = layout.hunk_rows[old.hunk + 1] if old.hunk + 1 < len(layout.hunk_rows) else len(layout.rows)
        wanted = {id(line) for line in (old.line, old.right) if line is not None}
        for index in range(start, end):
            row = layout.rows[index]
            if wanted and any(id(line) in wanted for line in (row.line, row.right) if line is not None):
                return index
        return start

    def _step(self, starts: list[int], current: int | None, delta: int) -> int | None:
        """The next/previous target among sorted row starts, from the current one or the view."""
        if not starts:
            return None
        body = self.body
        if current is not None and current < len(starts) and body.row_visible(starts[current]):
            return max(0, min(len(starts) - 1, current + delta))
        top = body.top_row
        if delta > 0:
            after = [index for index, row in enumerate(starts) if row > top]
            return after[0] if after else len(starts) - 1
        before = [index for index, row in enumerate(starts) if row < top]
        return before[-1] if before else 0

    def action_next_hunk(self) -> None:
        """Scroll to the next hunk and highlight it."""
        self._go_to_hunk(self._step(self.diff_layout.hunk_rows, self.body.current_hunk, +1))

    def action_prev_hunk(self) -> None:
        """Scroll to the previous hunk and highlight it."""
        self._go_to_hunk(self._step(self.diff_layout.hunk_rows, self.body.current_hunk, -1))

    def action_next_file(self) -> None:
        """Scroll to the next file."""
        self._go_to_file(self._step(self.diff_layout.file_rows, self.current_file, +1), notify=True)

    def action_prev_file(self) -> None:
        """Scroll to the previous file."""
        self._go_to_file(self._step(self.diff_layout.file_rows, self.current_file, -1), notify=True)

    def _go_to_hunk(self, ordinal: int | None) -> None:
        if ordinal is None:
            return
        body = self.body
        body.set_current_hunk(ordinal)
        self.current_file = self.diff_layout.hunk_refs[ordinal][0]
        body.scroll_to(y=self.diff_layout.hunk_rows[ordinal], animate=False, immediate=True, force=True)

    def _go_to_file(self, index: int | None, notify: bool) -> None:
        if index is None or index >= len(self.patch.files):
            return
        self.current_file = index
        self.file_list.highlighted = index
        self.body.scroll_to(y=self.diff_layout.file_rows[index], animate=False, immediate=True, force=True)
        if notify:
            self.post_message(self.FileSelected(self, self.patch.files[index].path, index))

    @on(OptionList.OptionSelected, "#diff-files")
    def _file_picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._go_to_file(event.option_index, notify=True)
        self.body.focus()

    @on(OptionList.OptionHighlighted, "#diff-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
