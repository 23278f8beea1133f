"""The diff pane: a file list (path, status, +N −M) over a virtualised view of every hunk.

The patch is parsed and laid out in a thread worker; `DiffBody` (diff_body.py) draws only the rows
on screen and highlights lazily. All colours come from theme
variables (component classes + `textual.highlight` styles), so every theme looks right.
Every text drawn from the patch (lines, paths, hunk headers) goes through `clean_line`: a control
character a task wrote shows as U+FFFD, never reaches the terminal, and never hides code under review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pygments.lexer import Lexer
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from codex_tui.tui.bindings import DIFF_BINDINGS
from codex_tui.tui.copy_text import CopyItem, copy_selection_or
from codex_tui.tui.widgets.diff_body import EMPTY_TEXT, STATUS_TAGS, DiffBody
from codex_tui.tui.widgets.diff_model import (
    DiffLayout,
    FileDiff,
    Patch,
    Row,
    layout_patch,
    parse_patch,
)
from codex_tui.tui.widgets.highlight import clean_line, lexer_for_path
from codex_tui.tui.widgets.short_path import shorten_path

__all__ = ["EMPTY_TEXT", "DiffBody", "DiffView", "ParsedPatch", "file_list_prompt", "prepare_patch"]


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


def file_list_prompt(file: FileDiff, width: int = 0) -> Content:
    """The file list entry: status letter, path, +N −M; the path shortened to fit `width` (0: whole)."""
    tag, tag_style = STATUS_TAGS.get(file.status, ("?", "$foreground 60%"))
    counts: list[str | tuple[str, str]] = (
        [("binary", "$foreground 60% italic")]
        if file.binary
        else [(f"+{file.added}", "$text-success"), " ", (f"−{file.removed}", "$text-error")]
    )
    room = width - 4 - sum(len(part if isinstance(part, str) else part[0]) for part in counts)
    path = (
        shorten_path(clean_line(file.display_path), max(8, room))
        if width > 0
        else clean_line(file.display_path)
    )
    return Content.assemble((tag, tag_style), " ", path, "  ", *counts)


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
        self.current_finding: int | None = None
        self._pending_reveal: tuple[str, int] | None = None
        self._path_width = 0

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
        self.current_finding = None
        if self._pending_reveal is not None:
            path, line = self._pending_reveal
            self._pending_reveal = None
            # after the layout of the new file list settles, so the scroll limit is the final one
            self.call_after_refresh(self.call_after_refresh, self.reveal, path, line)
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
        width = self._path_width = self._file_list_width()
        file_list.add_options(
            Option(file_list_prompt(file, width), id=str(index))
            for index, file in enumerate(self.patch.files)
        )
        file_list.set_class(not self.patch.files, "-empty")
        keep = self.patch.index_of(keep_path) if keep_path else None
        if self.patch.files:
            file_list.highlighted = keep or 0

    def _file_list_width(self) -> int:
        """Columns the file list has for one entry (0 before the first layout)."""
        file_list = self.file_list
        gutter = file_list.styles.gutter.width + file_list.styles.scrollbar_size_vertical
        return max(0, self.size.width - gutter)

    def on_resize(self) -> None:
        """Fit the file list's paths to the new width."""
        if self.patch.files and self._file_list_width() != self._path_width:
            highlighted = self.file_list.highlighted
            keep = self.patch.files[highlighted].path if highlighted is not None else None
            self._fill_file_list(keep)

    # --- review findings --------------------------------------------------------------------

    def set_markers(self, markers: dict[str, set[int]]) -> None:
        """Mark the lines review findings point at (new-side line numbers per path)."""
        self.body.set_markers(markers)
        self.refresh_bindings()

    def set_empty_text(self, text: str) -> None:
        """What the pane says when the patch has no files."""
        body = self.body
        if body.empty_text != text:
            body.empty_text = text
            body.refresh()

    def reveal(self, path: str, line: int, *, after_next_patch: bool = False) -> bool:
        """Scroll to `line` (new side) of `path`; with `after_next_patch`, once the coming patch is shown.

        Returns whether the file is in the patch on screen (a jump happened).
        """
        if after_next_patch:
            self._pending_reveal = (path, line)
            return False
        index = self.patch.index_of(path)
        if index is None:
            return False
        layout = self.diff_layout
        target = layout.file_rows[index]
        for row_index in range(layout.file_rows[index], layout.file_end(index)):
            row = layout.rows[row_index]
            numbers = [x.new_no for x in (row.line, row.right) if x is not None and x.new_no is not None]
            if numbers and min(numbers) >= line:
                target = row_index
                break
        self.current_file = index
        self.file_list.highlighted = index
        self.body.scroll_to(y=max(0, target - 3), animate=False, immediate=True, force=True)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Finding keys only when the diff has marked lines."""
        if action in ("next_finding", "prev_finding"):
            return bool(self.body.markers)
        return True

    def action_next_finding(self) -> None:
        """Scroll to the next line with a review finding."""
        self._go_to_finding(+1)

    def action_prev_finding(self) -> None:
        """Scroll to the previous line with a review finding."""
        self._go_to_finding(-1)

    def _go_to_finding(self, delta: int) -> None:
        starts = self.body.marked_rows()
        index = self._step(starts, self.current_finding, delta)
        if index is None:
            self.app.bell()
            return
        self.current_finding = index
        self.body.scroll_to(y=max(0, starts[index] - 3), animate=False, immediate=True, force=True)

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

    # --- copying ----------------------------------------------------------------------------

    def copy_item(self) -> CopyItem | None:
        """The current hunk (or the first in view) as patch text."""
        ordinal = self.body.hunk_in_view()
        if ordinal is None:
            return None
        file = self.patch.files[self.diff_layout.hunk_refs[ordinal][0]]
        return CopyItem(self.body.hunk_text(ordinal), f"a hunk of {clean_line(file.display_path)}")

    def action_copy(self) -> None:
        """Copy the selection, or else the current hunk."""
        copy_selection_or(self)

    @on(OptionList.OptionSelected, "#diff-files")
    def _file_picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._go_to_file(event.option_index, notify=True)
        self.body.focus()

    @on(OptionList.OptionHighlighted, "#diff-files")
    def _file_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
