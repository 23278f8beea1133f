"""update_plan: validation and one todo_list item per turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_tui.protocol import ITEM_COMPLETED, ITEM_STARTED, ITEM_TODO_LIST, ITEM_UPDATED
from codex_tui.tools.base import ToolContext
from codex_tui.tools.plan import UpdatePlanTool, finish_plan
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context


def setup(tmp_path: Path) -> tuple[Recorder, ToolContext]:
    recorder = Recorder()
    return recorder, make_context(tmp_path, RecordingSandbox(tmp_path), recorder)


def plan_args(*steps: tuple[str, str], explanation: str | None = None) -> str:
    args: dict[str, Any] = {"plan": [{"step": s, "status": st} for s, st in steps]}
    if explanation is not None:
        args["explanation"] = explanation
    return json.dumps(args)


async def test_first_plan_starts_a_todo_list_and_later_ones_update_it(tmp_path: Path) -> None:
    recorder, ctx = setup(tmp_path)
    tool = UpdatePlanTool()
    first = await tool.run(plan_args(("Read code", "in_progress"), ("Fix bug", "pending")), ctx)
    second = await tool.run(
        plan_args(("Read code", "completed"), ("Fix bug", "in_progress"), explanation="found it"), ctx
    )
    assert (first.output, second.output) == ("Plan updated", "Plan updated")
    started = recorder.items(ITEM_STARTED)
    updated = recorder.items(ITEM_UPDATED)
    assert len(started) == len(updated) == 1
    assert started[0]["type"] == ITEM_TODO_LIST
    assert updated[0]["id"] == started[0]["id"]
    assert updated[0]["explanation"] == "found it"
    assert updated[0]["items"] == [
        {"text": "Read code", "status": "completed", "completed": True},
        {"text": "Fix bug", "status": "in_progress", "completed": False},
    ]


async def test_finishing_the_plan_completes_the_item_and_the_next_plan_is_new(tmp_path: Path) -> None:
    recorder, ctx = setup(tmp_path)
    tool = UpdatePlanTool()
    await tool.run(plan_args(("Only step", "completed")), ctx)
    finish_plan(ctx)
    finish_plan(ctx)
    await tool.run(plan_args(("Next turn", "pending")), ctx)
    completed = recorder.items(ITEM_COMPLETED)
    started = recorder.items(ITEM_STARTED)
    assert len(completed) == 1
    assert completed[0]["items"][0]["text"] == "Only step"
    assert len(started) == 2
    assert started[0]["id"] != started[1]["id"]


async def test_two_steps_in_progress_are_refused(tmp_path: Path) -> None:
    recorder, ctx = setup(tmp_path)
    result = await UpdatePlanTool().run(plan_args(("A", "in_progress"), ("B", "in_progress")), ctx)
    assert not result.success
    assert result.output == "at most one step can be in_progress at a time; got 2: 'A', 'B'"
    assert recorder.events == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("nope", "failed to parse function arguments: "),
        ("{}", "missing or invalid field `plan`"),
        ('{"plan": [{"step": "x", "status": "done"}]}', "plan[0]: `status` must be one of"),
        ('{"plan": [{"step": "", "status": "pending"}]}', "plan[0]: `step` must be a non-empty string"),
        ('{"plan": ["x"]}', "plan[0]: expected an object"),
        ('{"plan": [], "explanation": 5}', "invalid field `explanation`"),
        (json.dumps({"plan": [{"step": "s", "status": "pending"}] * 101}), "a plan holds at most 100 steps"),
        (json.dumps({"plan": [{"step": "s" * 1001, "status": "pending"}]}), "plan[0]: a step is limited to"),
        (json.dumps({"plan": [], "explanation": "e" * 4001}), "`explanation` is limited to 4000"),
    ],
)
async def test_bad_plans_get_a_clear_error(tmp_path: Path, arguments: str, message: str) -> None:
    _, ctx = setup(tmp_path)
    result = await UpdatePlanTool().run(arguments, ctx)
    assert not result.success
    assert result.output.startswith(message)
