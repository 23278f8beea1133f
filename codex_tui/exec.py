"""`codex-tui exec`: run tasks without the TUI; progress on stderr, the final message on stdout.

With `--json`, stdout carries one JSON object per line in the shape of Codex's `exec --json`
(`thread.started`, `turn.started`, `item.*`, `turn.completed`, `turn.failed`, `error`); streamed
deltas are dropped. The exit code is 1 when any task did not finish ready.

Task text (command output, model text, file names) is untrusted: human output passes through
`strip_controls`, and JSON lines escape every control character, so a task cannot drive the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from codex_tui import protocol as p
from codex_tui.agent.review import format_review, highest_priority
from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import Config
from codex_tui.tasks.manager import TaskManager
from codex_tui.tasks.store import RolloutStore

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
ANSWERS = {"y": "approve", "yes": "approve", "a": "approve_task", "n": "deny", "no": "deny"}
"""Answers to an approval question; anything else (or no answer at all) denies."""
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f]")
"""DEL and C1: `json.dumps(ensure_ascii=False)` leaves them raw, and a terminal may act on them."""
NO_TTY_DENIAL = (
    "denied: there is no terminal to ask (approve it in the TUI, or allow such commands up front "
    "with --sandbox full-access)"
)


@dataclass(slots=True)
class ExecOptions:
    """What `codex-tui exec` was asked to do."""

    prompt: str
    images: list[str] = field(default_factory=list)
    attempts: int = 1
    json: bool = False
    model: str | None = None
    models: list[str] | None = None
    """One model per attempt (the demo scripts each attempt differently)."""
    mode: str | None = None
    title: str | None = None
    approval: str | None = None
    backend: str | None = None
    last_message_file: Path | None = None
    interactive: bool = False
    """True when approvals may be asked on this terminal (stdin is a TTY and not the prompt)."""
    kind: str = "code"
    """code, ask or review (`exec --ask`, `exec review`)."""
    review: dict[str, Any] | None = None
    """The review target: {target: uncommitted|base|commit|task, base?, commit?, task_ids?}."""
    fail_on: int | None = None
    """Exit 1 when a finding of this priority or a more urgent one exists (`--fail-on P1` = 1)."""
    network: str | None = None
    """off|limited|on: the agent's internet for this run (`--network`); None = the environment's."""
    allowed_domains: list[str] = field(default_factory=list)
    """`--allow-domain`: added to the configured allowlist."""


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

    def __init__(self, err: TextIO, attempts: int) -> None:
        self.err = err
        self.attempts = attempts
        self.attempt_of: dict[str, int] = {}
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
        if data.get("allowed"):
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
        """Tokens of the turn."""
        usage = event.data.get("usage") or {}
        self.line(
            event.task_id,
            f"  tokens: {usage.get('input_tokens', 0)} in ({usage.get('cached_input_tokens', 0)} cached)"
            f" · {usage.get('output_tokens', 0)} out",
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


def exit_code(
    summaries: list[dict[str, Any]], reviews: list[dict[str, Any] | None], fail_on: int | None
) -> int:
    """0 when every task finished ready (and every review was read), whatever a review's verdict;
    with `fail_on`, 1 when a finding at that priority or a more urgent one exists."""
    if not all(summary.get("status") == "ready" for summary in summaries):
        return 1
    if any(review is not None and review.get("status") != "completed" for review in reviews):
        return 1
    if fail_on is not None:
        worst = [highest_priority(review) for review in reviews if review is not None]
        if any(priority is not None and priority <= fail_on for priority in worst):
            return 1
    return 0


class Approver:
    """Answers approval requests headlessly: ask on the terminal when possible, else deny."""

    def __init__(self, manager: TaskManager, printer: Callable[[str, str], None], interactive: bool) -> None:
        self.manager = manager
        self.printer = printer
        self.interactive = interactive
        self.pending: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.ask_lock = asyncio.Lock()

    def __call__(self, event: p.Event) -> None:
        """Track requests; answer those a task waits on."""
        if event.type == p.APPROVAL_REQUESTED:
            self.pending[str(event.data.get("request_id"))] = {"task_id": event.task_id, **event.data}
        elif event.type == p.APPROVAL_RESOLVED:
            self.pending.pop(str(event.data.get("request_id")), None)
        elif event.type == p.TASK_STATUS and event.data.get("status") == "waiting_approval":
            for request_id, request in list(self.pending.items()):
                if request["task_id"] == event.task_id and not request.get("asked"):
                    request["asked"] = True
                    job = asyncio.get_running_loop().create_task(self.answer(request_id, request))
                    self.tasks.add(job)
                    job.add_done_callback(self.tasks.discard)

    async def answer(self, request_id: str, request: dict[str, Any]) -> None:
        """Decide one request and send the decision."""
        task_id = str(request["task_id"])
        if self.interactive:
            async with self.ask_lock:
                decision = await ask_on_terminal(request)
        else:
            self.printer(task_id, f"⚠ {NO_TTY_DENIAL}")
            decision = "deny"
        data = {"request_id": request_id, "decision": decision}
        await self.manager.submit(p.Op(p.OP_APPROVE, task_id, data))


async def ask_on_terminal(request: dict[str, Any]) -> str:
    """Ask y / a / n on stderr and read the answer from stdin: approve, approve_task or deny."""
    what = strip_controls(approval_subject(request))
    reason = strip_controls(str(request.get("reason", "")))
    sys.stderr.write(f"\nApprove {what}?\n  reason: {reason}\n")
    sys.stderr.write("  [y] yes  [a] yes for this task  [n] no: ")
    sys.stderr.flush()
    answer = await read_line(sys.stdin)
    return ANSWERS.get(answer.strip().lower(), "deny")


async def read_line(stream: TextIO) -> str:
    """One line of `stream` ("" at its end or on an error), read by a daemon thread: an unanswered
    question never keeps the process from exiting, as a worker of the default executor would."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def deliver(line: str) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            line = stream.readline()
        except (OSError, ValueError):
            line = ""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for the answer
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="approval-answer", daemon=True).start()
    return await answer


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop codex-tui as Ctrl+C does: turns stop, sandboxes go, tasks stay resumable."""
T = TypeVar("T")


class Terminated(Exception):
    """SIGTERM or SIGHUP stopped the work (after its cleanup); exit with `exit_code`."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__(f"stopped by {sig.name}")
        self.signal = sig

    @property
    def exit_code(self) -> int:
        """Shell convention: 128 + the signal number (143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + int(self.signal)


def on_stop_signals(callback: Callable[[signal.Signals], None]) -> Callable[[], None]:
    """Call `callback(signal)` on the running loop at SIGTERM or SIGHUP; returns what undoes it.

    Outside the main thread signals cannot be caught: nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, callback, sig)

    def restore() -> None:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)

    return restore


