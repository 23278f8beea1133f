"""Code review in the TUI: the review model, the Review pane, jumping to findings in the diff,
turning a finding into work, /review and its picker, and verdicts in the compare view."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.review import Finding, ReviewRequest, finding_prompt, parse_review, parse_review_args
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.review_picker import ReviewPickerScreen, local_branches, recent_commits
from codex_tui.tui.state import AppState
from codex_tui.tui.widgets.composer import Composer
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.review_pane import ReviewPane
from tests.conftest import run_git
from tests.snapshot_apps.review_session import FINDINGS_A, RecordingReplay, review_item, review_session
from tests.test_tui_support import screen_text

SIZE = (160, 45)


def event(type_: str, task_id: str, seq: int, **data: Any) -> p.Event:
    return p.Event(type_, task_id, seq, data, 100.0 + seq)


def review_state(item: dict[str, Any], target: dict[str, Any] | None = None) -> AppState:
    state = AppState()
    target = target or {"type": "uncommitted", "label": "uncommitted changes"}
    state.apply(
        event(p.TASK_CREATED, "r1", 1, title="Review", prompt="", kind="review", review_target=target)
    )
    state.apply(event(p.ITEM_COMPLETED, "r1", 2, item=item))
    return state


# --- the model ---------------------------------------------------------------------------------


def test_review_item_becomes_findings_sorted_by_priority_with_counts() -> None:
    state = review_state(review_item(FINDINGS_A, False, "Two problems."))
    task = state.tasks["r1"]
    assert task.kind == "review" and task.review_target["type"] == "uncommitted"
    assert task.review is not None
    assert [f.badge for f in task.review.findings] == ["P1", "P2", "P3"]
    assert task.review.counts() == {"P0": 0, "P1": 1, "P2": 1, "P3": 1}
    assert not task.review.correct and task.review.explanation == "Two problems."
    assert task.review.findings[0].location == "textkit/stats.py:40"
    assert task.review.findings[1].location == "textkit/stats.py:36-38"
    assert "Review: ✗ incorrect · 0 P0 · 1 P1 · 1 P2 · 1 P3" in task.blocks[-1].text


def test_failed_review_keeps_the_error_and_the_raw_text() -> None:
    item = {
        "id": "rv",
        "type": p.ITEM_REVIEW,
        "status": "failed",
        "error": "not JSON",
        "raw_text": "I think…",
    }
    review = review_state(item).tasks["r1"].review
    assert review is not None and review.failed
    assert (review.error, review.raw_text) == ("not JSON", "I think…")


def test_review_text_with_terminal_escapes_is_stripped() -> None:
    bad = dict(FINDINGS_A[0], title="\x1b]0;pwned\x07Evil \x1b[31mtitle", body="body\x1b[2J")
    review = review_state(review_item([bad], False, "x\x1b[1m")).tasks["r1"].review
    assert review is not None
    finding = review.findings[0]
    assert "\x1b" not in finding.title + finding.body + review.explanation
    assert finding.title == "Evil title"


def test_malformed_findings_fall_back_to_defaults() -> None:
    review = parse_review({"findings": [{"priority": "high", "code_location": "nowhere"}, 3], "status": "x"})
    assert [(f.title, f.priority, f.location) for f in review.findings] == [("(untitled finding)", 3, "")]
    assert not review.failed and review.confidence == 0.0


def test_markers_cover_each_findings_line_range() -> None:
    review = parse_review(review_item(FINDINGS_A, False, ""))
    assert review.markers() == {"textkit/stats.py": {36, 37, 38, 40}, "tests/test_stats.py": {30, 31}}


def test_finding_prompt_has_title_location_and_body() -> None:
    finding = Finding("Off by one", "The loop skips the last item.", 1, 0.9, "src/a.py", "", 3, 5)
    assert finding_prompt(finding).split("\n\n") == [
        "Fix this code review finding (P1): Off by one",
        "Location: src/a.py:3-5",
        "The loop skips the last item.",
    ]


def test_review_of_finds_the_newest_review_of_a_task() -> None:
    events, _ = review_session()
    state = AppState()
    for e in events:
        state.apply(e)
    review = state.review_of("task-2")
    assert review is not None and review.id == "task-5"
    assert state.review_of("task-1") is None


def test_review_arguments_pick_the_target() -> None:
    assert parse_review_args("base main focus on tests", "t1", []) == ReviewRequest(
        "base", base="main", instructions="focus on tests"
    )
    assert parse_review_args("commit abc123", None, []) == ReviewRequest("commit", commit="abc123")
    assert parse_review_args("attempts", "t1", ["t1", "t2"]) == ReviewRequest("task", task_ids=("t1", "t2"))
    assert parse_review_args("task", None, []) == "Select a task to review first"
    assert "Usage" in str(parse_review_args("sideways", "t1", []))
    assert parse_review_args("base", "t1", []) == "/review base needs a branch"


def test_review_request_becomes_submit_data() -> None:
    data = ReviewRequest("task", task_ids=("t1", "t2"), instructions="be strict").submit_data()
    assert data["kind"] == "review" and data["prompt"] == "be strict"
    assert data["review"] == {"target": "task", "task_id": "t1", "task_ids": ["t1", "t2"]}
    assert ReviewRequest("base", base="main").submit_data()["review"] == {"target": "base", "base": "main"}
    assert ReviewRequest("base").problem() == "Type the base branch to review against"


def test_branches_and_commits_are_listed_from_the_users_repo(git_repo: Path) -> None:
    run_git(git_repo, "branch", "feature/x")
    assert {"feature/x"} <= set(local_branches(git_repo))
    commits = recent_commits(git_repo)
    assert commits and all(len(sha) >= 7 for sha, _ in commits)
    assert local_branches(git_repo / "missing") == []


# --- the app -----------------------------------------------------------------------------------


@asynccontextmanager
async def review_app(
    tmp_path: Path, repo: Path | None = None
) -> AsyncIterator[tuple[CodexApp, Pilot[int], RecordingReplay]]:
    events, patches = review_session()
    source = RecordingReplay(events, patches)
    config = Config(layout="tabs", home=tmp_path / "home", theme="codex-dark", model="scripted")
    app = CodexApp(config, source, repo=repo or tmp_path, show_elapsed=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "task-7" in app.state.tasks and not app._inbox)
        yield app, pilot, source


async def until(pilot: Pilot[Any], condition: Callable[[], Any], what: str = "") -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}\n{screen_text(pilot.app)}")  # type: ignore[arg-type]


async def show_review(app: CodexApp, pilot: Pilot[int], task_id: str = "task-5") -> ReviewPane:
    app.goto_task(task_id)
    await pilot.pause(0.1)
    await pilot.press("f8")
    pane = app.main_widget(ReviewPane)
    await until(pilot, lambda: pane.review is not None, "the review in the pane")
    pane.findings_list.focus()
    await pilot.pause()
    return pane


async def test_review_pane_shows_verdict_explanation_and_findings(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        await show_review(app, pilot)
        text = screen_text(app)
        assert "✗ incorrect · 82% confident" in text and "0 P0 · 1 P1 · 1 P2 · 1 P3" in text
        assert "Reviewed: Add reading_time() (attempt 1/2)" in text
        assert "the empty-text behaviour contradicts the README" in text
        first, second = text.index("P1  Empty text returns 0"), text.index("P2  reading_time() ignores")
        assert first < second and "textkit/stats.py:36-38" in text


async def test_review_tab_only_for_review_tasks(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        app.goto_task("task-2")
        await pilot.pause(0.1)
        assert "Review" not in screen_text(app).splitlines()[0]
        await show_review(app, pilot)
        assert "Review" in screen_text(app).splitlines()[0]


async def test_choosing_a_finding_jumps_the_diff_to_its_marked_lines(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        await show_review(app, pilot)
        await pilot.press("n")  # P2 at textkit/stats.py:36-38
        await pilot.press("enter")
        view = app.main_widget(DiffView)
        await until(pilot, lambda: app.active_pane() == "diff" and view.patch.files, "the diff")
        await until(pilot, lambda: "36●+ def reading_time" in screen_text(app), "the marked line")
        assert view.current_file == view.patch.index_of("textkit/stats.py")
        assert view.body.markers["tests/test_stats.py"] == {30, 31}


async def test_finding_keys_in_the_diff_move_between_marked_lines(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        await show_review(app, pilot)
        await pilot.press("enter")
        view = app.main_widget(DiffView)
        await until(pilot, lambda: view.patch.files and view.body.markers, "the diff")
        view.body.focus()
        view.body.scroll_to(y=0, animate=False, immediate=True, force=True)
        await pilot.pause()
        starts = view.body.marked_rows()
        assert len(starts) == 3
        await pilot.press("n")
        assert view.current_finding == 0 and view.body.row_visible(starts[0])
        await pilot.press("n")
        assert view.current_finding == 1


async def test_fixing_a_finding_of_a_task_review_follows_up_on_that_task(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        await show_review(app, pilot)
        await pilot.press("f")
        await until(pilot, lambda: any(op.type == p.OP_USER_MESSAGE for op in source.ops), "the follow-up")
        op = next(op for op in source.ops if op.type == p.OP_USER_MESSAGE)
        assert op.task_id == "task-2"
        assert op.data["text"].startswith("Fix this code review finding (P1): Empty text returns 0 minutes")
        assert "Location: textkit/stats.py:40" in op.data["text"]
        assert "Sent the finding to the reviewed task" in screen_text(app)


async def test_fixing_a_finding_of_an_uncommitted_review_starts_a_code_task(tmp_path: Path) -> None:
    events, patches = review_session()
    target = {"type": "uncommitted", "label": "uncommitted changes"}
    events = [
        p.Event(e.type, e.task_id, e.seq, dict(e.data, review_target=target), e.ts)
        if e.type == p.TASK_CREATED and e.task_id == "task-5"
        else e
        for e in events
    ]
    source = RecordingReplay(events, patches)
    app = CodexApp(
        Config(layout="tabs", home=tmp_path / "h", model="scripted"),
        source,
        repo=tmp_path,
        show_elapsed=False,
    )
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "task-7" in app.state.tasks)
        await show_review(app, pilot)
        await pilot.press("f")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the new task")
        op = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert op.data["kind"] == "code" and op.data["repo"] == "/tmp/codex-tui-demo/textkit"
        assert op.data["prompt"].startswith("Fix this code review finding (P1)")
        assert "Started a new Code task" in screen_text(app)


async def test_failed_review_shows_the_error_and_raw_text(tmp_path: Path) -> None:
    events, patches = review_session()
    failed = {
        "id": "rv",
        "type": p.ITEM_REVIEW,
        "status": "failed",
        "error": "not review JSON",
        "raw_text": "LGTM!",
    }
    events.append(p.Event(p.ITEM_COMPLETED, "task-6", 99, {"item": failed}, 2e9))
    source = RecordingReplay(events, patches)
    app = CodexApp(
        Config(layout="tabs", home=tmp_path / "h", model="scripted"),
        source,
        repo=tmp_path,
        show_elapsed=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.state.tasks.get("task-6") and app.state.tasks["task-6"].last_seq == 99)
        await show_review(app, pilot, "task-6")
        text = screen_text(app)
        assert "✗ The review failed" in text and "Error: not review JSON" in text and "LGTM!" in text


async def test_review_slash_with_a_target_submits_at_once(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.goto_task("task-2")
        await pilot.pause(0.1)
        composer = app.main_widget(Composer)
        composer.area.insert("/review attempts look for missing tests")
        await pilot.press("enter")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the review")
        op = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert op.data["review"] == {"target": "task", "task_id": "task-2", "task_ids": ["task-2", "task-3"]}
        assert op.data["prompt"] == "look for missing tests"


async def test_review_picker_reviews_against_a_chosen_branch(tmp_path: Path, git_repo: Path) -> None:
    run_git(git_repo, "branch", "release")
    async with review_app(tmp_path, repo=git_repo) as (app, pilot, source):
        app.main_widget(Composer).area.insert("/review")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReviewPickerScreen), "the picker")
        picker = app.screen
        assert isinstance(picker, ReviewPickerScreen)
        await until(pilot, lambda: "release" in picker.branches, "the branches")
        await pilot.press("down", "enter")
        await pilot.press(*"rel")
        await until(pilot, lambda: "release" in screen_text(app))
        await pilot.press("enter")  # the one branch left is taken; on to the instructions
        await pilot.press(*"security")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the review")
        op = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert op.data["review"] == {"target": "base", "base": "release"}
        assert op.data["prompt"] == "security"


async def test_review_picker_needs_a_commit_before_starting(tmp_path: Path, git_repo: Path) -> None:
    async with review_app(tmp_path, repo=git_repo) as (app, pilot, source):
        app.action_review()
        await until(pilot, lambda: isinstance(app.screen, ReviewPickerScreen), "the picker")
        await pilot.press("down", "down", "ctrl+s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ReviewPickerScreen)
        assert "Type the commit to review" in screen_text(app)
        assert not any(op.type == p.OP_SUBMIT for op in source.ops)


async def test_compare_view_shows_each_attempts_verdict_and_reviews_all(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.goto_task("task-2")
        await pilot.pause(0.1)
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare view")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "Review: ✗ incorrect · 0 P0 · 1 P1 · 1 P2 · 1 P3" in text
        assert "Review: ✓ correct · 0 P0 · 0 P1 · 1 P2" in text
        await pilot.press("v")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the reviews")
        op = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert op.data["review"]["task_ids"] == ["task-2", "task-3"]


async def test_help_lists_the_review_and_ask_keys(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, _pilot, _):
        help_text = app.help_text()
        for binding_id in (
            "review.fix",
            "review.next",
            "diff.next_finding",
            "composer.toggle_ask",
            "task.do_it",
        ):
            assert f"`{binding_id}`" in help_text
        assert "`/review [TARGET] [INSTRUCTIONS]`" in help_text and "`/ask [PROMPT]`" in help_text
