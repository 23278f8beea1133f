"""SVG snapshots of the review and Ask screens, replaying the demo session plus review and Ask tasks.

Update after an intended change: `pytest tests/test_tui_review_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.file_viewer import FileViewerScreen
from codex_tui.tui.widgets.composer import PromptArea
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.file_viewer import FileView
from codex_tui.tui.widgets.review_pane import ReviewPane
from tests.snapshot_apps.review_session import RecordingReplay, review_session

SIZE = (160, 45)
Snap = Callable[..., bool]


def review_replay_app(tmp_path: Path) -> CodexApp:
    """The real app on the demo session with review and Ask tasks."""
    events, patches = review_session()
    config = Config(layout="tabs", home=tmp_path / "home", theme="codex-dark", model="scripted:fix-median")
    return CodexApp(config, RecordingReplay(events, patches), repo=tmp_path, show_elapsed=False)


async def settle(pilot: Pilot[Any], condition: Callable[[], Any] | None = None) -> None:
    """Wait for the replay to be folded in (and `condition`), with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        done = not app._inbox and "task-7" in app.state.tasks and app.selected_id is not None
        if done and (condition is None or condition()):
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError("the replay did not settle")
    await pilot.pause(0.2)


async def open_review(pilot: Pilot[Any]) -> CodexApp:
    """Select the first review task and show its Review pane."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    await settle(pilot)
    app.goto_task("task-5")
    await pilot.pause(0.1)
    await pilot.press("f8")
    pane = app.main_widget(ReviewPane)
    await settle(pilot, lambda: pane.review is not None)
    return app


def test_snapshot_review_pane_with_findings(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await open_review(pilot)
        app.main_widget(ReviewPane).findings_list.focus()
        await pilot.pause(0.1)

    assert snap_compare(review_replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_diff_with_finding_markers(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await open_review(pilot)
        app.main_widget(ReviewPane).findings_list.focus()
        await pilot.press("n", "enter")
        view = app.main_widget(DiffView)
        await settle(pilot, lambda: view.patch.files and view.body.markers)

    assert snap_compare(review_replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_file_viewer(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CodexApp)
        await settle(pilot)
        app.goto_task("task-7")
        await pilot.pause(0.1)
        app.action_open_citation("cite:textkit/stats.py:19-25")
        await settle(pilot, lambda: isinstance(app.screen, FileViewerScreen))
        view = app.screen.query_one(FileView)
        await settle(pilot, lambda: bool(view.spans))

    assert snap_compare(review_replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_compare_view_with_verdicts(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CodexApp)
        await settle(pilot)
        app.goto_task("task-2")
        await pilot.pause(0.1)
        await pilot.press("f7")
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen))
        for view in app.screen.query(DiffView):
            await settle(pilot, lambda v=view: bool(v.patch.files))

    assert snap_compare(review_replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)
