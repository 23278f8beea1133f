"""What `codex-tui exec` prints: Codex-shaped JSON lines on stdout, human progress lines on stderr.

Task text is untrusted: human lines pass through `strip_controls`, and JSON lines escape every
control character, so a task cannot drive the terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from codex_tui import protocol as p
from codex_tui.agent.review import format_review
from codex_tui.boundary.terminal import strip_controls
from codex_tui.pricing import Price, TokenCounts, estimate, format_usd

JSON_TYPES = frozenset(
    {
        p.THREAD_STARTED,
        p.TURN_STARTED,
        p.ITEM_STARTED,
        p.ITEM_UPDATED,
        p.ITEM_COMPLETED,
        p.TURN_COMPLETED,
        p.TURN_FAILED,
        p.ERROR,
    }
)
PLAN_MARKS = {"pending": "☐", "in_progress": "◐", "completed": "☑"}
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f]")
"""DEL and C1: `json.dumps(ensure_ascii=False)` leaves them raw, and a terminal may act on them."""


def codex_json(event: p.Event, *, with_thread: bool) -> dict[str, Any] | None:
    """The Codex `exec --json` object for one of our events, or None when it has no counterpart."""
    data = event.data
    out: dict[str, Any]
    if event.type == p.THREAD_STARTED:
        out = {"type": "thread.started", "thread_id": data.get("thread_id", event.task_id)}
    elif event.type == p.TURN_STARTED:
        out = {"type": "turn.started"}
    elif event.type in (p.ITEM_STARTED, p.ITEM_UPDATED, p.ITEM_COMPLETED):
        out = {"type": event.type, "item": data.get("item", {})}
    elif event.type == p.TURN_COMPLETED:
        out = {"type": "turn.completed", "usage": data.get("usage") or p.usage_dict()}
    elif event.type == p.TURN_FAILED:
        error = data.get("error") or {}
        out = {"type": "turn.failed", "error": {"message": str(error.get("message", ""))}}
    elif event.type == p.ERROR:
        out = {"type": "error", "message": str(data.get("message", ""))}
    else:
        return None
    if with_thread and event.type != p.THREAD_STARTED:
        out["thread_id"] = event.task_id
    return out


class JsonPrinter:
    """Writes Codex-shaped JSON lines to stdout."""

    def __init__(self, out: TextIO, attempts: int) -> None:
        self.out = out
        self.with_thread = attempts > 1

    def __call__(self, event: p.Event) -> None:
        """Print the event if it has a Codex counterpart."""
        obj = codex_json(event, with_thread=self.with_thread)
        if obj is not None:
            self.out.write(json_line(obj) + "\n")
            self.out.flush()


def json_line(obj: dict[str, Any]) -> str:
    """One JSON line with no raw control character in it (C0 as JSON escapes, DEL and C1 too)."""
    text = json.dumps(obj, ensure_ascii=False)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class HumanPrinter:
    """Human progress lines on stderr: commands, edits, plan, notes, approvals, errors."""

    def __init__(
        self, err: TextIO, attempts: int, prices: Mapping[str, Price] | None = None, default_model: str = ""
    ) -> None:
        self.err = err
        self.attempts = attempts
        self.prices = prices
        """Price overrides from the config (pricing.py has the defaults)."""
        self.default_model = default_model
        self.attempt_of: dict[str, int] = {}
        self.model_of: dict[str, str] = {}
        self.held_message: dict[str, str] = {}
        self.last_plan: dict[str, list[tuple[str, str]]] = {}
        self.last_error: dict[str, str] = {}

    def __call__(self, event: p.Event) -> None:
        """Print what the event means for a person watching."""
        if event.type in (p.ITEM_STARTED, p.TURN_STARTED, p.TURN_FAILED):
            self._release_message(event.task_id)
        elif event.type == p.TURN_COMPLETED:
            self.held_message.pop(event.task_id, None)
        handler = _HUMAN.get(event.type)
        if handler is not None:
            handler(self, event)

    def line(self, task_id: str, text: str) -> None:
        """One progress line, prefixed with the attempt when there are several."""
        prefix = f"[{self.attempt_of.get(task_id, 1)}/{self.attempts}] " if self.attempts > 1 else ""
        self.err.write(f"{prefix}{strip_controls(text)}\n")
        self.err.flush()

    def _release_message(self, task_id: str) -> None:
        text = self.held_message.pop(task_id, "")
        if text:
            self.line(task_id, f"codex: {text}")

    def created(self, event: p.Event) -> None:
        """Remember the attempt number; announce attempts when there are several."""
        self.attempt_of[event.task_id] = int(event.data.get("attempt", 1))
        self.model_of[event.task_id] = str(event.data.get("model") or "")
        if self.attempts > 1:
            self.line(event.task_id, f"● attempt {event.data.get('attempt')} · {event.task_id}")

    def item(self, event: p.Event) -> None:
        """Commands, edits, reasoning and agent messages (printed when completed)."""
        item = event.data.get("item") or {}
        kind = item.get("type")
        if kind == p.ITEM_TODO_LIST:
            self.plan(event.task_id, item)
        elif event.type != p.ITEM_COMPLETED:
            return
        elif kind == p.ITEM_COMMAND:
            self.command(event.task_id, item)
        elif kind == p.ITEM_FILE_CHANGE:
            self.file_change(event.task_id, item)
        elif kind == p.ITEM_REASONING and item.get("text") and not item.get("discarded"):
            self.line(event.task_id, f"· thinking: {_one_line(str(item['text']), 160)}")
        elif kind == p.ITEM_AGENT_MESSAGE and item.get("text") and not item.get("discarded"):
            self.held_message[event.task_id] = str(item["text"]).strip()
        elif kind == p.ITEM_ERROR:
            self.line(event.task_id, f"✗ {item.get('message', '')}")
        elif kind in (p.ITEM_MCP_TOOL_CALL, p.ITEM_WEB_SEARCH):
            self.line(event.task_id, tool_item_line(item))
        elif kind == p.ITEM_ARTIFACT:
            self.line(event.task_id, artifact_line(item))

    def command(self, task_id: str, item: dict[str, Any]) -> None:
        """`▶ Ran pytest -q · exit 1 · 2.3 s`, plus the output's tail when it failed."""
        command = _one_line(str(item.get("command", "")), 120)
        if item.get("status") == "declined":
            self.line(task_id, f"▶ Declined {command}")
            return
        seconds = float(item.get("duration_ms") or 0) / 1000
        code = item.get("exit_code")
        timed_out = " (timed out)" if item.get("timed_out") else ""
        self.line(
            task_id,
            f"▶ Ran {command} · exit {code if code is not None else '?'}{timed_out} · {seconds:.1f} s",
        )
        if code not in (0, None):
            tail = [ln for ln in str(item.get("aggregated_output") or "").splitlines() if ln.strip()][-4:]
            for text in tail:
                self.line(task_id, f"    {_one_line(text, 160)}")

    def file_change(self, task_id: str, item: dict[str, Any]) -> None:
        """`✎ Edited a.py +3 −1` (several files on one line, with the patch's totals)."""
        verbs = {"add": "Added", "delete": "Deleted", "update": "Edited"}
        parts = []
        for change in item.get("changes") or []:
            path = str(change.get("path", ""))
            if change.get("move_path"):
                path = f"{path} → {change['move_path']}"
            parts.append(f"{verbs.get(str(change.get('kind')), 'Changed')} {path}")
        if item.get("status") == "failed":
            error = _one_line(str(item.get("error") or "the patch did not apply"), 160)
            self.line(task_id, f"✎ Patch failed: {error}")
        if parts:
            counts = f" +{item.get('added', 0)} −{item.get('removed', 0)}"
            self.line(task_id, f"✎ {', '.join(parts)}{counts}")

    def plan(self, task_id: str, item: dict[str, Any]) -> None:
        """The to-do list, printed again only when it changed."""
        steps = [(str(i.get("text", "")), str(i.get("status", "pending"))) for i in item.get("items") or []]
        if not steps or steps == self.last_plan.get(task_id):
            return
        self.last_plan[task_id] = steps
        done = sum(1 for _, status in steps if status == "completed")
        self.line(task_id, f"☰ Plan {done}/{len(steps)}")
        for text, status in steps:
            self.line(task_id, f"  {PLAN_MARKS.get(status, '☐')} {text}")

    def note(self, event: p.Event) -> None:
        """Notes for the user."""
        mark = {"warning": "⚠", "error": "✗"}.get(str(event.data.get("level")), "ℹ")
        self.line(event.task_id, f"{mark} {event.data.get('message', '')}")

    def sandbox(self, event: p.Event) -> None:
        """What the sandbox isolates."""
        self.line(event.task_id, f"⚙ sandbox: {event.data.get('message', event.data.get('backend', ''))}")

    def network(self, event: p.Event) -> None:
        """A request the egress proxy judged (network limited)."""
        data = event.data
        where = f"{data.get('method', '')} {data.get('host', '')}:{data.get('port', '')}"
        if data.get("suppressed"):
            self.line(event.task_id, f"⇄ network: {data.get('reason', '')}")
        elif data.get("allowed"):
            self.line(event.task_id, f"⇄ network: {where} allowed ({data.get('rule', '')})")
        else:
            self.line(event.task_id, f"⇄ network: {where} refused: {data.get('reason', '')}")

    def approval(self, event: p.Event) -> None:
        """Approval requests and decisions."""
        data = event.data
        if event.type == p.APPROVAL_REQUESTED:
            what = approval_subject(data)
            reason = f" — {data['reason']}" if data.get("reason") else ""
            self.line(event.task_id, f"? approval requested: {_one_line(str(what), 120)}{reason}")
        else:
            reason = f" ({data['reason']})" if data.get("reason") else ""
            self.line(event.task_id, f"  → {data.get('decision')}{reason}")

    def error(self, event: p.Event) -> None:
        """A failure the task could not recover from."""
        message = str(event.data.get("message", ""))
        self.last_error[event.task_id] = message
        self.line(event.task_id, f"✗ {message}")

    def status(self, event: p.Event) -> None:
        """Terminal statuses."""
        status = event.data.get("status")
        message = str(event.data.get("message") or "")
        if status == "failed" and message and message != self.last_error.get(event.task_id):
            self.line(event.task_id, f"✗ failed: {message}")
        elif status == "cancelled":
            self.line(event.task_id, "✗ cancelled")

    def usage(self, event: p.Event) -> None:
        """Tokens of the turn, and their estimated cost when the model has a price."""
        usage = event.data.get("usage") or {}
        model = self.model_of.get(event.task_id) or self.default_model
        cost = estimate(model, TokenCounts.from_dict(usage), self.prices)
        self.line(
            event.task_id,
            f"  tokens: {usage.get('input_tokens', 0)} in ({usage.get('cached_input_tokens', 0)} cached)"
            f" · {usage.get('output_tokens', 0)} out" + (f" · ~{format_usd(cost)}" if cost else ""),
        )


