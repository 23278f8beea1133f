"""Events and operations: the contract between the core and every front end.

The core (models, tools, sandboxes, workspaces, agent, tasks) emits :class:`Event` values and
accepts :class:`Op` values. Both are plain JSON data so the task manager can later move behind a
socket without changing the TUI, `exec` or the rollout store. This module imports nothing of ours.

Event types mirror Codex's ``exec --json`` stream (``thread.started``, ``turn.started``,
``item.started|updated|completed``, ``turn.completed``, ``turn.failed``, ``error``) plus what a live
UI needs (output deltas, approvals, diffs, task status).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

# --- event types -------------------------------------------------------------------------------

TASK_CREATED: Final = "task.created"
"""data: title, prompt, images[], attempt (1-based), attempts, group_id, mode, model, repo, effort,
kind (code|ask|review), review_target? ({type, label, task_id?} for a review task)"""
TASK_STATUS: Final = "task.status"
"""data: status (one of TaskStatus), message? (why it failed / was cancelled)"""
THREAD_STARTED: Final = "thread.started"
"""data: thread_id"""
TURN_STARTED: Final = "turn.started"
"""data: turn (1-based index)"""
TURN_COMPLETED: Final = "turn.completed"
"""data: turn, usage {input_tokens, cached_input_tokens, output_tokens}"""
TURN_FAILED: Final = "turn.failed"
"""data: turn, error {message}"""
TURN_UNDONE: Final = "turn.undone"
"""data: turn (the turn.started number undone), conversation: bool (False when only the files went
back because the history was compacted since) — that turn and any later one are gone; a note follows"""
USER_MESSAGE: Final = "user.message"
"""data: text, images[] (file names), kind: prompt|steer|follow_up"""
ITEM_STARTED: Final = "item.started"
ITEM_UPDATED: Final = "item.updated"
ITEM_COMPLETED: Final = "item.completed"
"""data: item (see the ITEM_* kinds below)"""
MESSAGE_DELTA: Final = "message.delta"
"""data: item_id, kind: agent_message|reasoning, delta (batched text)"""
OUTPUT_DELTA: Final = "command.output_delta"
"""data: item_id, stream: stdout|stderr, text (batched, decoded with replacement)"""
APPROVAL_REQUESTED: Final = "approval.requested"
"""data: request_id, kind: command|patch|network|mcp, command?, patch?, server?, tool?, arguments?
(kind mcp: a call to an MCP server's tool, which runs on the host), reason"""
APPROVAL_RESOLVED: Final = "approval.resolved"
"""data: request_id, decision (one of ApprovalDecision)"""
DIFF_UPDATED: Final = "diff.updated"
"""data: files [{path, status: added|modified|deleted|renamed, added, removed}], added, removed"""
CONTEXT_UPDATED: Final = "context.updated"
"""data: used_tokens, window_tokens, total {input_tokens, cached_input_tokens, output_tokens}"""
COMPACTED: Final = "context.compacted"
"""data: before_tokens, after_tokens, summary"""
SANDBOX_INFO: Final = "sandbox.info"
"""data: backend, image?, container_id?, message (what is and is not isolated)"""
NETWORK_REQUEST: Final = "network.request"
"""data: host, port, method, allowed, rule, reason — one request the egress proxy judged (network
limited); `rule` is the allowlist entry that admitted it, or for a refused one the entry that would"""
SANDBOX_USAGE: Final = "sandbox.usage"
"""data: cpu_percent, memory_bytes, memory_limit_bytes, disk_bytes (each a number or null when
unknown; see ResourceUsage) — TRANSIENT: published to subscribers about every 2 s while a task runs,
seq -1, never written to the rollout"""
NOTE: Final = "note"
"""data: level: info|warning|error, message — something the user should see, not the model"""
ERROR: Final = "error"
"""data: message — a failure the task could not recover from"""

# --- item kinds (data.item.type of item.* events) ----------------------------------------------

ITEM_AGENT_MESSAGE: Final = "agent_message"
"""{id, type, text}"""
ITEM_REASONING: Final = "reasoning"
"""{id, type, text}"""
ITEM_COMMAND: Final = "command_execution"
"""{id, type, command, aggregated_output, exit_code|None, status: in_progress|completed|failed|
declined, duration_ms?, timed_out?}  — aggregated_output is head+tail truncated in events"""
ITEM_FILE_CHANGE: Final = "file_change"
"""{id, type, changes [{path, kind: add|delete|update, move_path?}], status: completed|failed,
added?, removed?, error?}"""
ITEM_TODO_LIST: Final = "todo_list"
"""{id, type, explanation?, items [{text, status: pending|in_progress|completed, completed: bool}]}"""
ITEM_ERROR: Final = "error"
"""{id, type, message}"""
ITEM_IMAGE: Final = "image_view"
"""{id, type, path} — view_image attached an image from the workspace"""
ITEM_ARTIFACT: Final = "artifact"
"""{id, type, name (sanitised file name), caption, mime_type (sniffed from the bytes; image/svg+xml is
untrusted XML, never drawn as an image), size, sha256, source (the workspace-relative path it was
copied from), path (host path of the COPY in `<data>/artifacts/<task id>/`, trusted; it outlives the
checkout)} — `attach_artifact` kept a file the agent produced (a screenshot, a plot, a report)"""
ITEM_MCP_TOOL_CALL: Final = "mcp_tool_call"
"""{id, type, server, tool, arguments (the model's JSON object, or its raw text when not an object),
status: in_progress|completed|failed, result? {content: [MCP content blocks: {type: text, text} |
{type: image, data (base64), mime_type} (data over 512 KiB replaced by omitted_bytes) | …],
structured_content}, error?} — a call to a tool of an MCP server (config [mcp_servers.NAME])"""
ITEM_WEB_SEARCH: Final = "web_search"
"""{id, type, query, status: in_progress|completed|failed, sources? [url]} — the hosted web search of
the Responses API (`--search` / tools.web_search), from its `web_search_call` output items"""
ITEM_REVIEW: Final = "review"
"""{id, type, status: completed|failed, target {type, label, task_id?}, findings [{title, body,
confidence_score (0-1), priority (0-3 = P0-P3), code_location {absolute_file_path, path (repository-
relative, "" when outside the checkout), line_range {start, end}}}] (sorted by priority),
overall_correctness: "patch is correct"|"patch is incorrect", overall_explanation,
overall_confidence_score, error? and raw_text? (status failed: the answer was not valid review JSON
after one repair request)} — follows the reviewer's final agent_message"""

TaskStatus = Literal[
    "queued",
    "starting",
    "running",
    "waiting_approval",
    "ready",
    "applied",
    "failed",
    "cancelled",
]
TERMINAL_STATUSES: Final = frozenset({"ready", "applied", "failed", "cancelled"})

SandboxMode = Literal["read-only", "auto", "full-access"]
SANDBOX_MODES: Final = ("read-only", "auto", "full-access")

TaskKind = Literal["code", "ask", "review"]
TASK_KINDS: Final = ("code", "ask", "review")
"""code: may change files; ask: answers questions (read-only sandbox); review: reviews a change
(read-only sandbox on a checkout of the target, final answer is review JSON)"""
REVIEW_TARGETS: Final = ("uncommitted", "base", "commit", "task")

ApprovalDecision = Literal["approve", "approve_task", "deny"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


@dataclass(slots=True)
class Event:
    """One fact about one task; `seq` increases by one per task so a pane can resume anywhere."""

    type: str
    task_id: str
    seq: int
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """Serialise to one JSON line (no newline)."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Event:
        """Parse a line written by :meth:`to_json`."""
        raw = json.loads(line)
        return cls(
            type=raw["type"],
            task_id=raw["task_id"],
            seq=int(raw["seq"]),
            data=raw.get("data") or {},
            ts=float(raw.get("ts", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What a task's sandbox uses right now; None where the backend cannot tell."""

    cpu_percent: float | None = None
    """Percent of one CPU over the last sampling interval (200 = two CPUs busy)."""
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    disk_bytes: int | None = None
    """Bytes the task's checkout takes on the host disk."""

    def to_data(self) -> dict[str, Any]:
        """The SANDBOX_USAGE event's data."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ResourceUsage:
        """Read an event's data; a missing or malformed field is None."""

        def number(key: str) -> float | None:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                return None
            return float(value)

        def whole(key: str) -> int | None:
            value = number(key)
            return int(value) if value is not None else None

        return cls(
            number("cpu_percent"), whole("memory_bytes"), whole("memory_limit_bytes"), whole("disk_bytes")
        )


# --- operations --------------------------------------------------------------------------------

OP_SUBMIT: Final = "task.submit"
"""data: prompt, images[] (host paths), attempts (1-4), mode?, model?, effort?, repo?, title?,
models? (one model per attempt, e.g. the demo's scripted attempts; cycled when shorter),
kind? (code|ask|review; default code), review? {target: uncommitted|base|commit|task, base? (branch),
commit? (sha or ref), task_id?} (kind review; the prompt holds optional custom instructions).
A review of several tasks at once: review.task_ids [..] makes one review task per reviewed task.
network? (off|limited|on: the agent phase's internet for these tasks), allowed_domains? [..] (added
to the configured allowlist)."""
OP_USER_MESSAGE: Final = "task.user_message"
"""data: text, images[] — steers a running task, or starts a follow-up turn on a finished one"""
OP_INTERRUPT: Final = "task.interrupt"
"""data: {} — stops the current turn (model stream and running command); the task stays open"""
OP_CANCEL: Final = "task.cancel"
OP_RETRY: Final = "task.retry"
OP_ARCHIVE: Final = "task.archive"
OP_APPROVE: Final = "task.approve"
"""data: request_id, decision (ApprovalDecision)"""
OP_APPLY: Final = "task.apply"
"""data: branch: bool, dry_run: bool"""
OP_UNDO: Final = "task.undo"
OP_COMPACT: Final = "task.compact"
OP_SET_MODE: Final = "task.set_mode"
"""data: mode"""
OP_GET_DIFF: Final = "task.get_diff"
"""data: {} — OpResult.data = {patch: unified diff text against the task's start, files: [...]}"""
OP_SET_KIND: Final = "task.set_kind"
"""data: kind (code|ask) — e.g. Ask → Code ("now do it"): the conversation is kept, the sandbox and
system prompt follow the new kind from the next turn"""
OP_READ_FILE: Final = "task.read_file"
"""data: path (repository-relative) — OpResult.data = {path, text, truncated: bool, binary: bool}:
a file of the task's checkout, read safely (no link followed, bounded size)"""
OP_GET_PR: Final = "task.get_pr"
"""data: {} — OpResult.data = {title, body}: the pull-request text for the task's change (built and
saved with the task when missing)"""
OP_MCP_STATUS: Final = "mcp.status"
"""data: start? (bool: start the enabled servers first) — OpResult.data = {servers: [{name, transport,
target, enabled, state: stopped|starting|ready|failed|disabled, error, tools [names]}]}; no task_id"""


@dataclass(slots=True)
class Op:
    """A request from a front end to the task manager; `task_id` is empty for task.submit."""

    type: str
    task_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to one JSON line (no newline)."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Op:
        """Parse a line written by :meth:`to_json`."""
        raw = json.loads(line)
        return cls(type=raw["type"], task_id=raw.get("task_id", ""), data=raw.get("data") or {})


@dataclass(slots=True)
class OpResult:
    """The task manager's answer to an :class:`Op`: ok, a message, and e.g. new task ids."""

    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def usage_dict(input_tokens: int = 0, cached_input_tokens: int = 0, output_tokens: int = 0) -> dict[str, int]:
    """The usage shape shared by turn.completed and context.updated."""
    return {
        "input_tokens": input_tokens,
        "cached_input_tokens": cached_input_tokens,
        "output_tokens": output_tokens,
    }
