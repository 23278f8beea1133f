"""What a task gets from its manager, and how its failures read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from codex_tui.config import Config
from codex_tui.models.base import ModelClient
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tasks.store import RolloutStore
from codex_tui.workspace.git import Workspace

EmitFn = Callable[[str, str, dict[str, Any]], None]
"""emit(task_id, event type, data): the manager stamps seq and time, fans out and persists."""


@dataclass(slots=True)
class TaskContext:
    """What a task gets from its manager: config, store, emitter, backend and model client."""

    config: Config
    store: RolloutStore
    emit: EmitFn
    backend: str
    """"docker" or "local" (already resolved from "auto")."""
    approval_policy: str
    make_client: Callable[[str], ModelClient]
    """make_client(provider name) -> the shared client for that provider."""
    allow_non_git: bool = False
    on_status: Callable[[str, str], None] = field(default=lambda _tid, _status: None)
    models_ready: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())
    """Awaited before the first model client is made (the openai package loads in the background)."""
    task_workspace: Callable[[str], Awaitable[Workspace]] | None = None
    """task_workspace(task id) -> that task's opened checkout (the change a review task reviews)."""
    mcp: McpServerPool | None = None
    """The app's MCP servers (shared by every task; started when a task first needs them)."""


async def _nothing() -> None:
    """An awaitable that is ready at once."""


class TaskFailure(Exception):
    """A failure with a message meant for the user (no traceback)."""


def describe_error(exc: BaseException) -> str:
    """A one-line message for an unexpected exception (type name when it has no text)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