_HUMAN: dict[str, Callable[[HumanPrinter, p.Event], None]] = {
    p.TASK_CREATED: HumanPrinter.created,
    p.ITEM_STARTED: HumanPrinter.item,
    p.ITEM_UPDATED: HumanPrinter.item,
    p.ITEM_COMPLETED: HumanPrinter.item,
    p.NOTE: HumanPrinter.note,
    p.SANDBOX_INFO: HumanPrinter.sandbox,
    p.NETWORK_REQUEST: HumanPrinter.network,
    p.APPROVAL_REQUESTED: HumanPrinter.approval,
    p.APPROVAL_RESOLVED: HumanPrinter.approval,
    p.ERROR: HumanPrinter.error,
    p.TASK_STATUS: HumanPrinter.status,
    p.TURN_COMPLETED: HumanPrinter.usage,
}


def approval_subject(request: dict[str, Any]) -> str:
    """What an approval is about: the command, the patch, or the MCP tool call."""
    if request.get("kind") == "mcp":
        arguments = json.dumps(request.get("arguments") or {}, ensure_ascii=False)
        return f"MCP {request.get('server')}.{request.get('tool')} {arguments}"
    return str(request.get("command") or request.get("patch") or request.get("kind", ""))


def tool_item_line(item: dict[str, Any]) -> str:
    """`⚒ MCP demo.echo {…} · completed` or `⌕ searched "query" · 3 sources`."""
    if item.get("type") == p.ITEM_WEB_SEARCH:
        sources = item.get("sources") or []
        where = f" · {len(sources)} source{'s' if len(sources) != 1 else ''}" if sources else ""
        failed = " · failed" if item.get("status") == "failed" else ""
        return f"⌕ searched {_one_line(json.dumps(str(item.get('query', ''))), 120)}{where}{failed}"
    arguments = _one_line(json.dumps(item.get("arguments") or {}, ensure_ascii=False), 100)
    head = f"⚒ MCP {item.get('server')}.{item.get('tool')} {arguments}"
    if item.get("status") == "failed":
        return f"{head} · failed: {_one_line(str(item.get('error') or ''), 160)}"
    return f"{head} · {item.get('status')}"


