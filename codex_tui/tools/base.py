"""The tool contract: a spec the model sees and an async handler that runs it in a task's context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ApprovalDecision, SandboxMode
from codex_tui.sandbox.base import Sandbox

EmitFn = Callable[[str, dict[str, Any]], None]
"""Emit an event of the given type with data; the agent stamps task id, seq and time."""
ApprovalFn = Callable[[dict[str, Any]], Awaitable[ApprovalDecision]]
"""Ask the user: data is the approval.requested payload minus request_id; returns the decision."""


@dataclass(slots=True)
class ToolContext:
    """What a tool handler may touch: the task's sandbox, its host checkout, and event emitters."""

    sandbox: Sandbox
    workspace: Path
    """Host path of the task's checkout; apply_patch edits files here directly."""
    mode: SandboxMode
    emit: EmitFn
    new_item_id: Callable[[], str]
    request_approval: ApprovalFn
    default_timeout_ms: int = 10_000
    max_output_bytes_to_model: int = 10_000
    tool_state: dict[str, Any] = field(default_factory=dict)
    """Per-task scratch space for tools (e.g. update_plan's item id); keep one context per task."""


@dataclass(slots=True)
class ToolResult:
    """What goes back to the model, and what the agent should do next."""

    output: str
    success: bool = True
    images: list[dict[str, Any]] = field(default_factory=list)
    """Content parts ({"type": "image", "image_url": data-url, "name": …}) to add as a user message."""
    may_change_files: bool = False
    """True when the diff should be recomputed after this call."""


class Tool(Protocol):
    """One tool: its spec and its handler. Handlers never raise for bad model input."""

    spec: ToolSpec

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Run with the model's raw argument string; errors come back as ToolResult(success=False)."""
        ...
