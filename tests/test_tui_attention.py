"""Pure parts of mission control: attention items, the seen marker, conflicts, tiles, grid shape."""

from __future__ import annotations

from typing import Any

from codex_tui import protocol as p
from codex_tui.tui.attention import (
    SeenTracker,
    attention_items,
    first_approval,
    modal_approval,
    next_attention,
)
from codex_tui.tui.conflicts import conflict_summary, find_conflicts
from codex_tui.tui.screens.mission import grid_shape
from codex_tui.tui.state import AppState
from codex_tui.tui.widgets.task_list import TaskRow, render_row
from codex_tui.tui.widgets.task_tile import log_tail, tile_content, tile_info


class Events:
    """Feeds an AppState with events of made-up tasks (sequence numbers handled)."""

    def __init__(self) -> None:
        self.state = AppState()
        self.seqs: dict[str, int] = {}
        self.ts = 100.0

    def emit(self, task_id: str, type_: str, **data: Any) -> None:
        """One event of one task."""
        seq = self.seqs.get(task_id, 0) + 1
        self.seqs[task_id] = seq
        self.ts += 1
        self.state.apply(p.Event(type_, task_id, seq, data, self.ts))

    def task(self, task_id: str, status: str, *, repo: str = "/repo", group: str = "", **extra: Any) -> None:
        """A task created with this title and brought to `status`."""
        title = extra.pop("title", f"Task {task_id}")
        self.emit(task_id, p.TASK_CREATED, title=title, prompt=title, repo=repo, group_id=group)
        self.emit(task_id, p.TASK_STATUS, status="running")
        if status != "running":
            self.emit(task_id, p.TASK_STATUS, status=status, **extra)

    def approval(self, task_id: str, command: str = "pytest -q") -> None:
        """The task asks to run a command."""
        self.emit(task_id, p.TASK_STATUS, status="waiting_approval")
        self.emit(task_id, p.APPROVAL_REQUESTED, request_id=f"r-{task_id}", kind="command", command=command)

    def diff(self, task_id: str, *paths: str) -> None:
        """The task's diff changes these files."""
        files = [{"path": path, "status": "modified", "added": 1, "removed": 0} for path in paths]
        self.emit(task_id, p.DIFF_UPDATED, files=files, added=len(paths), removed=0)


def test_inbox_orders_approvals_then_failures_then_unseen_finished_tasks() -> None:
    ev = Events()
    ev.task("done", "ready")
    ev.task("broken", "failed", message="exit 1: tests failed")
    ev.task("busy", "running")
    ev.task("asking", "running")
    ev.approval("asking", "rm -rf build")
    items = attention_items(ev.state, SeenTracker())
    assert [(i.task_id, i.kind) for i in items] == [
        ("asking", "approval"),
        ("broken", "failed"),
        ("done", "finished"),
    ]
    assert items[0].detail == "rm -rf build"
    assert items[1].detail == "exit 1: tests failed"


def test_a_finished_task_leaves_the_inbox_once_seen_and_returns_when_it_finishes_again() -> None:
    ev = Events()
    ev.task("done", "ready")
    seen = SeenTracker()
    assert seen.mark(ev.state.tasks["done"]) is True
    assert seen.mark(ev.state.tasks["done"]) is False, "seeing it twice is no news"
    assert attention_items(ev.state, seen) == []
    ev.emit("done", p.TASK_STATUS, status="running")  # a follow-up
    assert seen.mark(ev.state.tasks["done"]) is False, "a running task is not 'seen finished'"
    ev.emit("done", p.TASK_STATUS, status="ready")
    assert [i.task_id for i in attention_items(ev.state, seen)] == ["done"]


def test_archived_tasks_need_no_attention() -> None:
    ev = Events()
    ev.task("old", "failed", message="boom")
    ev.state.hidden.add("old")
    assert attention_items(ev.state, SeenTracker()) == []


