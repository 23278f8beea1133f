"""Mission control and the attention inbox, driven with Pilot on the real manager and scripted model.

The `wired` fixture adds to CodexApp exactly the wiring the lead adds to app.py (see
tui/mission_ui.py): the controller refreshed before each render, approvals routed through it,
task cards marked, and the two actions of the F11 / Ctrl+F keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.attention import SeenTracker
from codex_tui.tui.mission_ui import MissionController
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.mission import MissionScreen
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.state import Approval, AppState
from codex_tui.tui.widgets.composer import PromptArea
from tests.test_tasks_support import patch_call, shell_call
from tests.test_tui_app import NEEDS_OK
from tests.test_tui_support import Harness, running_app

Snap = Callable[..., bool]


def edit_patch(comment: str) -> str:
    """A patch that changes calc.py's only function."""
    return (
        "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n"
        f"-    return a + b\n+    return a + b  # {comment}\n*** End Patch\n"
    )


HELLO = {"name": "hello", "match": "(?i)say hello", "turns": [{"text": "Hello."}]}
BROKEN = {
    "name": "broken",
    "match": "(?i)broken job",
    "turns": [{"errors": [{"status": 400, "message": "Bad request from the test"}], "text": "never"}],
}
EDIT = {
    "name": "edit",
    "match": "(?i)add a comment",
    "turns": [{"tool_calls": [patch_call(edit_patch("checked"))]}, {"text": "Added the comment."}],
}
EDIT_AND_WAIT = {
    "name": "edit-and-wait",
    "match": "(?i)rework calc",
    "turns": [
        {"tool_calls": [patch_call(edit_patch("reworked"))]},
        {"tool_calls": [shell_call("python3", "-c", "import time; time.sleep(60)", timeout_ms=120_000)]},
        {"text": "never reached"},
    ],
}
ENDLESS = {
    "name": "endless",
    "match": "(?i)endless job",
    "turns": [
        {
            "tool_calls": [
                shell_call(
                    "python3", "-uc", "print('working'); import time; time.sleep(60)", timeout_ms=120_000
                )
            ]
        },
        {"text": "never reached"},
    ],
}
SCENARIOS = [HELLO, NEEDS_OK, BROKEN, EDIT, EDIT_AND_WAIT, ENDLESS]
PROMPTS = ["Say hello", "Network check", "Broken job", "Add a comment", "Rework calc", "Endless job"]


def mission(app: CodexApp) -> MissionController:
    """The app's mission-control controller."""
    return app.mission_ui


def ids_by_title(h: Harness) -> dict[str, str]:
    """Task id by prompt."""
    return {str(t["title"]): str(t["id"]) for t in h.manager.tasks()}


async def six_tasks(h: Harness) -> dict[str, str]:
    """Submit the six tasks (not selecting them) and wait until each reached its state."""
    for prompt in PROMPTS:
        await h.app.send(p.Op(p.OP_SUBMIT, "", {"prompt": prompt}), select=False)
    ids = ids_by_title(h)
    await h.wait_status(ids["Say hello"], "ready")
    await h.wait_status(ids["Network check"], "waiting_approval")
    await h.wait_status(ids["Broken job"], "failed")
    await h.wait_status(ids["Add a comment"], "ready")
    await h.wait_status(ids["Endless job"], "running")
    state = h.app.state
    await h.wait(lambda: state.tasks[ids["Rework calc"]].files, what="the second edit's diff")
    await h.wait(lambda: state.tasks[ids["Add a comment"]].files, what="the first edit's diff")
    await h.wait(lambda: any(op[0] == "out" for op in state.tasks[ids["Endless job"]].log), what="log")
    return ids


async def test_mission_control_tiles_every_task_and_approves_from_a_tile(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS, size=(200, 50)) as h:
        await h.pilot.press("f11")
        await h.wait(lambda: isinstance(h.app.screen, MissionScreen), what="mission control")
        ids = await six_tasks(h)
        screen = h.app.screen
        assert isinstance(screen, MissionScreen)
        await h.wait(lambda: len(screen.query("TaskTile")) == 6, what="six tiles")
        assert screen.columns == 3
        assert not any(isinstance(s, ApprovalScreen) for s in h.app.screen_stack), "no dialog over it"
        await h.wait(lambda: "Needs you (4)" in h.text(), what="the inbox")
        await h.wait(lambda: "working" in h.text(), what="the live log in a tile (next tile frame)")
        text = h.text()
        for prompt in PROMPTS:
            assert prompt in text
        assert "approval: python3 -c 'print(" in text
        assert "failed: Bad request from the test" in text
        assert screen.tile(ids["Rework calc"]).info.conflict == "calc.py also changed by Add a comment"
        assert screen.tile(ids["Add a comment"]).info.conflict == "calc.py also changed by Rework calc"
        assert screen.tile(ids["Say hello"]).info.conflict == ""

        assert screen.focused_task_id == ids["Say hello"], "the task in view has the focus"
        await h.pilot.press("right")
        assert screen.focused_task_id == ids["Network check"]
        await h.pilot.press("y")
        await h.wait_status(ids["Network check"], "ready")
        await h.wait(lambda: screen.tile(ids["Network check"]).info.attention == "finished", what="tile")
        assert "Checked." in h.app.state.tasks[ids["Network check"]].blocks[-1].text
        assert not any(isinstance(s, ApprovalScreen) for s in h.app.screen_stack)

        await h.pilot.press("ctrl+f")
        assert screen.focused_task_id == ids["Add a comment"], "the next unseen result after this one"
        await h.pilot.press("ctrl+f")
        assert screen.focused_task_id == ids["Broken job"], "wrapping around to the failure"
        await h.pilot.press("enter")
        await h.wait(lambda: h.app.screen is h.app.screen_stack[0], what="the main view")
        assert h.app.selected_id == ids["Broken job"]


