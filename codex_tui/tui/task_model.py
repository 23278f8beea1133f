"""The event-derived model of one task: chat blocks, to-do items, approvals, log, counts.

Plain dataclasses, no Textual; `state_events` folds events into them and `state.AppState` holds them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from codex_tui import protocol as p
from codex_tui.tui.artifacts import ArtifactInfo
from codex_tui.tui.chat_lines import CommandInfo
from codex_tui.tui.review import ReviewResult

BlockKind = Literal["user", "agent", "reasoning", "tool", "note", "error"]
LogOp = tuple[Any, ...]
"""("begin", item_id, command) | ("out", item_id, stream, text) | ("end", item_id, exit, ms, note)
| ("net", id, text, allowed)"""

MAX_BLOCKS = 400
"""Chat blocks kept per task; older ones are dropped from the model (and the screen)."""
MAX_MESSAGE_CHARS = 100_000
"""A model message or reasoning summary is shown up to this length (a flood of model text would
otherwise make every redraw of the chat slower); the rollout keeps all of it."""
MAX_LOG_CHARS = 1_000_000
"""Sandbox output kept per task for re-rendering the log pane when a task is selected again."""

STATUS_ICONS: dict[str, str] = {
    "queued": "◌",
    "starting": "◔",
    "running": "●",
    "waiting_approval": "?",
    "ready": "✔",
    "applied": "⇪",
    "failed": "✘",
    "cancelled": "⊘",
}
ACTIVE_STATUSES = frozenset({"starting", "running", "waiting_approval"})


@dataclass(slots=True)
class ChatBlock:
    """One entry of the chat pane: a message, a reasoning summary, a tool line, a note."""

    id: str
    kind: BlockKind
    text: str = ""
    images: list[str] = field(default_factory=list)
    level: str = ""
    rev: int = 0
    """Bumped when the text changes other than by appending (the widget is re-rendered)."""
    done: bool = False
    turn: int = 0
    """Serial of the turn the block belongs to (`TaskModel.turn_serial`; 0 = before any turn)."""
    icon: str = ""
    detail: str = ""
    """Lines under a tool line (an MCP result, search sources): folded until the user expands them."""
    preview: str = ""
    """Host path of a file a click previews (an artifact's copy, an attached image)."""


@dataclass(slots=True)
class TodoItem:
    """One step of the agent's plan."""

    text: str
    status: str = "pending"


@dataclass(slots=True)
class Approval:
    """A pending request for the user's decision."""

    task_id: str
    request_id: str
    kind: str
    command: str
    patch: str
    reason: str
    server: str = ""
    tool: str = ""
    arguments: Any = None
    """Kind mcp: the MCP server, its tool and the call's arguments."""


@dataclass(slots=True)
class TurnMark:
    """A turn the chat shows: its turn.started number, its serial, and the plan from before it."""

    number: int
    serial: int
    todos: list[TodoItem]
    todo_explanation: str


@dataclass(slots=True)
class TaskModel:
    """Everything the panes show about one task, derived from its events."""

    id: str
    title: str = ""
    prompt: str = ""
    status: str = "queued"
    message: str = ""
    attempt: int = 1
    attempts: int = 1
    group_id: str = ""
    mode: str = ""
    model: str = ""
    repo: str = ""
    kind: str = "code"
    """code | ask | review (p.TASK_KINDS)."""
    review_target: dict[str, Any] = field(default_factory=dict)
    """For a review task: {type, label, task_id?}."""
    review: ReviewResult | None = None
    """The newest review result of a review task."""
    review_rev: int = 0
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    last_seq: int = -1
    added: int = 0
    removed: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    diff_rev: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    used_tokens: int = 0
    window_tokens: int = 0
    turn: int = 0
    turn_serial: int = 0
    """How many turns this model has seen start (undone ones included): tags every chat block."""
    turn_marks: list[TurnMark] = field(default_factory=list)
    """Turns started and not undone, oldest first."""
    blocks: list[ChatBlock] = field(default_factory=list)
    blocks_dropped: int = 0
    todos: list[TodoItem] = field(default_factory=list)
    todo_explanation: str = ""
    commands: dict[str, CommandInfo] = field(default_factory=dict)
    log: deque[LogOp] = field(default_factory=deque)
    log_base: int = 0
    """Absolute index of log[0]: ops before it were dropped to bound memory."""
    log_chars: int = 0
    approvals: dict[str, Approval] = field(default_factory=dict)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    usage: p.ResourceUsage | None = None
    """The sandbox's latest meters (transient sandbox.usage events); None when unknown or finished."""
    rev: int = 0
    """Bumped on every change: the task list and status bar re-render a row when it moves."""

    @property
    def tokens(self) -> int:
        """Input plus output tokens used so far."""
        return self.input_tokens + self.output_tokens

    @property
    def context_left_pct(self) -> int | None:
        """Percentage of the context window still free, when known."""
        if self.window_tokens <= 0:
            return None
        return max(0, min(100, round(100 * (1 - self.used_tokens / self.window_tokens))))

    @property
    def active(self) -> bool:
        """The task is running (a message now steers it)."""
        return self.status in ACTIVE_STATUSES

    @property
    def log_end(self) -> int:
        """Absolute index one past the last log op."""
        return self.log_base + len(self.log)

    def elapsed(self, now: float) -> float:
        """Seconds between start and finish (or now while it runs)."""
        start = self.started or self.created
        if not start:
            return 0.0
        end = self.finished if self.finished is not None else now
        return max(0.0, end - start)

    def progress(self) -> tuple[int, int]:
        """Completed and total steps of the plan."""
        return sum(1 for t in self.todos if t.status == "completed"), len(self.todos)

    def log_ops_since(self, index: int) -> list[LogOp]:
        """Log ops from absolute `index` on, with a synthetic `begin` for sections cut by pruning."""
        start = max(index, self.log_base)
        ops = [self.log[i - self.log_base] for i in range(start, self.log_end)]
        if start > index or index == 0:
            begun = {op[1] for op in ops if op[0] == "begin"}
            heads: list[LogOp] = []
            for op in ops:
                item_id = op[1]
                if op[0] != "begin" and item_id not in begun and item_id in self.commands:
                    heads.append(("begin", item_id, self.commands[item_id].command))
                    begun.add(item_id)
            ops = heads + ops
        return ops
