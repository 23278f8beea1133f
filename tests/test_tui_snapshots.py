"""SVG snapshots of the main screens, replaying a recorded demo session (fixed ids, no clocks).

The session file comes from a real demo run (`scripts/screenshots.py --record-session`); replaying
it makes every screen identical from run to run and machine to machine.
Update after an intended change: `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from codex_tui.config import Config
from codex_tui.protocol import APPROVAL_REQUESTED, Event
from codex_tui.tui.app import CodexApp
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.help import HelpScreen
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.widgets.composer import PromptArea
from codex_tui.tui.widgets.diff_view import DiffView

SESSION = Path(__file__).parent / "data" / "demo_session.json"
SIZE = (160, 45)
Snap = Callable[..., bool]


def session() -> tuple[list[Event], dict[str, str]]:
    """The recorded demo: events in the order they happened, and each task's final patch."""
    raw = json.loads(SESSION.read_text(encoding="utf-8"))
    events = [Event(e["type"], e["task_id"], e["seq"], e["data"], e["ts"]) for e in raw["events"]]
    return events, raw["patches"]


def replay_app(
    tmp_path: Path, events: list[Event] | None = None, theme: str = "codex-dark", layout: str = "tabs"
) -> CodexApp:
    """The real app on a replay of the session (in the tabs layout unless `layout` says otherwise)."""
    recorded, patches = session()
    config = Config(layout=layout, home=tmp_path / "home", theme=theme, model="scripted:fix-median")
    source = RolloutReplay(recorded if events is None else events, patches)
    return CodexApp(config, source, repo=tmp_path, show_elapsed=False)


async def settle(pilot: Pilot[Any], condition: Callable[[], bool] | None = None) -> None:
    """Wait for the replay to be folded in (and `condition`), with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        done = not app._inbox and app.state.tasks and app.selected_id is not None
        if done and (condition is None or condition()):
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError("the replay did not settle")
    await pilot.pause(0.2)


def test_snapshot_main_view_chat(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=settle)


def test_snapshot_todo_pane(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f3")

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_diff_pane(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f4")
        app = pilot.app
        assert isinstance(app, CodexApp)
        await settle(pilot, lambda: bool(app.main_widget(DiffView).patch.files))

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_sandbox_log_pane(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f5")
        await pilot.pause(0.3)

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_approval_dialog(snap_compare: Snap, tmp_path: Path) -> None:
    events, _ = session()
    cut = next(i for i, e in enumerate(events) if e.type == APPROVAL_REQUESTED)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if not isinstance(pilot.app.screen, ApprovalScreen):  # asked by a task not in view:
            await pilot.press("ctrl+f")  # the jump to the next task that needs the user opens it
        await settle(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen))

    app = replay_app(tmp_path, events[: cut + 1])
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_compare_view(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+down")
        await pilot.press("f7")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen))
        for view in pilot.app.screen.query(DiffView):
            await settle(pilot, lambda v=view: bool(v.patch.files))

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_snapshot_help_screen(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", ["codex-light", "ember"])
def test_snapshot_main_view_in_other_themes(snap_compare: Snap, tmp_path: Path, theme: str) -> None:
    assert snap_compare(replay_app(tmp_path, theme=theme), terminal_size=SIZE, run_before=settle)
