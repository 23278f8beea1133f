"""The chat pane: prompts, streamed Markdown answers, dimmed reasoning, compact tool lines, notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from textual import on
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from codex_tui.tui.bindings import CHAT_BINDINGS
from codex_tui.tui.citations import Citation, linkify, parse_href
from codex_tui.tui.copy_text import CopyItem, copy_selection_or
from codex_tui.tui.state import ChatBlock
from codex_tui.tui.tool_lines import fold

MAX_RENDERED_BLOCKS = 150
"""Widgets kept on screen; older blocks are removed (the model still has them)."""

TOOL_ICONS = {"": "›", "error": "✘"}
NOTE_ICONS = {"info": "ℹ", "warning": "⚠", "error": "✘"}


WEB_SCHEMES = frozenset({"http", "https"})


def browser_url(href: str) -> str | None:
    """`href` if it is a plain http(s) URL the browser may open, else None.

    The href is model text, already percent-decoded by Textual: `%6Aavascript:…` arrives as
    `javascript:…` (under `codex-tui serve` the page would run it, with the token), and a custom
    scheme (`vscode:`, `ms-msdt:`…) would start a local program. Browsers drop tabs and newlines
    inside a URL, so an href holding any control character is refused too.
    """
    if href != href.strip() or any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in href):
        return None
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    return href if parts.scheme.lower() in WEB_SCHEMES and parts.netloc else None


class PreviewRequested(Message):
    """The user activated an artifact line or a message's attached image: show that file."""

    def __init__(self, path: str, title: str) -> None:
        super().__init__()
        self.path = path
        self.title = title


COPY_WHAT = {
    "user": "your message",
    "agent": "the answer",
    "reasoning": "the reasoning",
    "tool": "the tool line",
}


def block_text(block: ChatBlock) -> str:
    """A block's text for the clipboard: an answer's Markdown source, a tool line with all its detail."""
    if block.kind == "tool" and block.detail:
        return f"{block.text}\n{block.detail}"
    return block.text


@dataclass(slots=True)
class _Rendered:
    widget: Widget
    block: ChatBlock
    length: int
    rev: int
    stream: MarkdownStream | None = None
    linked: bool = False
    """The finished text was re-rendered with its citations as links."""


def user_content(block: ChatBlock) -> Content:
    """A prompt with its attached image names."""
    label = {"steer": "steer", "follow_up": "follow-up"}.get(block.level, "you")
    parts: list[tuple[str, str] | str] = [(f"{label} ", "bold $primary"), block.text]
    if block.images:
        parts += ["\n", ("  ".join(f"▣ {name}" for name in block.images), "$secondary")]
    return Content.assemble(*parts)


def line_content(block: ChatBlock, *, expanded: bool = False) -> Content:
    """A tool or note line with its icon; a tool's detail below it, folded unless `expanded`."""
    if block.kind == "tool":
        icon = block.icon or TOOL_ICONS["error" if block.level == "error" else ""]
        parts: list[tuple[str, str] | str] = [(icon + " ", "$foreground-muted"), block.text]
        shown, hidden = (block.detail, 0) if expanded else fold(block.detail)
        if shown:
            parts.append("\n" + "\n".join("  " + row for row in shown.splitlines()))
        if hidden:
            parts += [
                "\n",
                (f"  … {hidden} more line{'s' if hidden > 1 else ''} (click to expand)", "italic"),
            ]
        return Content.assemble(*parts)
    icon = NOTE_ICONS.get(block.level, "ℹ") if block.kind == "note" else NOTE_ICONS["error"]
    return Content.assemble((icon + " ", ""), block.text)


class ToolLine(Static):
    """A tool line whose folded detail a click expands (and a second click folds again)."""

    def __init__(self, block: ChatBlock, *, classes: str) -> None:
        super().__init__(line_content(block), classes=classes)
        self.block = block
        self.expanded = False

    def show(self, block: ChatBlock) -> None:
        """Render `block` (a newer state of the same item) keeping the expanded state."""
        self.block = block
        self.update(line_content(block, expanded=self.expanded))
        self.set_class(block.level == "error", "error")

    def on_click(self) -> None:
        """Preview an artifact; else toggle between the folded and the whole detail."""
        if self.block.preview:
            self.post_message(PreviewRequested(self.block.preview, self.block.text.split(" — ", 1)[0]))
        elif fold(self.block.detail)[1] or self.expanded:
            self.expanded = not self.expanded
            self.show(self.block)


class UserLine(Static):
    """A prompt; a click on one with an attached image previews that image."""

    def __init__(self, block: ChatBlock, *, classes: str) -> None:
        super().__init__(user_content(block), classes=classes)
        self.block = block
        if block.preview:
            self.tooltip = "Click to preview the attached image"

    def on_click(self) -> None:
        """Preview the first attached image."""
        if self.block.preview:
            name = self.block.images[0] if self.block.images else self.block.preview
            self.post_message(PreviewRequested(self.block.preview, name))