async def test_attention_key_jumps_to_the_approval_then_the_failure_then_an_unseen_result(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        for prompt in ("Say hello", "Broken job", "Network check"):
            await h.app.send(p.Op(p.OP_SUBMIT, "", {"prompt": prompt}), select=False)
        ids = ids_by_title(h)
        await h.wait_status(ids["Say hello"], "ready")
        await h.wait_status(ids["Broken job"], "failed")
        await h.wait_status(ids["Network check"], "waiting_approval")
        await h.pilot.pause(0.2)
        assert h.app.selected_id == ids["Say hello"], "the first task is in view"
        assert not isinstance(h.app.screen, ApprovalScreen), "another task's approval opens no dialog"

        await h.pilot.press("ctrl+f")
        await h.wait(lambda: isinstance(h.app.screen, ApprovalScreen), what="the dialog of the task in view")
        assert h.app.selected_id == ids["Network check"]
        await h.pilot.press("n")
        await h.wait_status(ids["Network check"], "ready", "failed")  # finished in view: seen

        await h.pilot.press("ctrl+f")
        await h.wait(lambda: h.app.selected_id == ids["Broken job"], what="the failed task")
        before = set(ids.values())
        await h.app.send(p.Op(p.OP_SUBMIT, "", {"prompt": "Say hello again"}), select=False)
        again = next(i for i in ids_by_title(h).values() if i not in before)
        await h.wait_status(again, "ready")  # finished while another task is in view: unseen
        await h.pilot.press("ctrl+f")
        await h.wait(lambda: h.app.selected_id == again, what="the unseen finished task")
        await h.pilot.press("ctrl+f")
        await h.wait(lambda: "Nothing needs you" in h.text(), what="an empty inbox")


async def test_task_list_marks_conflicting_edits_and_waiting_approvals(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        for prompt in ("Rework calc", "Add a comment", "Network check"):
            await h.app.send(p.Op(p.OP_SUBMIT, "", {"prompt": prompt}), select=False)
        ids = ids_by_title(h)
        await h.wait_status(ids["Network check"], "waiting_approval")
        state = h.app.state
        await h.wait(lambda: state.tasks[ids["Rework calc"]].files, what="the first diff")
        await h.wait(lambda: state.tasks[ids["Add a comment"]].files, what="the second diff")
        await h.wait(lambda: "⚠ Add a comment" in h.text(), what="the conflict mark")
        assert "⚠ Rework calc" in h.text()
        assert "? Network check" in h.text(), "the status icon marks the approval"


class MissionHost(App[str | None]):
    """Mission control alone, on a model fed by hand (no manager)."""

    def __init__(self, state: AppState) -> None:
        super().__init__()
        self.state = state
        self.decisions: list[tuple[str, str]] = []
        self.opened: list[str | None] = []

    def on_mount(self) -> None:
        def decide(approval: Approval, decision: str) -> None:
            self.decisions.append((approval.task_id, decision))

        self.push_screen(MissionScreen(self.state, SeenTracker(), on_decide=decide), self.opened.append)


async def test_a_refresh_redraws_only_the_tiles_whose_task_changed_taking_turns() -> None:
    state = AppState()
    for event in six_task_events():
        state.apply(event)
    app = MissionHost(state)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MissionScreen)
        screen.redraw_pending()
        start = screen.redraws
        event = p.Event(
            p.OUTPUT_DELTA, "t2", 100, {"item_id": "x", "stream": "stdout", "text": "fresh line\n"}
        )
        state.apply(event)
        screen.refresh_from(state, {"t2"})
        screen.redraw_pending()
        assert screen.redraws == start + 1
        assert screen.tile("t2").info.log[-1] == "fresh line"

        ids = ["t1", "t2", "t3", "t4", "t5", "t6"]
        for number, task_id in enumerate(ids):
            state.apply(p.Event(p.CONTEXT_UPDATED, task_id, 200, {"total": {"input_tokens": 9000 + number}}))
        screen.refresh_from(state, set(ids))
        before = screen.redraws
        screen.redraw_pending(limit=4)
        screen.redraw_pending(limit=4)
        assert screen.redraws == before + 6, "tiles take turns: each pending tile once"

        await pilot.press("right", "right")
        assert screen.focused_task_id == "t3"
        await pilot.press("y")
        assert app.decisions == [("t3", "approve")]
        await pilot.press("y")
        assert app.decisions == [("t3", "approve")], "an answered request is not sent twice"
        await pilot.press("down")
        assert screen.focused_task_id == "t6", "down moves one row (three columns)"
        await pilot.press("enter")
        assert app.opened == ["t6"]


# --- snapshot ------------------------------------------------------------------------------------


def six_task_events() -> list[p.Event]:
    """Six made-up tasks: two running (one editing the file a finished task edited), one waiting for
    approval, one failed, one finished, one queued; fixed timestamps."""
    events: list[p.Event] = []
    seqs: dict[str, int] = {}

    def emit(task_id: str, type_: str, **data: Any) -> None:
        seqs[task_id] = seqs.get(task_id, 0) + 1
        events.append(p.Event(type_, task_id, seqs[task_id], data, 1000.0 + len(events)))

    def task(task_id: str, title: str, status: str) -> None:
        emit(task_id, p.TASK_CREATED, title=title, prompt=title, repo="/work/calc", model="gpt-5-codex")
        emit(task_id, p.TASK_STATUS, status="running")
        emit(task_id, p.CONTEXT_UPDATED, total={"input_tokens": 1200 * len(seqs), "output_tokens": 340})
        if status != "running":
            emit(
                task_id, p.TASK_STATUS, status=status, message="Model error: HTTP 400" * (status == "failed")
            )

    def plan(task_id: str, done: int, *steps: str) -> None:
        items = [{"text": s, "status": "completed" if i < done else "pending"} for i, s in enumerate(steps)]
        if done < len(items):
            items[done]["status"] = "in_progress"
        emit(task_id, p.ITEM_UPDATED, item={"id": "plan", "type": p.ITEM_TODO_LIST, "items": items})

    def run(task_id: str, command: str, output: str) -> None:
        emit(
            task_id,
            p.ITEM_STARTED,
            item={"id": f"c{len(events)}", "type": p.ITEM_COMMAND, "command": command},
        )
        emit(task_id, p.OUTPUT_DELTA, item_id=f"c{len(events) - 1}", stream="stdout", text=output)

    def diff(task_id: str, *paths: str) -> None:
        files = [{"path": path, "status": "modified", "added": 3, "removed": 1} for path in paths]
        emit(task_id, p.DIFF_UPDATED, files=files, added=3 * len(paths), removed=len(paths))

    task("t1", "Fix the median of an even list", "ready")
    plan("t1", 3, "Read calc.py", "Write a failing test", "Fix median()")
    run("t1", "python -m pytest -q", "....\n4 passed in 0.02s\n")
    diff("t1", "calc.py", "test_calc.py")
    task("t2", "Speed up mean() on long lists", "running")
    plan("t2", 1, "Profile mean()", "Rewrite the loop", "Run the tests")
    run("t2", "python bench.py", "".join(f"round {i}: {i * 7 % 13} ms\n" for i in range(12)))
    diff("t2", "calc.py")
    task("t3", "Check the docs links", "running")
    emit("t3", p.TASK_STATUS, status="waiting_approval")
    emit("t3", p.APPROVAL_REQUESTED, request_id="r1", kind="command", command="curl -sI https://example.com")
    task("t4", "Port the CLI to argparse", "failed")
    task("t5", "Add type hints to stats.py", "running")
    plan("t5", 0, "Annotate stats.py", "Run mypy")
    run("t5", "mypy stats.py", "stats.py:3: error: Missing return type\nFound 1 error in 1 file\n")
    diff("t5", "stats.py")
    emit("t6", p.TASK_CREATED, title="Write a README section", prompt="Write a README section", repo="/w")
    return events


def snapshot_app(tmp_path: Path) -> CodexApp:
    """The real app on a replay of the six tasks."""
    config = Config(home=tmp_path / "home", theme="codex-dark", model="gpt-5-codex")
    return CodexApp(config, RolloutReplay(six_task_events()), repo=tmp_path, show_elapsed=False)


async def settle_mission(pilot: Pilot[Any]) -> None:
    """Fold the replay in, open mission control, wait for its six tiles."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        if not app._inbox and len(app.state.tasks) == 6 and app.selected_id:
            break
        await pilot.pause(0.05)
    await pilot.press("f11")
    for _ in range(100):
        if isinstance(app.screen, MissionScreen) and len(app.screen.query("TaskTile")) == 6:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)


def test_snapshot_mission_control_with_six_tasks(snap_compare: Snap, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=(160, 45), run_before=settle_mission)


def test_snapshot_attention_inbox(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle_mission(pilot)
        await pilot.press("i")
        await pilot.pause(0.2)

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(160, 45), run_before=run_before)
