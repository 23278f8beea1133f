"""What differs between Code, Ask and Review tasks: sandbox mode, tools, answer format, and the
review's last step (its final answer validated as review JSON, repaired once, emitted as an item).

A review or a question is still a task (sandboxed, parallel, persisted, resumable); only these
few decisions depend on its kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from codex_tui.agent.loop import TurnResult
from codex_tui.agent.review import (
    REVIEW_SCHEMA,
    REVIEW_SCHEMA_NAME,
    ReviewFormatError,
    ReviewOutput,
    parse_review,
    repair_request,
    review_item,
)
from codex_tui.models.base import OutputSchema
from codex_tui.tools.base import Tool
from codex_tui.tools.registry import default_tools

READ_ONLY_KINDS: Final = frozenset({"ask", "review"})
"""Kinds whose sandbox is read-only whatever the configured mode, and that never escalate."""
_WRITING_TOOLS: Final = frozenset({"apply_patch"})


def sandbox_mode_for(kind: str, mode: str) -> str:
    """The sandbox mode a task of `kind` runs in: read-only for ask and review."""
    return "read-only" if kind in READ_ONLY_KINDS else mode


def tools_for(kind: str, mode: str, default_timeout_ms: int) -> list[Tool]:
    """The tools offered to the model: no file-editing tool for ask and review tasks."""
    tools = default_tools(mode, default_timeout_ms)  # type: ignore[arg-type]
    if kind in READ_ONLY_KINDS:
        tools = [tool for tool in tools if tool.spec.name not in _WRITING_TOOLS]
    return tools


def output_schema_for(kind: str) -> OutputSchema | None:
    """The structured output a task's final answer must follow (the review JSON for reviews)."""
    if kind == "review":
        return OutputSchema(name=REVIEW_SCHEMA_NAME, schema=REVIEW_SCHEMA, strict=True)
    return None


def kind_name(kind: str) -> str:
    """ "a Code task", "an Ask task" or "a review", for messages."""
    return {"ask": "an Ask task", "review": "a review"}.get(kind, "a Code task")


def escalation_refusal(kind: str) -> str:
    """Why an ask or review task may not leave its read-only sandbox ("" for code tasks)."""
    if kind not in READ_ONLY_KINDS:
        return ""
    return f"{kind_name(kind)} runs in a read-only sandbox and cannot escalate"


RunTurn = Callable[[str], Awaitable[TurnResult]]


class ReviewSettler:
    """Turns a reviewer's final answer into a review item: parse, one repair request, then emit."""

    def __init__(
        self,
        *,
        target: dict[str, Any],
        workdir: str,
        checkout: Path,
        run_turn: RunTurn,
        note: Callable[[str, str], None],
    ) -> None:
        self.target = target
        self.workdir = workdir
        self.checkout = checkout
        self.run_turn = run_turn
        self.note = note

    async def settle(self, result: TurnResult, item_id: str) -> tuple[TurnResult, dict[str, Any]]:
        """The turn's final result (a repair turn's when one ran) and the ITEM_REVIEW item."""
        try:
            return result, review_item(item_id, self.target, self._parse(result.final_message))
        except ReviewFormatError as exc:
            first_error = str(exc)
        self.note(
            f"the review is not valid review JSON ({first_error}); asking the reviewer to fix it", "warning"
        )
        repaired = await self.run_turn(repair_request(first_error))
        repaired.usage = result.usage + repaired.usage
        if repaired.status != "completed":
            item = review_item(item_id, self.target, None, error=first_error, raw_text=result.final_message)
            return repaired, item
        try:
            return repaired, review_item(item_id, self.target, self._parse(repaired.final_message))
        except ReviewFormatError as exc:
            error = f"the reviewer's answer is not valid review JSON after one repair request: {exc}"
            self.note(error + " (its text is kept above)", "error")
            return repaired, review_item(
                item_id, self.target, None, error=error, raw_text=repaired.final_message
            )

    def _parse(self, text: str) -> ReviewOutput:
        return parse_review(text, workdir=self.workdir, checkout=self.checkout)
