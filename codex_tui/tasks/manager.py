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
    SANDBOX_USAGE,
    TASK_STATUS,
    TERMINAL_STATUSES,
    Event,
    Op,
    OpResult,
)
from codex_tui.sandbox import disk
from codex_tui.sandbox.factory import choose_backend, startup_sweep
from codex_tui.sandbox.image import image_status
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tasks.operations import TaskOperations
from codex_tui.tasks.store import RolloutStore, TaskRecord
from codex_tui.tasks.task import APP_STOPPED, Task
from codex_tui.tasks.task_context import TaskContext, describe_error
from codex_tui.tasks.usage_sampler import Metered, UsageSampler
from codex_tui.workspace.git import Workspace, WorkspaceError

log = logging.getLogger(__name__)

ACTIVE_STATUSES = frozenset({"queued", "starting", "running", "waiting_approval"})
URGENT_EVENTS = frozenset({TASK_STATUS, APPROVAL_REQUESTED, ERROR})
"""Written to the rollout at once rather than with the next batch."""
CLOSE_GRACE_S = 5.0
STOP_RETRY_S = 0.05
"""How often a turn stopped for a failed write is cancelled again until it has stopped."""

Callback = Callable[[Event], None]


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
        self._operations = TaskOperations(self)
        self.usage_sampler = UsageSampler(self._metered_sandboxes, self._publish_usage)
        """Samples running tasks' sandboxes (CPU, memory, disk) into transient sandbox.usage events."""

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
            task = Task(record, self.context())
            self._tasks[record.id] = task
            if record.status in ACTIVE_STATUSES:
                task.set_status("failed", APP_STOPPED)
        if self.backend == "docker":
            await self._sweep_containers()
        await self._sweep_disks([Path(r.workspace) for r in records if r.workspace])
        self._started = True
        self.usage_sampler.start()
        await self.store.flush()

    async def close(self) -> None:
        """Interrupt running turns, stop sandboxes, flush the store; every task stays resumable."""
        if self._closing:
            return
        self._closing = True
        await self.usage_sampler.stop()
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

    def context(self) -> TaskContext:
        """What a task needs from its manager: config, store, model clients, event delivery."""
        return TaskContext(
            config=self.config,
            store=self.store,
            emit=self.emit,
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

    def emit(self, task_id: str, type_: str, data: dict[str, Any]) -> None:
        """Number, store and deliver one event of a task."""
        seq = self._seqs.get(task_id, 0) + 1
        self._seqs[task_id] = seq
        event = Event(type_, task_id, seq, data)
        self.store.append(event, urgent=type_ in URGENT_EVENTS)
        task = self._tasks.get(task_id)
        if task is not None:
            task.record.updated = event.ts  # reaches the index with the next status or diff change
        for sub in list(self._subscribers):
            self._deliver(sub, event)

    def _publish_usage(self, task_id: str, data: dict[str, Any]) -> None:
        """A transient sandbox.usage event (seq -1): live subscribers only, never the rollout."""
        event = Event(SANDBOX_USAGE, task_id, -1, data)
        for sub in list(self._subscribers):
            if not sub.replaying:
                self._deliver(sub, event)

    def _metered_sandboxes(self) -> dict[str, Metered]:
        """The started sandboxes of the tasks running a turn now."""
        found: dict[str, Metered] = {}
        for task_id in self._running:
            task = self._tasks.get(task_id)
            if task is not None and task.sandbox is not None and task.sandbox_started:
                found[task_id] = task.sandbox
        return found

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

    def enqueue(self, task: Task, text: str, images: list[str]) -> None:
        """Queue a turn of `task`; it starts when a slot is free."""
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

    def queued_job(self, task: Task) -> _Job | None:
        """The turn of `task` waiting in the queue, if any."""
        return next((j for j in self._queue if j.task is task), None)

    def unqueue(self, task: Task) -> _Job | None:
        """Take the turn of `task` out of the queue; the job taken out, if there was one."""
        job = self.queued_job(task)
        if job is not None:
            self._queue.remove(job)
        return job

    def get_task(self, task_id: str) -> Task | None:
        """The live task with this id, if any."""
        return self._tasks.get(task_id)

    def add_task(self, task: Task) -> None:
        """Track a task just created by an operation."""
        self._tasks[task.id] = task

    def live_tasks(self) -> list[Task]:
        """Every task this manager holds, in creation order."""
        return list(self._tasks.values())

    # --- operations --------------------------------------------------------------------------

    async def submit(self, op: Op) -> OpResult:
        """Carry out one operation; failures come back as OpResult(ok=False, message)."""
        if not self._started:
            return OpResult(False, "the task manager is not started")
        if self._closing:
            return OpResult(False, "the task manager is closing")
        handler = self._operations.handler(op.type)
        if handler is None:
            return OpResult(False, f"unknown operation '{op.type}'")
        try:
            return await handler(op)
        except Exception as exc:  # an operation may fail; the manager never does
            log.debug("operation %s failed", op.type, exc_info=True)
            return OpResult(False, describe_error(exc))

    async def prune(self, *, older_than_s: float = 0.0) -> dict[str, int]:
        """Delete the checkouts of finished tasks (not resumable ones) and stale sandbox containers."""
        now = time.time()
        removed = 0
        for task in list(self._tasks.values()):
            record = task.record
            finished = record.status in TERMINAL_STATUSES and not record.message.startswith("interrupted")
            idle = not task.busy and self.queued_job(task) is None
            if not (finished and idle and record.workspace) or now - record.updated < older_than_s:
                continue
            if await task.remove_checkout():
                removed += 1
        return {"checkouts": removed, "containers": await self._sweep_containers()}


def unsaved_message(write_error: str) -> str:
    """Why a task failed when its events, history or the index could not be written."""
    return f"could not save the task: {write_error} — free space in the data folder, then resume it"


def owned_by_other_process(record: TaskRecord) -> bool:
    """True when another live process (not a reused pid) last ran this task: it is not ours to touch."""
    if record.owner_pid == os.getpid():
        return False
    return process_alive(record.owner_pid, record.owner_start)
    return True