def artifact_line(item: dict[str, Any]) -> str:
    """`📎 shot.png — the login page at 1280×800` (the caption only when there is one)."""
    caption = _one_line(strip_controls(str(item.get("caption") or "")), 160)
    name = _one_line(strip_controls(str(item.get("name") or "")), 100)
    return f"📎 {name} — {caption}" if caption else f"📎 {name}"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class FinalMessages:
    """The last agent message of each task's last turn, and each review task's review item."""

    def __init__(self) -> None:
        self.by_task: dict[str, str] = {}
        self.reviews: dict[str, dict[str, Any]] = {}

    def __call__(self, event: p.Event) -> None:
        """Track agent messages; a new turn starts a new final message."""
        if event.type == p.TURN_STARTED:
            self.by_task[event.task_id] = ""
        elif event.type == p.ITEM_COMPLETED:
            item = event.data.get("item") or {}
            if item.get("type") == p.ITEM_AGENT_MESSAGE and item.get("text") and not item.get("discarded"):
                self.by_task[event.task_id] = str(item["text"]).strip()
            elif item.get("type") == p.ITEM_REVIEW:
                self.reviews[event.task_id] = item

    def shown(self, task_id: str) -> str:
        """What a person reads as the task's result: the review as text, else the final message."""
        review = self.reviews.get(task_id)
        return format_review(review) if review is not None else self.by_task.get(task_id, "")
