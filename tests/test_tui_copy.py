"""Copying text out of the TUI: mouse selections and the `y` key, to the clipboard by OSC 52, with a toast."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.geometry import Offset
from textual.pilot import Pilot
from textual.selection import Selection
from textual.widget import Widget

from codex_tui.tui.copy_text import MAX_OSC52_PAYLOAD, amount, copy_to_clipboard, payload_size
from codex_tui.tui.screens.file_viewer import FileContent, FileViewerScreen
from codex_tui.tui.state import ChatBlock
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.file_viewer import FileView
from codex_tui.tui.widgets.line_selection import selected_rows
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from tests.test_tui_snapshots import replay_app, settle

PATCH = (
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
    "@@ -1,3 +1,3 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n \n"
    "@@ -10,2 +10,3 @@ def sub(a, b):\n     return a - b\n+\n+MAX = 10\n"
)


class PanesApp(App[None]):
    """The copyable panes side by side, each 40 columns wide."""

    CSS = "Horizontal > * { width: 40; height: 1fr; }"

    def __init__(self) -> None:
        super().__init__()
        self.osc52: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ChatView(id="chat")
            yield SandboxLog(id="log")
            yield DiffView(id="diff")

    def on_mount(self) -> None:
        """Record what would reach the terminal's clipboard."""
        driver = self._driver
        assert driver is not None
        write = driver.write

        def recording_write(data: str) -> None:
            if data.startswith("\x1b]52;"):
                self.osc52.append(data)
            write(data)

        driver.write = recording_write  # type: ignore[method-assign]


def toasts(app: App[Any]) -> list[str]:
    """The messages of the notifications shown so far."""
    return [str(notification.message) for notification in app._notifications]


def osc52_text(sequence: str) -> str:
    """The text an OSC 52 clipboard sequence carries."""
    assert sequence.startswith("\x1b]52;c;") and sequence.endswith("\a")
    return base64.b64decode(sequence[len("\x1b]52;c;") : -1]).decode("utf-8")


def fill_log(log: SandboxLog, lines: int) -> None:
    """A command with `lines` numbered output lines, flushed."""
    log.begin_command("c1", "make test")
    log.append_output("c1", "stdout", "".join(f"line {n}\n" for n in range(1, lines + 1)))
    log.flush()


