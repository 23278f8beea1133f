"""The panes layout: chat, to-do and the live log at once on a large terminal, tabs on a small one;
maximise and restore a pane, move the focus between panes, and a layout that is remembered.

Replays the recorded demo session (as the snapshot tests do), so every screen is the same each run.
"""

from __future__ import annotations

import json
from pathlib import Path

from textual.geometry import Size
from textual.widgets import ContentSwitcher, TabbedContent

from codex_tui.tui.app import CodexApp
from codex_tui.tui.panes import SPLIT_DEFAULT, SPLIT_STEP, LayoutChoice
from codex_tui.tui.themes import STATE_FILE
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.plan_view import PlanView
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from tests.test_tui_snapshots import Snap, replay_app, settle
from tests.test_tui_support import screen_text

LARGE = (200, 50)
SMALL = (100, 30)


def demo_app(home: Path, layout: str = "auto") -> CodexApp:
    """The real app on a replay of the recorded demo, in the given layout setting."""
    return replay_app(home, layout=layout)


def on_screen(app: CodexApp, widget_type: type) -> bool:
    """Is the widget displayed with a non-empty region (not hidden in another tab)?"""
    widget = app.main_widget(widget_type)
    return bool(widget.display and widget.parent and widget.parent.display and widget.region.area)


async def test_a_large_terminal_shows_chat_todo_and_log_at_once(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        assert app.panes_ui.layout.mode == "panes"
        assert on_screen(app, ChatView) and on_screen(app, PlanView) and on_screen(app, SandboxLog)
        assert not on_screen(app, DiffView)
        chat, plan, log = (app.main_widget(t).region for t in (ChatView, PlanView, SandboxLog))
        assert chat.right <= plan.x and plan.bottom <= log.y  # chat left; to-do above the log
        text = screen_text(app)
        assert "Run the test suite" in text and "python3 -m unittest discover" in text


async def test_a_small_terminal_falls_back_to_tabs_and_back_on_resize(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert app.panes_ui.layout.mode == "tabs"
        assert on_screen(app, ChatView) and not on_screen(app, PlanView) and not on_screen(app, SandboxLog)
        await pilot.resize_terminal(*LARGE)
        await pilot.pause(0.2)
        assert app.panes_ui.layout.mode == "panes"
        assert on_screen(app, PlanView) and on_screen(app, SandboxLog)
        await pilot.resize_terminal(*SMALL)
        await pilot.pause(0.2)
        assert app.panes_ui.layout.mode == "tabs" and not on_screen(app, SandboxLog)


async def test_the_diff_takes_the_chats_place_and_the_side_panes_stay(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await pilot.pause(0.3)
        assert on_screen(app, DiffView) and not on_screen(app, ChatView)
        assert on_screen(app, PlanView) and on_screen(app, SandboxLog)
        switcher = app.main_widget(TabbedContent).query_one(ContentSwitcher)
        assert [c.id for c in switcher.children if c.display] == ["diff", "todo", "log"]
        await pilot.press("f5")  # the log is a side pane: it gets the focus, the diff stays
        await pilot.pause(0.2)
        assert on_screen(app, DiffView) and app.main_widget(SandboxLog).has_focus
        await pilot.press("f2")
        await pilot.pause(0.2)
        assert on_screen(app, ChatView) and not on_screen(app, DiffView)


async def test_focus_moves_between_panes_and_the_footer_shows_the_focused_panes_keys(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        app.panes_ui.focus_pane("chat")
        seen = []
        for _ in range(3):
            await pilot.press("alt+right")
            await pilot.pause(0.1)
            seen.append(app.panes_ui.layout.pane_for_focus(app.focused))
        assert seen == ["todo", "log", "chat"]
        app.main_widget(SandboxLog).focus()
        for _ in range(40):  # the footer is recomposed after the focus moved
            await pilot.pause(0.05)
            if "Follow" in screen_text(app).splitlines()[-1]:
                break
        assert "Follow" in screen_text(app).splitlines()[-1]  # the log pane's own key, in the footer
        await pilot.press("alt+left")
        await pilot.pause(0.1)
        assert app.panes_ui.layout.pane_for_focus(app.focused) == "todo"


async def test_maximise_the_focused_pane_and_restore_it(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        app.main_widget(SandboxLog).focus()
        await pilot.press("f6")
        await pilot.pause(0.2)
        maximized = app.screen.maximized
        assert maximized is not None and maximized.id == "log"
        assert app.main_widget(SandboxLog).region.width > LARGE[0] - 10  # the whole width
        await pilot.press("f6")
        await pilot.pause(0.2)
        assert app.screen.maximized is None and on_screen(app, ChatView)
        await pilot.press("f6")
        await pilot.press("escape")  # Esc restores too
        await pilot.pause(0.2)
        assert app.screen.maximized is None


async def test_layout_and_split_are_remembered_for_the_next_run(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        switcher = app.main_widget(TabbedContent).query_one(ContentSwitcher)
        before = switcher.query_one("#chat").region.width
        await pilot.press("alt+shift+right")
        await pilot.pause(0.2)
        assert switcher.query_one("#chat").region.width > before
        await pilot.press("f12")  # auto → panes
        await pilot.press("f12")  # panes → tabs
        await pilot.pause(0.2)
        assert app.panes_ui.layout.mode == "tabs" and not on_screen(app, SandboxLog)
    state = json.loads((tmp_path / "home" / STATE_FILE).read_text())
    assert state["layout"] == "tabs" and state["split"] == SPLIT_DEFAULT + SPLIT_STEP
    again = demo_app(tmp_path)
    async with again.run_test(size=LARGE) as pilot:
        await settle(pilot)
        assert again.panes_ui.layout.mode == "tabs"
        assert again.panes_ui.layout.choice == LayoutChoice("tabs", SPLIT_DEFAULT + SPLIT_STEP)


def test_a_broken_remembered_layout_falls_back_to_the_setting() -> None:
    assert LayoutChoice.from_values("sideways", "wide", "panes") == LayoutChoice("panes", SPLIT_DEFAULT)
    assert LayoutChoice.from_values("tabs", 999).split == 75
    assert LayoutChoice("auto").mode(Size(139, 50)) == "tabs"
    assert LayoutChoice("auto").mode(Size(140, 34)) == "panes"


def test_snapshot_panes_layout_at_200x50(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=LARGE, run_before=settle)


def test_snapshot_tabs_layout_at_100x30(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(demo_app(tmp_path), terminal_size=SMALL, run_before=settle)
