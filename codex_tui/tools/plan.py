"""The `update_plan` tool: the agent's to-do list, shown in the plan pane as one `todo_list` item."""

from __future__ import annotations

from typing import Any, Final

from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_COMPLETED, ITEM_STARTED, ITEM_TODO_LIST, ITEM_UPDATED
from codex_tui.tools.arguments import ArgumentsError, optional_str, parse_json_object
from codex_tui.tools.base import ToolContext, ToolResult

STEP_STATUSES: Final = ("pending", "in_progress", "completed")
MAX_STEPS: Final = 100
MAX_STEP_CHARS: Final = 1000
MAX_EXPLANATION_CHARS: Final = 4000
"""Bounds on what the model may put in the plan pane (its text is untrusted like the rest)."""
STATE_KEY: Final = "update_plan.item"
"""Where the current todo_list item lives in ToolContext.tool_state."""

UPDATE_PLAN_DESCRIPTION: Final = """Update the task plan shown to the user.
Give the whole plan each time: a short list of steps, each pending, in_progress or completed.
At most one step may be in_progress. Mark steps completed as you finish them; an optional
explanation says why the plan changed."""


def update_plan_spec() -> ToolSpec:
    """The spec offered to the model."""
    return ToolSpec(
        name="update_plan",
        description=UPDATE_PLAN_DESCRIPTION,
        parameters={
            "type": "object",
            "properties": {
                "explanation": {"type": "string"},
                "plan": {
                    "type": "array",
                    "description": "The list of steps",
                    "items": {
                        "type": "object",
                        "properties": {
                            "step": {"type": "string"},
                            "status": {"type": "string", "enum": list(STEP_STATUSES)},
                        },
                        "required": ["step", "status"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["plan"],
            "additionalProperties": False,
        },
    )


def parse_plan(arguments: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(explanation, todo items) from the model's arguments; raises ArgumentsError on bad input."""
    args = parse_json_object(arguments)
    explanation = optional_str(args, "explanation")
    plan = args.get("plan")
    if not isinstance(plan, list):
        raise ArgumentsError("missing or invalid field `plan`: expected an array of {step, status}")
    if len(plan) > MAX_STEPS:
        raise ArgumentsError(f"a plan holds at most {MAX_STEPS} steps; got {len(plan)}: merge steps")
    if explanation is not None and len(explanation) > MAX_EXPLANATION_CHARS:
        raise ArgumentsError(f"`explanation` is limited to {MAX_EXPLANATION_CHARS} characters")
    items = [_todo_item(index, entry) for index, entry in enumerate(plan)]
    running = [item["text"] for item in items if item["status"] == "in_progress"]
    if len(running) > 1:
        raise ArgumentsError(
            f"at most one step can be in_progress at a time; got {len(running)}: "
            + ", ".join(repr(text) for text in running)
        )
    return explanation, items


def _todo_item(index: int, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ArgumentsError(f"plan[{index}]: expected an object with step and status")
    step = entry.get("step")
    status = entry.get("status")
    if not isinstance(step, str) or not step.strip():
        raise ArgumentsError(f"plan[{index}]: `step` must be a non-empty string")
    if len(step) > MAX_STEP_CHARS:
        raise ArgumentsError(f"plan[{index}]: a step is limited to {MAX_STEP_CHARS} characters")
    if status not in STEP_STATUSES:
        raise ArgumentsError(f"plan[{index}]: `status` must be one of pending, in_progress, completed")
    return {"text": step, "status": status, "completed": status == "completed"}


class UpdatePlanTool:
    """The `update_plan` tool."""

    def __init__(self) -> None:
        self.spec = update_plan_spec()

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Replace the plan; the first call of a turn starts the todo_list item, later ones update it."""
        try:
            explanation, items = parse_plan(arguments)
        except ArgumentsError as error:
            return ToolResult(str(error), success=False)
        current = ctx.tool_state.get(STATE_KEY)
        event = ITEM_UPDATED if current else ITEM_STARTED
        item: dict[str, Any] = {
            "id": current["id"] if current else ctx.new_item_id(),
            "type": ITEM_TODO_LIST,
            "items": items,
        }
        if explanation:
            item["explanation"] = explanation
        ctx.tool_state[STATE_KEY] = item
        ctx.emit(event, {"item": item})
        return ToolResult("Plan updated")


def finish_plan(ctx: ToolContext) -> None:
    """End the turn's plan: emits item.completed for it (if any); the next update_plan starts anew."""
    item = ctx.tool_state.pop(STATE_KEY, None)
    if item:
        ctx.emit(ITEM_COMPLETED, {"item": item})