class ChatView(VerticalScroll):
    """Renders a task's chat blocks incrementally; new text is streamed, never re-rendered.

    Callers serialise calls (the App renders under one lock): a call awaits mounts and streams.
    A finished answer is shown with its `path:line` citations as links (`CitationClicked`).
    """

    BINDINGS: ClassVar[list[BindingType]] = CHAT_BINDINGS

    class CitationClicked(Message):
        """The user activated a `path:line` citation in an answer."""

        def __init__(self, citation: Citation) -> None:
            super().__init__()
            self.citation = citation

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._rendered: dict[str, _Rendered] = {}
        self._order: list[str] = []
        self._task_id: str | None = None

    def on_mount(self) -> None:
        """Stay scrolled to the newest message until the user scrolls up."""
        self.anchor()

    async def show_blocks(self, task_id: str, blocks: list[ChatBlock]) -> None:
        """Bring the pane in line with `blocks` of `task_id` (a different task starts afresh)."""
        if task_id != self._task_id:
            await self.clear()
            self._task_id = task_id
        visible = blocks[-MAX_RENDERED_BLOCKS:]
        await self._remove_gone({block.id for block in visible})
        new: list[Widget] = []
        streaming: list[_Rendered] = []
        for block in visible:
            rendered = self._rendered.get(block.id)
            if rendered is None:
                rendered = _Rendered(self._make(block), block, len(block.text), block.rev, linked=block.done)
                self._rendered[block.id] = rendered
                self._order.append(block.id)
                new.append(rendered.widget)
                if block.kind in ("agent", "reasoning") and not block.done:
                    streaming.append(rendered)
            else:
                await self._update(block, rendered)
        if new:
            await self.mount_all(new)
            for rendered in streaming:
                if isinstance(rendered.widget, Markdown):
                    rendered.stream = Markdown.get_stream(rendered.widget)
        await self._prune()

    async def clear(self) -> None:
        """Remove every block (used when another task is selected)."""
        for rendered in self._rendered.values():
            if rendered.stream is not None:
                await rendered.stream.stop()
        self._rendered.clear()
        self._order.clear()
        self._task_id = None
        await self.remove_children()

    def _make(self, block: ChatBlock) -> Widget:
        classes = f"block {block.kind}" + (f" {block.level}" if block.level else "")
        if block.kind in ("agent", "reasoning"):
            text = linkify(block.text) if block.done and block.kind == "agent" else block.text
            return Markdown(text, classes=classes, open_links=False)
        if block.kind == "user":
            return UserLine(block, classes=classes)
        if block.kind == "tool":
            line = ToolLine(block, classes=classes)
            if block.preview:
                line.tooltip = "Click to preview"
            return line
        return Static(line_content(block), classes=classes)

    async def _update(self, block: ChatBlock, rendered: _Rendered) -> None:
        widget = rendered.widget
        if block.kind in ("agent", "reasoning") and isinstance(widget, Markdown):
            if block.rev != rendered.rev:
                await self._stop_stream(rendered)
                await widget.update(block.text)
            elif len(block.text) > rendered.length:
                delta = block.text[rendered.length :]
                if rendered.stream is not None:
                    await rendered.stream.write(delta)
                else:
                    await widget.append(delta)
            if block.done:
                await self._stop_stream(rendered)
                await self._link_citations(block, rendered, widget)
        elif block.rev != rendered.rev and isinstance(widget, ToolLine):
            widget.show(block)
        elif block.rev != rendered.rev and isinstance(widget, Static):
            widget.update(user_content(block) if block.kind == "user" else line_content(block))
            widget.set_class(block.level == "error", "error")
        rendered.length = len(block.text)
        rendered.rev = block.rev
        rendered.block = block

    def copy_item(self) -> CopyItem | None:
        """The lowest message in view (the newest while the pane follows the conversation)."""
        top, bottom = self.scroll_y, self.scroll_y + self.scrollable_content_region.height
        shown = [
            rendered.block
            for rendered in self._rendered.values()
            if rendered.widget.virtual_region.y < bottom and rendered.widget.virtual_region.bottom > top
        ]
        if not shown:
            return None
        block = shown[-1]
        return CopyItem(block_text(block), COPY_WHAT.get(block.kind, "the note"))

    def action_copy(self) -> None:
        """Copy the selection, or else the lowest message in view."""
        copy_selection_or(self)

    async def _link_citations(self, block: ChatBlock, rendered: _Rendered, widget: Markdown) -> None:
        """Once an answer is complete, show it again with its citations as links."""
        if block.kind != "agent" or (rendered.linked and block.rev == rendered.rev):
            return
        rendered.linked = True
        linked = linkify(block.text)
        if linked != block.text:
            await widget.update(linked)

    @on(Markdown.LinkClicked)
    def _link_clicked(self, event: Markdown.LinkClicked) -> None:
        """A citation opens the file viewer (through the App); other links open in the browser."""
        event.stop()
        citation = parse_href(event.href)
        if citation is not None:
            self.post_message(self.CitationClicked(citation))
        elif (url := browser_url(event.href)) is not None:
            self.app.open_url(url)
        else:
            self.app.notify(
                f"Not opened: only http(s) links open, not {event.href[:200]!r}", severity="warning"
            )

    async def _stop_stream(self, rendered: _Rendered) -> None:
        if rendered.stream is not None:
            stream, rendered.stream = rendered.stream, None
            await stream.stop()

    async def _remove_gone(self, live: set[str]) -> None:
        """Remove the widgets of blocks the model no longer shows (an undone turn, scrolled-off ones)."""
        if all(block_id in live for block_id in self._order):
            return
        gone = [block_id for block_id in self._order if block_id not in live]
        self._order = [block_id for block_id in self._order if block_id in live]
        await self._remove(gone)

    async def _prune(self) -> None:
        excess = len(self._order) - MAX_RENDERED_BLOCKS
        if excess <= 0:
            return
        old_ids, self._order = self._order[:excess], self._order[excess:]
        await self._remove(old_ids)

    async def _remove(self, block_ids: list[str]) -> None:
        widgets = []
        for block_id in block_ids:
            rendered = self._rendered.pop(block_id)
            await self._stop_stream(rendered)
            widgets.append(rendered.widget)
        await self.remove_children(widgets)
