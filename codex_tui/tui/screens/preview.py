"""The preview screen: an artifact or an attached image, drawn; other files as text or a size line."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from codex_tui.tui.bindings import PREVIEW_BINDINGS
from codex_tui.tui.images import image_widget
from codex_tui.tui.preview import Preview, load_preview
from codex_tui.tui.widgets.highlight import clean_line

IMAGE_BOX = (100, 30)
"""Largest picture (columns, rows) the preview draws."""


def preview_title(title: str, detail: str, size: int) -> Content:
    """`report.txt · text/plain · 1,234 bytes`."""
    parts: list[str | tuple[str, str]] = [(clean_line(title), "bold $primary")]
    if detail:
        parts.append((f" · {clean_line(detail)}", "$text-muted"))
    if size:
        parts.append((f" · {size:,} bytes", "$text-muted"))
    return Content.assemble(*parts)


class PreviewScreen(ModalScreen[None]):
    """Esc or q closes it; the file is read in a thread and never followed through a link."""

    CSS_PATH = "preview.tcss"
    BINDINGS: ClassVar[list[BindingType]] = PREVIEW_BINDINGS

    def __init__(self, path: Path, title: str, detail: str = "") -> None:
        super().__init__()
        self.path = path
        self.preview_name = title
        self.detail = detail
        self.preview: Preview | None = None
        """The loaded preview (None while it loads)."""

    def compose(self) -> ComposeResult:
        """Title, the body (filled once loaded), the keys."""
        with Vertical(id="preview-dialog"):
            yield Static(preview_title(self.preview_name, self.detail, 0), id="preview-title")
            with VerticalScroll(id="preview-body"):
                yield Static(Content("Loading…"), id="preview-loading")
        yield Footer()

    def on_mount(self) -> None:
        """Read the file off the event loop."""
        self._load()

    @work(thread=True, exit_on_error=False, group="preview")
    def _load(self) -> None:
        preview = load_preview(self.path, self.preview_name)
        self.app.call_from_thread(self.call_later, self._show, preview)

    async def _show(self, preview: Preview) -> None:
        self.preview = preview
        self.query_one("#preview-title", Static).update(
            preview_title(self.preview_name, self.detail, preview.size)
        )
        body = self.query_one("#preview-body", VerticalScroll)
        await body.remove_children()
        if preview.kind == "image" and preview.picture is not None:
            await body.mount(image_widget(preview.picture, *IMAGE_BOX, id="preview-image"))
            return
        text = preview.text
        if preview.kind == "text" and preview.truncated:
            text += "\n… (cut: the file is longer than shown)"
        classes = "preview-text" if preview.kind == "text" else f"preview-{preview.kind}"
        await body.mount(Static(Content(text), id="preview-text", classes=classes))

    def action_close(self) -> None:
        """Back to the app."""
        self.dismiss(None)