def test_next_attention_walks_the_inbox_and_wraps_around() -> None:
    ev = Events()
    ev.task("a", "ready")
    ev.task("b", "failed", message="x")
    ev.task("c", "running")
    ev.approval("c")
    seen = SeenTracker()
    assert next_attention(ev.state, seen, None) == "c"
    assert next_attention(ev.state, seen, "c") == "b"
    assert next_attention(ev.state, seen, "b") == "a"
    assert next_attention(ev.state, seen, "a") == "c"
    assert next_attention(ev.state, seen, "not-in-inbox") == "c"
    assert next_attention(AppState(), seen, None) is None


def test_only_the_approval_of_the_task_in_view_opens_as_a_dialog() -> None:
    ev = Events()
    ev.task("a", "running")
    ev.task("b", "running")
    ev.approval("b")
    assert modal_approval(ev.state, "a", set()) is None
    approval = modal_approval(ev.state, "b", set())
    assert approval is not None and approval.request_id == "r-b"
    assert modal_approval(ev.state, "b", {("b", "r-b")}) is None, "an answered request opens no dialog"
    assert first_approval(ev.state.tasks["b"]) is approval


def test_two_running_tasks_changing_the_same_file_conflict() -> None:
    ev = Events()
    ev.task("a", "running", title="Fix median")
    ev.task("b", "running", title="Speed up mean")
    ev.task("c", "running")
    ev.diff("a", "calc.py", "README.md")
    ev.diff("b", "calc.py")
    ev.diff("c", "docs/index.md")
    conflicts = find_conflicts(ev.state.visible_tasks())
    assert conflicts == {"a": [("calc.py", "b")], "b": [("calc.py", "a")]}
    titles = {t.id: t.title for t in ev.state.tasks.values()}
    assert conflict_summary(conflicts["a"], titles) == "calc.py also changed by Speed up mean"


def test_no_conflict_across_repositories_with_applied_tasks_or_between_attempts() -> None:
    ev = Events()
    ev.task("a", "running")
    ev.task("other-repo", "running", repo="/elsewhere")
    ev.task("applied", "applied")
    ev.task("attempt-1", "ready", group="g")
    ev.task("attempt-2", "ready", group="g")
    for task_id in ("a", "other-repo", "applied", "attempt-1", "attempt-2"):
        ev.diff(task_id, "calc.py")
    conflicts = find_conflicts(ev.state.visible_tasks())
    assert conflicts == {
        "a": [("calc.py", "attempt-1"), ("calc.py", "attempt-2")],
        "attempt-1": [("calc.py", "a")],
        "attempt-2": [("calc.py", "a")],
    }


def test_a_rename_conflicts_on_its_old_path_too() -> None:
    ev = Events()
    ev.task("a", "running")
    ev.task("b", "running")
    ev.emit("a", p.DIFF_UPDATED, files=[{"path": "new.py", "old_path": "old.py", "status": "renamed"}])
    ev.diff("b", "old.py")
    assert find_conflicts(ev.state.visible_tasks())["b"] == [("old.py", "a")]


def test_tile_shows_step_progress_log_tail_and_marks() -> None:
    ev = Events()
    ev.task("a", "running", title="Fix the median")
    todos = [
        {"text": "Read calc.py", "status": "completed"},
        {"text": "Write the tests", "status": "in_progress"},
        {"text": "Fix it", "status": "pending"},
    ]
    ev.emit("a", p.ITEM_UPDATED, item={"id": "plan", "type": p.ITEM_TODO_LIST, "items": todos})
    ev.emit("a", p.ITEM_STARTED, item={"id": "c1", "type": p.ITEM_COMMAND, "command": "pytest -q"})
    ev.emit(
        "a", p.OUTPUT_DELTA, item_id="c1", stream="stdout", text="".join(f"line {i}\n" for i in range(40))
    )
    ev.emit("a", p.OUTPUT_DELTA, item_id="c1", stream="stdout", text="\x1b]52;c;ZXZpbA==\x07tail\x1b[2J\n")
    task = ev.state.tasks["a"]
    info = tile_info(task, None, attention="approval", attention_detail="pytest -q", conflict="calc.py also")
    text = tile_content(info, 40, 12).plain
    lines = text.splitlines()
    assert lines[0] == "● ? ⚠ Fix the median"
    assert lines[2] == "◐ 1/3 Write the tests"
    assert "approval: pytest -q" in text and "⚠ calc.py also" in text
    assert lines[-1] == "tail", "the newest log line is last"
    assert "\x1b" not in text and "line 39" in text and "line 0\n" not in text
    assert len(lines) == 12, "the log fills exactly the room left"


