"""The task manager: runs tasks concurrently up to a limit, queues the rest, persists everything.

Front ends (the TUI, `exec`, tests) use only this class's public methods: operations go in through
:meth:`TaskManager.submit`, events come out through :meth:`TaskManager.subscribe` /
:meth:`TaskManager.events`, and :meth:`TaskManager.tasks` lists plain summaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tui.config import APPROVAL_POLICIES, BACKENDS, Config, ConfigError
from codex_tui.models.base import ModelClient
from codex_tui.process import process_alive
from codex_tui.protocol import (
    APPROVAL_REQUESTED,
    ERROR,
    OP_APPLY,
    OP_APPROVE,
    OP_ARCHIVE,
    OP_CANCEL,
    OP_COMPACT,
    OP_GET_DIFF,
    OP_GET_PR,
    OP_INTERRUPT,
    OP_MCP_STATUS,
    OP_READ_FILE,
    OP_RETRY,
    OP_SET_KIND,
    OP_SET_MODE,
    OP_SUBMIT,
    OP_UNDO,
    OP_USER_MESSAGE,
    SANDBOX_MODES,
    TASK_CREATED,
    TASK_STATUS,
    TERMINAL_STATUSES,
    THREAD_STARTED,
    Event,
    Op,
    OpResult,
)
from codex_tui.sandbox import disk
from codex_tui.sandbox.factory import choose_backend, startup_sweep
from codex_tui.sandbox.image import image_status
from codex_tui.tasks import handover
from codex_tui.tasks.kinds import escalation_refusal, sandbox_mode_for
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tasks.store import RolloutStore, TaskRecord
from codex_tui.tasks.submission import (
    ReviewJob,
    Submission,
    check_submission,
    resolve_reviews,
)
from codex_tui.tasks.task import APP_STOPPED, Task, TaskContext, describe_error
from codex_tui.workspace.git import Workspace, WorkspaceError

log = logging.getLogger(__name__)

ACTIVE_STATUSES = frozenset({"queued", "starting", "running", "waiting_approval"})
URGENT_EVENTS = frozenset({TASK_STATUS, APPROVAL_REQUESTED, ERROR})
"""Written to the rollout at once rather than with the next batch."""
CONTINUE_TEXT = "Continue where you left off."
CLOSE_GRACE_S = 5.0
STOP_RETRY_S = 0.05
"""How often a turn stopped for a failed write is cancelled again until it has stopped."""
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"

Callback = Callable[[Event], None]


def base36(number: int) -> str:
    """`number` in base 36 (lower case)."""
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _B36[rest] + digits
        if number == 0:
            return digits


def new_id(prefix: str) -> str:
    """`<prefix>-<base36 ms time><4 random chars>`: sortable by creation, unique in practice."""
    rand = "".join(secrets.choice(_B36) for _ in range(4))
    return f"{prefix}-{base36(time.time_ns() // 1_000_000)}{rand}"


@dataclass(slots=True)
class _Job:
    """One turn waiting for (or holding) a slot."""

    task: Task
    text: str
    images: list[str]


@dataclass(slots=True)
class _Subscriber:
    """A callback plus the events held back while its replay is read from disk."""

    callback: Callback
    replaying: bool = False
    held: list[Event] = field(default_factory=list)


class TaskManager:
    """Runs tasks (workspace + sandbox + agent) concurrently and turns them into one event stream."""

    def __init__(
        self,
        config: Config,
        *,
        repo: Path,
        store: RolloutStore | None = None,
        sandbox_backend: str | None = None,
        approval_policy: str | None = None,
        allow_non_git: bool = False,
    ) -> None:
        self.config = config
        self.repo = Path(repo).expanduser().resolve()
        self.store = store or RolloutStore(config.data_dir)
        self.store.on_error = self.store.on_error or self._store_failed
        self.requested_backend = sandbox_backend or config.sandbox_backend
        self.approval_policy = approval_policy or config.approval_policy
        if self.requested_backend not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise ConfigError(f"sandbox backend '{self.requested_backend}' is not one of {known}")
        if self.approval_policy not in APPROVAL_POLICIES:
            raise ConfigError(f"approval policy '{self.approval_policy}' is not one of on-request, never")
        self.allow_non_git = allow_non_git or config.allow_non_git
        self.backend = "local" if self.requested_backend == "auto" else self.requested_backend
        self.backend_note = ""
        self._tasks: dict[str, Task] = {}
        self._seqs: dict[str, int] = {}
        self._queue: deque[_Job] = deque()
        self._running: set[str] = set()
        self._subscribers: list[_Subscriber] = []
        self._clients: dict[str, ModelClient] = {}
        self._started = False
        self._closing = False
        self._models_loading: asyncio.Task[Any] | None = None
        self.mcp = McpServerPool(config.mcp_servers)
        """The MCP servers tasks share (started on first need, stopped by `close`)."""
        self._storage_failures: dict[str, str] = {}
        """Tasks whose rollout, history or the index could not be written: why they must stop."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, pick the sandbox backend, and mark tasks cut off by a crash resumable."""
        if self._started:
            return
        await self.store.open()
        # The openai package takes ~0.5 s to import: off the loop, while the first task's checkout and
        # container are made (`models_ready` is awaited just before a model client is needed).
        self._models_loading = asyncio.create_task(
            asyncio.to_thread(importlib.import_module, "codex_tui.models.factory")
        )
        self.backend, self.backend_note = await self._resolve_backend()
        records = list(self.store.records.values())
        self._seqs.update(await self.store.last_seqs(r.id for r in records))
        for record in sorted(records, key=lambda r: r.created):
            if record.status in ACTIVE_STATUSES and owned_by_other_process(record):
                del self.store.records[record.id]
                continue
            task = Task(record, self._context())
            self._tasks[record.id] = task
            if record.status in ACTIVE_STATUSES:
                task.set_status("failed", APP_STOPPED)
        if self.backend == "docker":
            await self._sweep_containers()
        await self._sweep_disks([Path(r.workspace) for r in records if r.workspace])
        self._started = True
        await self.store.flush()

    async def close(self) -> None:
        """Interrupt running turns, stop sandboxes, flush the store; every task stays resumable."""
        if self._closing:
            return
        self._closing = True
        while self._queue:
            job = self._queue.popleft()
            job.task.set_status("failed", APP_STOPPED)
        runners = [t.runner for t in self._tasks.values() if t.busy and t.runner is not None]
        for task in self._tasks.values():
            if task.busy:
                task.interrupt()
        if runners:
            _done, pending = await asyncio.wait(runners, timeout=CLOSE_GRACE_S)
            for runner in pending:
                runner.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_GRACE_S)
        for task in self._tasks.values():
            if task.record.status in ACTIVE_STATUSES:
                task.set_status("failed", APP_STOPPED)
        await asyncio.gather(*(t.stop() for t in self._tasks.values()), return_exceptions=True)
        await self.mcp.close()
        await self.store.flush()  # a turn that ended just now and cannot be saved fails before we go
        await self.store.close()
        if self._models_loading is not None:
            await asyncio.gather(self._models_loading, return_exceptions=True)

    async def _resolve_backend(self) -> tuple[str, str]:
        """'auto' becomes docker when the engine answers and the image exists, else local (with a note)."""
        choice = await choose_backend(self.requested_backend)
        if self.requested_backend != "auto" or choice.backend != "docker":
            return choice.backend, choice.note
        status = await image_status(self.config.sandbox_image)
        if status.present:
            return "docker", ""
        return "local", (
            f"The sandbox image {status.tag} is missing (build it with `codex-tui sandbox build`); "
            "commands run on this machine with the local backend instead."
        )

    async def _sweep_disks(self, checkouts: list[Path]) -> None:
        """Release disk images of checkouts no task has any more (a crash between prune steps)."""
        try:
            await disk.sweep(self.store.data_dir / "disks", keep=checkouts)
        except Exception as exc:  # a failed sweep must not stop the app
            log.warning("releasing stale checkout disks failed: %s", exc)

    async def _sweep_containers(self) -> int:
        try:
            return len(await startup_sweep())
        except Exception as exc:  # a failed sweep must not stop the app
            log.warning("sweeping stale containers failed: %s", exc)
            return 0

    def _context(self) -> TaskContext:
        return TaskContext(
            config=self.config,
            store=self.store,
            emit=self._emit,
            backend=self.backend,
            approval_policy=self.approval_policy,
            make_client=self._model_client,
            allow_non_git=self.allow_non_git,
            on_status=self._on_status,
            task_workspace=self._task_workspace,
            models_ready=self._models_ready,
            mcp=self.mcp,
        )

    async def _models_ready(self) -> None:
        """Wait until the model clients' package is loaded (started by `start`)."""
        if self._models_loading is not None:
            await asyncio.shield(self._models_loading)

    async def _task_workspace(self, task_id: str) -> Workspace:
        """Another task's checkout (opened when needed): what a review of that task reads."""
        task = self._tasks.get(task_id)
        if task is None:
            raise WorkspaceError(f"unknown task '{task_id}'")
        return await task.ensure_workspace()

    def _model_client(self, provider: str) -> ModelClient:
        """One client per provider, shared by the tasks using it (ConfigError when it cannot be made)."""
        provider = provider or self.config.model_provider
        if provider not in self._clients:
            from codex_tui.models.factory import make_model_client

            config = dataclasses.replace(self.config, model_provider=provider)
            self._clients[provider] = make_model_client(config)
        return self._clients[provider]

    # --- events ------------------------------------------------------------------------------

    def _emit(self, task_id: str, type_: str, data: dict[str, Any]) -> None:
        seq = self._seqs.get(task_id, 0) + 1
        self._seqs[task_id] = seq
        event = Event(type_, task_id, seq, data)
        self.store.append(event, urgent=type_ in URGENT_EVENTS)
        task = self._tasks.get(task_id)
        if task is not None:
            task.record.updated = event.ts  # reaches the index with the next status or diff change
        for sub in list(self._subscribers):
            self._deliver(sub, event)

    def _deliver(self, sub: _Subscriber, event: Event) -> None:
        if sub.replaying:
            sub.held.append(event)
            return
        try:
            sub.callback(event)
        except Exception:
            log.exception("an event subscriber failed; it is unsubscribed")
            with contextlib.suppress(ValueError):
                self._subscribers.remove(sub)

    def _store_failed(self, task_id: str, message: str) -> None:
        """A rollout, history or index write failed (disk full, read-only): the running tasks it
        concerns (all of them for the index) stop and fail, so none is left "running"; a task
        whose turn just ended here fails too, as its last events are not saved."""
        log.warning("%s", message)
        task = self._tasks.get(task_id)
        tasks = [task] if task is not None else [t for t in self._tasks.values() if t.busy]
        for each in tasks:
            if each.busy:
                if not self._closing and each.id not in self._storage_failures:
                    self._storage_failures[each.id] = message
                    self._stop_for_storage(each)
            elif each.record.status == "ready" and each.record.owner_pid == os.getpid():
                each.fail(unsaved_message(message))
            else:
                each.note(f"{message} — events are kept in memory and retried", "error")

    def _stop_for_storage(self, task: Task) -> None:
        """Cancel the task's turn, again until it ends (a cancel can be swallowed by a finishing wait)."""
        runner = task.runner
        if runner is None or runner.done() or not self._storage_failures.get(task.id):
            return
        runner.cancel()
        asyncio.get_running_loop().call_later(STOP_RETRY_S, self._stop_for_storage, task)

    def _on_status(self, task_id: str, status: str) -> None:
        task = self._tasks.get(task_id)
        if task is not None:
            self.store.put(task.record, urgent=True)

    def subscribe(self, callback: Callback, *, replay: bool = True) -> Callable[[], None]:
        """Receive every event; with `replay`, first the stored events of all listed tasks.

        Replayed events are read from disk in a thread and delivered soon after this returns, each
        task in seq order and before any live event of that task. Returns the unsubscribe function.
        """
        sub = _Subscriber(callback, replaying=replay)
        self._subscribers.append(sub)
        if replay:
            asyncio.get_running_loop().create_task(self._replay(sub), name="event-replay")

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(sub)

        return unsubscribe

    async def _replay(self, sub: _Subscriber) -> None:
        delivered: dict[str, int] = {}
        for record in sorted(self._visible_records(), key=lambda r: r.created):
            for event in await self.store.read_events(record.id):
                if sub not in self._subscribers:
                    return
                if event.seq > delivered.get(event.task_id, 0):
                    delivered[event.task_id] = event.seq
                    self._call(sub, event)
        held, sub.held = sub.held, []
        sub.replaying = False
        for event in held:
            if event.seq > delivered.get(event.task_id, 0):
                self._call(sub, event)

    def _call(self, sub: _Subscriber, event: Event) -> None:
        try:
            sub.callback(event)
        except Exception:
            log.exception("an event subscriber failed during replay")

    async def events(self, *, replay: bool = True) -> AsyncIterator[Event]:
        """Every event as an async iterator (same order and replay as :meth:`subscribe`)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait, replay=replay)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    async def task_events(self, task_id: str) -> list[Event]:
        """All stored events of one task (rollout plus what is not yet written), in seq order."""
        return await self.store.read_events(task_id)

    async def wait_for(
        self, task_id: str, statuses: Collection[str] = TERMINAL_STATUSES, timeout: float | None = None
    ) -> str:
        """Wait until the task's status is one of `statuses`; returns it (TimeoutError on timeout)."""
        task = self._tasks.get(task_id)
        if task is None:
            raise KeyError(f"unknown task '{task_id}'")
        if task.record.status in statuses:
            return task.record.status
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def watch(event: Event) -> None:
            status = event.data.get("status")
            if (
                event.task_id == task_id
                and event.type == TASK_STATUS
                and status in statuses
                and not future.done()
            ):
                future.set_result(str(status))

        unsubscribe = self.subscribe(watch, replay=False)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            unsubscribe()

    def tasks(self) -> list[dict[str, Any]]:
        """Plain summaries of every task not archived, oldest first."""
        return [r.summary() for r in sorted(self._visible_records(), key=lambda r: r.created)]

    def _visible_records(self) -> list[TaskRecord]:
        return [t.record for t in self._tasks.values() if not t.record.archived]

    # --- scheduling --------------------------------------------------------------------------

    def _enqueue(self, task: Task, text: str, images: list[str]) -> None:
        self._queue.append(_Job(task, text, images))
        task.set_status("queued")
        self._pump()

    def _pump(self) -> None:
        while self._queue and len(self._running) < self.config.max_parallel_tasks and not self._closing:
            job = self._queue.popleft()
            self._running.add(job.task.id)
            job.task.runner = asyncio.create_task(self._run_job(job), name=f"task-{job.task.id}")

    async def _run_job(self, job: _Job) -> None:
        try:
            await self._run_turn(job.task, job.text, job.images)
        finally:
            self._running.discard(job.task.id)
            self.store.put(job.task.record, urgent=True)
            self._pump()

    async def _run_turn(self, task: Task, text: str, images: list[str]) -> None:
        """One turn; when the store cannot write (disk full, read-only folder) the turn is stopped
        and the task fails saying so."""
        try:
            await task.run_turn(text, images)
        except asyncio.CancelledError:
            if not self._storage_failures.get(task.id) or self._closing:
                raise
            current = asyncio.current_task()
            while current is not None and current.uncancel() > 0:
                pass  # every repeated cancel was ours
        unsaved = self._storage_failures.get(task.id) or self.store.write_error(task.id)
        if not unsaved:
            return
        self._storage_failures[task.id] = ""  # ends the repeated cancel
        try:
            with contextlib.suppress(Exception):
                await task.stop()
        finally:
            del self._storage_failures[task.id]  # a later turn may try again
        if task.record.status != "failed":
            task.fail(unsaved_message(unsaved))

    def _queued_job(self, task: Task) -> _Job | None:
        return next((j for j in self._queue if j.task is task), None)

    # --- operations --------------------------------------------------------------------------

    async def submit(self, op: Op) -> OpResult:
        """Carry out one operation; failures come back as OpResult(ok=False, message)."""
        if not self._started:
            return OpResult(False, "the task manager is not started")
        if self._closing:
            return OpResult(False, "the task manager is closing")
        if op.type == OP_SUBMIT:
            handler = self._op_submit
        elif op.type == OP_MCP_STATUS:
            handler = self._op_mcp_status
        else:
            handler = self._task_ops().get(op.type)  # type: ignore[assignment]
            if handler is None:
                return OpResult(False, f"unknown operation '{op.type}'")
        try:
            return await handler(op)
        except Exception as exc:  # an operation may fail; the manager never does
            log.debug("operation %s failed", op.type, exc_info=True)
            return OpResult(False, describe_error(exc))

    def _task_ops(self) -> dict[str, Callable[[Op], Any]]:
        return {
            OP_USER_MESSAGE: self._op_user_message,
            OP_INTERRUPT: self._op_interrupt,
            OP_CANCEL: self._op_cancel,
            OP_RETRY: self._op_retry,
            OP_ARCHIVE: self._op_archive,
            OP_APPROVE: self._op_approve,
            OP_APPLY: self._op_apply,
            OP_UNDO: self._op_undo,
            OP_COMPACT: self._op_compact,
            OP_GET_DIFF: self._op_get_diff,
            OP_SET_MODE: self._op_set_mode,
            OP_SET_KIND: self._op_set_kind,
            OP_READ_FILE: self._op_read_file,
            OP_GET_PR: self._op_get_pr,
        }

    def _task(self, op: Op) -> Task:
        task = self._tasks.get(op.task_id)
        if task is None:
            raise LookupError(f"unknown task '{op.task_id}'")
        return task

    async def _op_submit(self, op: Op) -> OpResult:
        spec = check_submission(op.data, self.config, self.repo)
        if isinstance(spec, str):
            return OpResult(False, spec)
        if spec.kind == "review":
            return await self._submit_reviews(spec, op.data.get("review"))
        group_id = new_id("g")
        ids: list[str] = []
        for attempt in range(1, spec.attempts + 1):
            model = spec.models[(attempt - 1) % len(spec.models)]
            task = self._create_task(spec, attempt, group_id, model)
            ids.append(task.id)
        for task_id in ids:
            task = self._tasks[task_id]
            self._enqueue(task, spec.prompt, spec.images)
        return OpResult(True, f"submitted {len(ids)} task(s)", {"task_ids": ids, "group_id": group_id})

    async def _submit_reviews(self, spec: Submission, review: Any) -> OpResult:
        """One review task per target (each its own group), resolved before any is created."""

        def find(task_id: str) -> TaskRecord | None:
            task = self._tasks.get(task_id)
            return task.record if task is not None else None

        resolved = await resolve_reviews(spec, review, find)
        if isinstance(resolved, str):
            return OpResult(False, resolved)
        tasks = [
            self._create_task(spec, 1, new_id("g"), spec.models[0], review=job) for job in resolved.reviews
        ]
        for task in tasks:
            self._enqueue(task, task.record.prompt, [])
        ids = [task.id for task in tasks]
        return OpResult(
            True, f"submitted {len(ids)} review(s)", {"task_ids": ids, "group_id": tasks[0].record.group_id}
        )

    def _create_task(
        self, spec: Submission, attempt: int, group_id: str, model: str, review: ReviewJob | None = None
    ) -> Task:
        now = time.time()
        target = review.target.to_dict() if review is not None else {}
        record = TaskRecord(
            id=new_id("t"),
            title=f"Review: {review.target.label}" if review is not None else spec.title,
            prompt=review.prompt if review is not None else spec.prompt,
            repo=str(review.repo if review is not None else spec.repo),
            created=now,
            updated=now,
            images=spec.images,
            attempt=attempt,
            attempts=spec.attempts,
            group_id=group_id,
            mode=spec.mode,
            model=model,
            effort=spec.effort,
            provider=self.config.model_provider,
            kind=spec.kind,
            review_target=target,
            network=spec.network,
            allowed_domains=list(spec.allowed_domains),
        )
        task = Task(record, self._context())
        self._tasks[record.id] = task
        self.store.put(record, urgent=True)
        self._emit(
            record.id,
            TASK_CREATED,
            {
                "title": record.title,
                "prompt": record.prompt,
                "images": [Path(p).name for p in record.images],
                "attempt": attempt,
                "attempts": spec.attempts,
                "group_id": group_id,
                "mode": record.mode,
                "model": model,
                "repo": record.repo,
                "effort": record.effort,
                "kind": record.kind,
                **({"review_target": _public_target(target)} if target else {}),
            },
        )
        self._emit(record.id, THREAD_STARTED, {"thread_id": record.id})
        if self.backend_note:
            task.note(self.backend_note, "warning")
        return task

    async def _op_mcp_status(self, op: Op) -> OpResult:
        """The configured MCP servers, their state and tools (started first when `start`)."""
        if op.data.get("start"):
            await self.mcp.start_all()
        return OpResult(True, "", {"servers": self.mcp.status()})

    async def _op_user_message(self, op: Op) -> OpResult:
        task = self._task(op)
        text = str(op.data.get("text") or "")
        images = [str(p) for p in op.data.get("images") or []]
        missing = [p for p in images if not Path(p).expanduser().is_file()]
        if missing:
            return OpResult(False, f"image not found: {missing[0]}")
        record = task.record
        closed = "archived" if record.archived else "pruned" if record.pruned else "cancelled"
        if record.archived or record.pruned or record.status == "cancelled":
            return OpResult(False, f"task {task.id} is {closed}; retry it to run the prompt again")
        queued = self._queued_job(task)
        if queued is not None:
            queued.text = f"{queued.text}\n\n{text}" if text else queued.text
            queued.images.extend(images)
            return OpResult(True, "added to the queued turn")
        if task.busy:
            if task.agent is not None and task.agent.running:
                task.steer(text, images)
                return OpResult(True, "steering the running turn")
            return OpResult(False, f"task {task.id} is starting; send the message when it runs")
        # A message whose turn never reached the agent (the sandbox failed to start…) goes first.
        earlier = record.unsent or (record.prompt if record.turns == 0 else "")
        if record.turns == 0:
            images = record.images + images
            message = "task restarted"
        else:
            message = "follow-up queued"
        if earlier:
            text = f"{earlier}\n\n{text}" if text else earlier
        text = text or CONTINUE_TEXT
        self._enqueue(task, text, images)
        return OpResult(True, message)

    async def _op_interrupt(self, op: Op) -> OpResult:
        task = self._task(op)
        job = self._queued_job(task)
        if job is not None:
            self._queue.remove(job)
            if task.record.turns:
                task.set_status("ready", "interrupted")
            else:
                task.set_status("failed", "interrupted before it started")
            return OpResult(True, "removed from the queue")
        if not task.busy:
            return OpResult(False, f"task {task.id} is not running")
        if task.interrupt():
            return OpResult(True, "interrupting")
        assert task.runner is not None
        task.runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task.runner
        await task.stop()
        task.record.unsent = ""  # the user took the message back
        task.set_status("failed", "interrupted while starting")
        return OpResult(True, "interrupted while starting")

    async def _op_cancel(self, op: Op) -> OpResult:
        task = self._task(op)
        if task.record.status == "cancelled":
            return OpResult(True, "already cancelled")
        job = self._queued_job(task)
        if job is not None:
            self._queue.remove(job)
        await task.cancel()
        return OpResult(True, "cancelled")

    async def _op_retry(self, op: Op) -> OpResult:
        record = self._task(op).record
        data = {
            "prompt": record.prompt,
            "images": record.images,
            "attempts": 1,
            "mode": record.mode,
            "model": record.model,
            "effort": record.effort,
            "repo": record.repo,
            "title": record.title,
        }
        return await self._op_submit(Op(OP_SUBMIT, data=data))

    async def _op_archive(self, op: Op) -> OpResult:
        task = self._task(op)
        if task.busy or self._queued_job(task) is not None:
            return OpResult(False, f"task {task.id} is still running; cancel it first")
        await task.stop()
        task.record.archived = True
        self.store.put(task.record, urgent=True)
        task.note("Archived.")
        return OpResult(True, "archived")

    async def _op_approve(self, op: Op) -> OpResult:
        task = self._task(op)
        return task.approve(str(op.data.get("request_id", "")), str(op.data.get("decision", "")))

    async def _op_apply(self, op: Op) -> OpResult:
        task = self._idle_task(op)
        branch = op.data.get("branch", False)
        branch_name = branch if isinstance(branch, str) and branch else op.data.get("branch_name")
        dry_run, pr = bool(op.data.get("dry_run", False)), bool(op.data.get("pr", False))
        return await handover.apply(
            task, bool(branch), dry_run, branch_name, pr=pr, reviews=self._reviews_of(task.id)
        )

    def _reviews_of(self, task_id: str) -> list[TaskRecord]:
        """The records of review tasks whose target is task `task_id`."""
        return [t.record for t in self._tasks.values() if t.record.review_target.get("task_id") == task_id]

    async def _op_undo(self, op: Op) -> OpResult:
        return await self._idle_task(op).undo()

    async def _op_compact(self, op: Op) -> OpResult:
        return await self._idle_task(op).compact()

    async def _op_get_diff(self, op: Op) -> OpResult:
        task = self._task(op)
        if task.workspace is None and not task.record.workspace:
            return OpResult(True, "no changes yet", {"patch": "", "files": [], "added": 0, "removed": 0})
        return await task.get_diff()

    async def _op_set_mode(self, op: Op) -> OpResult:
        task = self._task(op)
        mode = op.data.get("mode")
        if mode not in SANDBOX_MODES:
            return OpResult(False, f"mode '{mode}' is not one of {', '.join(SANDBOX_MODES)}")
        if refusal := escalation_refusal(task.record.kind):
            return OpResult(False, refusal)
        task.record.mode = str(mode)
        self.store.put(task.record, urgent=True)
        task.note(f"Mode for the next turn: {mode}.")
        return OpResult(True, f"mode {mode}")

    async def _op_set_kind(self, op: Op) -> OpResult:
        """Ask → Code (or back): the conversation stays; sandbox, tools and prompt follow the kind."""
        task = self._idle_task(op)
        kind = op.data.get("kind")
        if kind not in ("code", "ask"):
            return OpResult(False, f"kind '{kind}' is not code or ask")
        if task.record.kind == "review":
            return OpResult(False, "a review stays a review; fix a finding in a new task or a follow-up")
        if task.record.kind == kind:
            return OpResult(True, f"already a {kind} task")
        await task.set_kind(str(kind), sandbox_mode_for(str(kind), self.config.sandbox_mode))
        return OpResult(True, f"now a {kind} task")

    async def _op_read_file(self, op: Op) -> OpResult:
        return await handover.read_file(self._task(op), str(op.data.get("path") or ""))

    async def _op_get_pr(self, op: Op) -> OpResult:
        task = self._task(op)
        return await handover.get_pr(task, self._reviews_of(task.id))

    async def prune(self, *, older_than_s: float = 0.0) -> dict[str, int]:
        """Delete the checkouts of finished tasks (not resumable ones) and stale sandbox containers."""
        now = time.time()
        removed = 0
        for task in list(self._tasks.values()):
            record = task.record
            finished = record.status in TERMINAL_STATUSES and not record.message.startswith("interrupted")
            idle = not task.busy and self._queued_job(task) is None
            if not (finished and idle and record.workspace) or now - record.updated < older_than_s:
                continue
            if await task.remove_checkout():
                removed += 1
        return {"checkouts": removed, "containers": await self._sweep_containers()}

    def _idle_task(self, op: Op) -> Task:
        task = self._task(op)
        if task.busy or self._queued_job(task) is not None:
            raise RuntimeError(f"task {task.id} is running; wait for it or interrupt it first")
        return task


def _public_target(target: dict[str, Any]) -> dict[str, Any]:
    """What front ends see of a review target: its type, label and reviewed task."""
    return {key: target[key] for key in ("type", "label", "task_id") if target.get(key)}


def unsaved_message(write_error: str) -> str:
    """Why a task failed when its events, history or the index could not be written."""
    return f"could not save the task: {write_error} — free space in the data folder, then resume it"


def owned_by_other_process(record: TaskRecord) -> bool:
    """True when another live process (not a reused pid) last ran this task: it is not ours to touch."""
    if record.owner_pid == os.getpid():
        return False
    return process_alive(record.owner_pid, record.owner_start)
    return True
