"""Copy text out of the TUI: the mouse selection, or else the focused pane's item, by OSC 52.

`App.copy_to_clipboard` sends the text to the terminal's clipboard as an OSC 52 sequence (and keeps
it in `app.clipboard`). Many terminals refuse OSC 52 payloads over about 100 kB, so a bigger copy
is refused here with a toast that says so, rather than silently lost by the terminal. Text copied
is what the panes show, with control sequences stripped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from textual.actions import SkipAction
from textual.app import App
from textual.screen import Screen
from textual.widget import Widget

from codex_tui.boundary.terminal import strip_controls

MAX_OSC52_PAYLOAD = 100_000
"""Base64 bytes of one OSC 52 sequence; terminals commonly refuse more (xterm, tmux, Windows Terminal)."""


@dataclass(frozen=True, slots=True)
class CopyItem:
    """Text a pane offers to copy when nothing is selected, and what it is (for the toast)."""

    text: str
    what: str = ""


@runtime_checkable
class CopySource(Protocol):
    """A pane that can name its focused item's text (the chat block, the hunk, the visible lines)."""

    def copy_item(self) -> CopyItem | None:
        """The item to copy, or None when the pane shows nothing."""
        ...


def payload_size(text: str) -> int:
    """Bytes of the base64 payload an OSC 52 sequence carries for `text`."""
    return (len(text.encode("utf-8")) + 2) // 3 * 4


def amount(text: str) -> str:
    """`12 lines`, `1 line` or `34 characters`: how much a copy holds."""
    lines = text.count("\n") + 1
    if lines > 1:
        return f"{lines} lines"
    return f"{len(text)} character{'s' if len(text) != 1 else ''}"


def copy_to_clipboard(app: App[Any], text: str, what: str = "") -> bool:
    """Put `text` (controls stripped) on the system clipboard with a toast; False when refused."""
    text, what = strip_controls(text), strip_controls(what)
    if not text:
        app.notify("Nothing to copy", severity="warning", timeout=3)
        return False
    size = payload_size(text)
    if size > MAX_OSC52_PAYLOAD:
        app.notify(
            f"Not copied: {amount(text)} make {size // 1000} kB for the terminal's clipboard, and "
            f"terminals refuse over {MAX_OSC52_PAYLOAD // 1000} kB (OSC 52). Select less.",
            title="Too big to copy",
            severity="warning",
            timeout=6,
            markup=False,
        )
        return False
    app.copy_to_clipboard(text)
    app.notify(f"Copied {amount(text)}" + (f" ({what})" if what else ""), timeout=3, markup=False)
    return True


def selected_text(screen: Screen[Any]) -> str | None:
    """The screen's mouse selection, or None when nothing is selected."""
    text = screen.get_selected_text()
    return text or None


def focused_item(widget: Widget | None) -> CopyItem | None:
    """The copy item of `widget` or of the nearest pane around it that offers one."""
    node = widget
    while isinstance(node, Widget):
        if isinstance(node, CopySource):
            return node.copy_item()
        node = node.parent if isinstance(node.parent, Widget) else None
    return None


def copy_selection_or(widget: Widget) -> bool:
    """Copy the screen's selection if any, else `widget`'s item (a pane's `y` key calls this)."""
    text = selected_text(widget.screen)
    if text is not None:
        return copy_to_clipboard(widget.app, text)
    item = focused_item(widget)
    if item is None:
        widget.app.notify("Nothing to copy here", severity="warning", timeout=3)
        return False
    return copy_to_clipboard(widget.app, item.text, item.what)


def copy_selection_or_focused(screen: Screen[Any]) -> bool:
    """Copy the selection, else the focused pane's item (the app-level copy key calls this)."""
    text = selected_text(screen)
    if text is not None:
        return copy_to_clipboard(screen.app, text)
    item = focused_item(screen.focused)
    if item is None:
        screen.app.notify("Select text with the mouse, or focus a pane, to copy", timeout=3)
        return False
    return copy_to_clipboard(screen.app, item.text, item.what)


def copy_selection_for_ctrl_c(screen: Screen[Any]) -> None:
    """Textual's Ctrl+C copy of the selection, with the toast and the size bound; no selection: skip.

    A screen's `action_copy_text` calls this, so Ctrl+C falls through to the app when nothing is selected.
    """
    text = selected_text(screen)
    if text is None:
        raise SkipAction()
    copy_to_clipboard(screen.app, text)