class StopSignals:
    """While entered (in a task), SIGTERM or SIGHUP cancels that task once, as Ctrl+C does.

    The cancel runs the task's cleanup; on leaving, it becomes `Terminated`.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._restore: Callable[[], None] = lambda: None

    def why(self) -> str:
        """What stopped the work, for a message: " by SIGTERM" after a stop signal, else ""."""
        return f" by {self.received.name}" if self.received is not None else ""

    def __enter__(self) -> StopSignals:
        task = asyncio.current_task()

        def stop(sig: signal.Signals) -> None:
            if self.received is None and task is not None:
                self.received = sig
                task.cancel()

        self._restore = on_stop_signals(stop)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._restore()
        received, task = self.received, asyncio.current_task()
        if kind is not asyncio.CancelledError or received is None or task is None:
            return
        if task.uncancel() == 0:  # no other cancel is pending: this one was ours
            raise Terminated(received) from None


async def run_stoppable(work: Coroutine[Any, Any, T], stop: StopSignals | None = None) -> T:
    """Await `work`; SIGTERM or SIGHUP cancel it and, after its cleanup, raise Terminated."""
    with stop or StopSignals():
        return await work


async def run_exec(
    config: Config,
    repo: Path,
    options: ExecOptions,
    *,
    store: RolloutStore | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the task (one per attempt) to the end; returns the process exit code.

    SIGTERM or SIGHUP stop it as Ctrl+C does (sandboxes removed, tasks left resumable, the
    rollout flushed), then raise Terminated.
    """
    stop = StopSignals()
    return await run_stoppable(_run_exec(config, repo, options, stop, store, out, err), stop)


