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
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from codex_tui import protocol as p
from codex_tui.agent.review import highest_priority
from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import Config
from codex_tui.exec_printers import FinalMessages, HumanPrinter, JsonPrinter, approval_subject, json_line
from codex_tui.tasks.manager import TaskManager
from codex_tui.tasks.store import RolloutStore

ANSWERS = {"y": "approve", "yes": "approve", "a": "approve_task", "n": "deny", "no": "deny"}
"""Answers to an approval question; anything else (or no answer at all) denies."""
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
    human = HumanPrinter(err, options.attempts, config.pricing, config.model)
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
