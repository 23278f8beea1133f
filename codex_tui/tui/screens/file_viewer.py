"""The read-only file viewer screen: one file of a task's checkout, opened from a cited `path:line`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from codex_tui.tui.bindings import FILE_VIEWER_BINDINGS
from codex_tui.tui.copy_text import copy_selection_for_ctrl_c, copy_selection_or
from codex_tui.tui.widgets.file_viewer import FileView
from codex_tui.tui.widgets.highlight import clean_line


@dataclass(frozen=True, slots=True)
class FileContent:
    """What OP_READ_FILE answered for one path."""

    path: str
    text: str
    truncated: bool = False
    binary: bool = False

    @classmethod
    def from_result(cls, path: str, data: dict[str, Any]) -> FileContent:
        """Read an OpResult's data (missing fields become defaults)."""
        return cls(
            path=str(data.get("path") or path),
            text=str(data.get("text") or ""),
            truncated=bool(data.get("truncated")),
            binary=bool(data.get("binary")),
        )


def viewer_title(content: FileContent, start: int, end: int, task_title: str) -> Content:
    """`src/a.py · lines 12–14 · read-only · <task>` (+ truncated / binary notes)."""
    lines = ""
    if start > 0:
        lines = f" · line {start}" if end <= start else f" · lines {start}–{end}"
    parts: list[str | tuple[str, str]] = [(clean_line(content.path), "bold $primary"), (lines, "bold")]
    parts.append((" · read-only", "$text-muted"))
    if task_title:
        parts += [(" · ", "$text-muted"), (clean_line(task_title), "$text-muted")]
    if content.truncated:
        parts.append(("  (truncated: the file is longer than shown)", "$text-warning"))
    return Content.assemble(*parts)


class FileViewerScreen(ModalScreen[None]):
    """Esc or q closes it; n scrolls back to the cited lines."""

    CSS_PATH = "file_viewer.tcss"
    BINDINGS: ClassVar[list[BindingType]] = FILE_VIEWER_BINDINGS

    def __init__(self, content: FileContent, start: int = 0, end: int = 0, task_title: str = "") -> None:
        super().__init__()
        self.content = content
        self.start = start
        self.end = max(start, end)
        self.task_title = task_title

    def compose(self) -> ComposeResult:
        """Title line over the file."""
        with Vertical(id="file-viewer-dialog"):
            yield Static(
                viewer_title(self.content, self.start, self.end, self.task_title), id="file-viewer-title"
            )
            yield FileView(id="file-viewer-body")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the view (or say why there is nothing to show) and focus it."""
        view = self.query_one(FileView)
        if self.content.binary:
            view.show_text(self.content.path, "(binary file: not shown)")
        else:
            view.show_text(self.content.path, self.content.text, self.start, self.end)
        view.focus()

    @property
    def view(self) -> FileView:
        """The file view."""
        return self.query_one(FileView)

    def action_close(self) -> None:
        """Back to the chat."""
        self.dismiss(None)

    def action_copy(self) -> None:
        """Copy the selection, or else the cited lines (or the lines in view)."""
        copy_selection_or(self.view)

    def action_copy_text(self) -> None:
        """Ctrl+C with a selection copies it (with a toast); without one, the key goes on to the app."""
        copy_selection_for_ctrl_c(self)

    def action_next_cited(self) -> None:
        """Scroll back to the cited lines."""
        self.view.scroll_to_cited()