async def _run_exec(
    config: Config,
    repo: Path,
    options: ExecOptions,
    stop: StopSignals,
    store: RolloutStore | None,
    out: TextIO | None,
    err: TextIO | None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    manager = TaskManager(
        config,
        repo=repo,
        store=store,
        sandbox_backend=options.backend,
        approval_policy=options.approval,
    )
    human = HumanPrinter(err, options.attempts)
    finals = FinalMessages()
    await manager.start()
    try:
        manager.subscribe(finals, replay=False)
        manager.subscribe(JsonPrinter(out, options.attempts) if options.json else human, replay=False)
        manager.subscribe(Approver(manager, human.line, options.interactive), replay=False)
        result = await manager.submit(p.Op(p.OP_SUBMIT, data=_submission(options)))
        if not result.ok:
            _fail(out, err, options.json, result.message)
            return 1
        task_ids = list(result.data["task_ids"])
        try:
            for tid in task_ids:
                await manager.wait_for(tid)
        except asyncio.CancelledError:  # Ctrl+C, SIGTERM: the tasks stay stored and can be resumed
            for tid in task_ids:
                resume = f"continue with `codex-tui tasks resume {tid}`"
                err.write(f"codex-tui exec: stopped{stop.why()}; {resume}\n")
            raise
    finally:
        await manager.close()
    summaries = {s["id"]: s for s in manager.tasks()}  # after close: a task that could not be saved failed
    if not options.json:
        _print_finals(out, [(summaries.get(tid, {}), finals.shown(tid)) for tid in task_ids])
    if options.last_message_file is not None:
        messages = [(summaries.get(tid, {}), finals.by_task.get(tid, "")) for tid in task_ids]
        _write_last_message(options.last_message_file, messages, err)
    reviews = [finals.reviews.get(tid) for tid in task_ids] if options.kind == "review" else []
    return exit_code([summaries.get(tid, {}) for tid in task_ids], reviews, options.fail_on)


def _submission(options: ExecOptions) -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": options.prompt, "images": options.images, "attempts": options.attempts}
    for key in ("model", "models", "mode", "title", "review", "network", "allowed_domains"):
        value = getattr(options, key)
        if value:
            data[key] = value
    data["kind"] = options.kind
    return data


def _fail(out: TextIO, err: TextIO, as_json: bool, message: str) -> None:
    if as_json:
        out.write(json_line({"type": "error", "message": message}) + "\n")
    err.write(f"codex-tui exec: {strip_controls(message)}\n")


def _print_finals(out: TextIO, messages: list[tuple[dict[str, Any], str]]) -> None:
    several = len(messages) > 1
    for summary, text in messages:
        if several:
            out.write(
                f"── attempt {summary.get('attempt')}/{summary.get('attempts')} · {summary.get('id')} · "
                f"{summary.get('status')} · +{summary.get('added', 0)} −{summary.get('removed', 0)} ──\n"
            )
        if text:
            out.write(strip_controls(text) + "\n")
    out.flush()


def _write_last_message(path: Path, messages: list[tuple[dict[str, Any], str]], err: TextIO) -> None:
    text = "\n\n".join(m for _, m in messages if m)
    try:
        path.write_text(text + "\n" if text else "", encoding="utf-8")
    except OSError as exc:
        err.write(f"codex-tui exec: cannot write {path}: {exc.strerror}\n")