def test_log_tail_reads_a_bounded_part_of_a_huge_log() -> None:
    ev = Events()
    ev.task("a", "running")
    ev.emit("a", p.ITEM_STARTED, item={"id": "c1", "type": p.ITEM_COMMAND, "command": "yes"})
    for chunk in range(500):
        ev.emit("a", p.OUTPUT_DELTA, item_id="c1", stream="stdout", text=f"chunk {chunk}\n" * 50)
    tail = log_tail(ev.state.tasks["a"], 5)
    assert tail == ("chunk 499",) * 5


def test_grid_fits_the_terminal_and_scrolls_past_it() -> None:
    assert grid_shape(4, 200, 48) == (2, 24)
    assert grid_shape(6, 160, 40) == (3, 20)
    assert grid_shape(9, 160, 42) == (3, 14)
    assert grid_shape(16, 200, 48) == (4, 12)
    assert grid_shape(16, 80, 30) == (2, 8), "narrow: fewer columns; rows below the fold scroll"
    assert grid_shape(1, 100, 30) == (1, 30)


def test_task_card_marks_attention_and_conflict() -> None:
    row = TaskRow("t", "●", "running", "Fix it", "", 1, 0, "1k", "", attention="approval", conflict=True)
    assert render_row(row, 40).plain.splitlines()[0] == "● ? ⚠ Fix it"
    plain = TaskRow("t", "●", "running", "Fix it", "", 1, 0, "1k", "")
    assert render_row(plain, 40).plain.splitlines()[0] == "● Fix it"


def test_a_running_tiles_meters_show_its_sandboxs_cpu_memory_and_disk() -> None:
    from codex_tui.protocol import ResourceUsage
    from codex_tui.tui.state import TaskModel
    from codex_tui.tui.widgets.task_tile import tile_content, tile_info

    task = TaskModel(id="t1", title="Busy", status="running")
    task.usage = ResourceUsage(
        cpu_percent=42.0, memory_bytes=140 << 20, memory_limit_bytes=2 << 30, disk_bytes=35 << 20
    )
    info = tile_info(task, None)
    assert info.meters.startswith("cpu 42%") and "140M" in info.meters
    assert "cpu 42%" in tile_content(info, 60, 10).plain
    task.status = "ready"
    assert tile_info(task, None).meters == ""  # a finished task's last sample is not news


def test_a_review_of_a_change_does_not_conflict_with_the_change_it_reviews() -> None:
    ev = Events()
    ev.task("change", "ready")
    ev.task("review", "ready")
    ev.state.tasks["review"].kind = "review"  # its diff is the change under review, never applied
    ev.diff("change", "calc.py")
    ev.diff("review", "calc.py")
    assert find_conflicts(ev.state.visible_tasks()) == {}


def test_conflicts_are_recomputed_only_when_a_diff_or_status_changed() -> None:
    from codex_tui.tui.conflicts import ConflictFinder

    ev = Events()
    ev.task("a", "running")
    ev.task("b", "running")
    ev.diff("a", "calc.py")
    ev.diff("b", "other.py")
    finder = ConflictFinder()
    first = finder(ev.state.visible_tasks())
    assert first == {} and finder(ev.state.visible_tasks()) is first  # streaming logs: no new work
    ev.diff("b", "calc.py")  # a new diff revision
    assert finder(ev.state.visible_tasks()) == {"a": [("calc.py", "b")], "b": [("calc.py", "a")]}
    ev.task("b", "applied")
    assert finder(ev.state.visible_tasks()) == {}