async def drag(pilot: Pilot[Any], widget: Widget, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press the mouse at `start` in `widget`, move it to `end`, release it."""
    await pilot.mouse_down(widget, offset=start)
    await pilot.hover(widget, offset=end)
    await pilot.mouse_up(widget, offset=end)
    await pilot.pause()


def test_selected_rows_cut_the_first_and_last_rows_at_the_selection() -> None:
    rows = ["alpha", "bravo", "charlie", "delta"]
    selection = Selection(Offset(2, 1), Offset(3, 3))
    assert selected_rows(selection, 0, 4, rows.__getitem__) == "avo\ncharlie\ndel"
    assert selected_rows(Selection(Offset(1, 2), Offset(4, 2)), 0, 4, rows.__getitem__) == "har"
    assert selected_rows(Selection(None, None), 0, 4, rows.__getitem__) == "\n".join(rows)


def test_selection_edges_on_dropped_rows_are_clamped_to_the_rows_kept() -> None:
    rows = {10: "ten", 11: "eleven", 12: "twelve"}
    assert selected_rows(Selection(Offset(2, 3), Offset(3, 11)), 10, 13, rows.__getitem__) == "ten\nele"


def test_amount_counts_lines_or_characters() -> None:
    assert (amount("a\nb\nc"), amount("abc"), amount("x")) == ("3 lines", "3 characters", "1 character")
    assert payload_size("abc") == 4 and payload_size("abcd") == 8


async def test_a_copy_over_the_osc52_limit_is_refused_with_a_toast_that_says_why() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        big = "x" * 80_000 + "\n" + "y" * 10
        assert payload_size(big) > MAX_OSC52_PAYLOAD
        assert copy_to_clipboard(app, big) is False
        await pilot.pause()
        assert app.clipboard == "" and app.osc52 == []
        assert "100 kB" in toasts(app)[-1] and "OSC 52" in toasts(app)[-1]


async def test_copied_text_has_no_terminal_control_sequences() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        assert copy_to_clipboard(app, "ok\x1b]52;c;ZXZpbA==\x07 done\x1b[2J")
        await pilot.pause()
        assert app.clipboard == "ok done"
        assert osc52_text(app.osc52[-1]) == "ok done"


async def test_mouse_selection_in_the_log_then_y_copies_exactly_the_selected_text() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        log = app.query_one(SandboxLog)
        fill_log(log, 5)
        log.action_scroll_home()
        await pilot.pause()
        await drag(pilot, log, (2, 1), (4, 3))  # rows: header, line 1, line 2, line 3; the end cell is in
        assert app.screen.get_selected_text() == "ne 1\nline 2\nline "
        log.focus()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "ne 1\nline 2\nline "
        assert osc52_text(app.osc52[-1]) == "ne 1\nline 2\nline "
        assert toasts(app)[-1] == "Copied 3 lines"


async def test_y_in_the_log_without_a_selection_copies_the_lines_in_view() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 6)) as pilot:
        log = app.query_one(SandboxLog)
        fill_log(log, 50)
        await pilot.pause()
        log.focus()
        await pilot.press("y")
        await pilot.pause()
        shown = log.scrollable_content_region.height
        expected = "\n".join(f"line {n}" for n in range(51 - shown, 51))
        assert app.clipboard == expected
        assert toasts(app)[-1] == f"Copied {shown} lines (the log's visible lines)"


async def test_selected_log_rows_are_drawn_in_the_selection_style() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        log = app.query_one(SandboxLog)
        fill_log(log, 3)
        await pilot.pause()
        await drag(pilot, log, (0, 1), (6, 1))
        selection_style = app.screen.get_component_rich_style("screen--selection")
        row = log.render_line(1)
        styled = [
            segment.text
            for segment in row
            if segment.style and segment.style.bgcolor == selection_style.bgcolor
        ]
        assert "".join(styled) == "line 1"


async def test_y_in_the_diff_copies_the_current_hunk_as_patch_text() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        diff = app.query_one(DiffView)
        diff.set_patch(PATCH)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        diff.body.focus()
        await pilot.press("]", "]", "y")
        await pilot.pause()
        assert app.clipboard == "@@ -10,2 +10,3 @@ def sub(a, b):\n     return a - b\n+\n+MAX = 10"
        assert toasts(app)[-1] == "Copied 4 lines (a hunk of calc.py)"


async def test_mouse_selection_in_the_diff_copies_the_rows_as_shown() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        diff = app.query_one(DiffView)
        diff.set_patch(PATCH)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        body = diff.body
        await drag(pilot, body, (0, 4), (30, 4))  # file header, hunk header, context, removed, added
        assert app.screen.get_selected_text() == "    2 +     return a + b"  # old, new, marker, sign


async def test_y_in_the_chat_copies_the_lowest_message_in_view() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 30)) as pilot:
        chat = app.query_one(ChatView)
        blocks = [
            ChatBlock("b1", "user", "Fix the median"),
            ChatBlock("b2", "tool", "ran tests", detail="3 passed"),
            ChatBlock("b3", "agent", "Fixed **median** in `stats.py`.", done=True),
        ]
        await chat.show_blocks("t1", blocks)
        await pilot.pause()
        chat.focus()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "Fixed **median** in `stats.py`."
        assert toasts(app)[-1] == "Copied 31 characters (the answer)"


async def test_mouse_selection_across_chat_messages_is_copied() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 30)) as pilot:
        chat = app.query_one(ChatView)
        await chat.show_blocks(
            "t1", [ChatBlock("b1", "note", "first note"), ChatBlock("b2", "note", "second")]
        )
        await pilot.pause()
        first, second = chat.children
        await pilot.mouse_down(first, offset=(2, 0))
        await pilot.hover(second, offset=(8, 0))
        await pilot.mouse_up(second, offset=(8, 0))
        await pilot.pause()
        chat.focus()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "first note\nℹ second"


@pytest.fixture
def viewed() -> FileContent:
    """A six-line file as OP_READ_FILE answers it."""
    return FileContent("textkit/stats.py", "".join(f"row {n}\n" for n in range(1, 7)))


async def test_file_viewer_y_copies_the_cited_lines(tmp_path: Path, viewed: FileContent) -> None:
    app = replay_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await app.push_screen(FileViewerScreen(viewed, 2, 4, "a task"))
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "row 2\nrow 3\nrow 4"
        assert toasts(app)[-1] == "Copied 3 lines (lines 2–4 of textkit/stats.py)"


async def test_file_viewer_mouse_selection_and_ctrl_c_copies_what_is_shown(
    tmp_path: Path, viewed: FileContent
) -> None:
    app = replay_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await app.push_screen(FileViewerScreen(viewed, 0, 0, "a task"))
        await pilot.pause()
        view = app.screen.query_one(FileView)
        await drag(pilot, view, (4, 0), (9, 1))
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard == "row 1\n2   row 2"
        assert toasts(app)[-1] == "Copied 2 lines"
