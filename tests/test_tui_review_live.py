"""Review and Ask end to end in the TUI: the real task manager, local sandbox and scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_tui import protocol as p
from codex_tui.tui.screens.file_viewer import FileViewerScreen
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.file_viewer import FileView
from codex_tui.tui.widgets.review_pane import ReviewPane
from tests.test_tasks_support import add_file_patch, patch_call, scenario, shell_call
from tests.test_tui_app import new_task
from tests.test_tui_support import running_app

BUG = {
    "title": "add() subtracts",
    "body": "Every caller gets the wrong sum.",
    "confidence_score": 0.9,
    "priority": 1,
    "code_location": {"absolute_file_path": "calc.py", "line_range": {"start": 2, "end": 2}},
}
REVIEW = {
    "findings": [BUG],
    "overall_correctness": "patch is incorrect",
    "overall_explanation": "The subtraction breaks add().",
    "overall_confidence_score": 0.8,
}
SCENARIOS: list[dict[str, Any]] = [
    scenario("reviewer", {"tool_calls": [shell_call("git", "diff", "HEAD")]}, {"json": REVIEW}),
    {
        "name": "asker",
        "match": "(?i)where is add",
        "turns": [
            {"text": "add() is defined in `calc.py:1-2` and tested in test_calc.py:7-8."},
            {"tool_calls": [patch_call(add_file_patch("NOTES.md", "asked then done"))]},
            {"text": "Done."},
        ],
    },
    {"name": "fixer", "match": "(?i)fix this code review finding", "turns": [{"text": "Fixed it."}]},
]


async def test_review_of_uncommitted_changes_shows_findings_and_jumps_to_the_diff(
    git_repo: Path, isolated_home: Path
) -> None:
    (git_repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    async with running_app(git_repo, isolated_home, SCENARIOS, review_model="scripted:reviewer") as h:
        task_id = await new_task(h, "/review uncommitted")
        await h.wait_status(task_id, "ready")
        assert h.app.state.tasks[task_id].kind == "review"
        await h.pilot.press("f8")
        pane = h.app.main_widget(ReviewPane)
        await h.wait(lambda: pane.review is not None and pane.review.findings, what="the findings")
        await h.wait(lambda: "✗ incorrect · 80% confident" in h.text(), what="the verdict")
        assert "P1  add() subtracts  calc.py:2" in h.text()
        pane.findings_list.focus()
        await h.pilot.press("enter")
        view = h.app.main_widget(DiffView)
        await h.wait(lambda: view.patch.index_of("calc.py") is not None, what="the reviewed diff")
        await h.wait(lambda: "2●+     return a - b" in h.text(), what="the marked line")
        h.app.main_widget(ReviewPane).findings_list.focus()
        await h.pilot.press("f8")
        await h.pilot.press("f")
        await h.wait(lambda: len(h.manager.tasks()) == 2, what="the fix task")
        fix = next(t for t in h.manager.tasks() if t["id"] != task_id)
        assert fix["kind"] == "code"
        await h.wait_status(fix["id"], "ready")


async def test_ask_answer_cites_a_file_that_opens_read_only_then_now_do_it(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.pilot.press("ctrl+o")
        task_id = await new_task(h, "Where is add() defined?")
        await h.wait_status(task_id, "ready")
        assert h.task(task_id)["kind"] == "ask"
        h.app.action_open_citation("cite:calc.py:1-2")
        await h.wait(lambda: isinstance(h.app.screen, FileViewerScreen), what="the file viewer")
        view = h.app.screen.query_one(FileView)
        await h.wait(lambda: view.lines == ["def add(a, b):", "    return a + b"], what="the file text")
        assert (view.start, view.end) == (1, 2)
        await h.pilot.press("escape")
        await h.pilot.press("f9")
        await h.wait(lambda: h.task(task_id)["kind"] == "code", what="the task to become a Code task")
        await h.wait(lambda: "Done." in h.text(), what="the change to be made")
        await h.wait_status(task_id, "ready")
        diff = await h.manager.submit(p.Op(p.OP_GET_DIFF, task_id))
        assert "NOTES.md" in diff.data["patch"]
