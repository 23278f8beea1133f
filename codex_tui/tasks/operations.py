"""The operations a front end submits to the task manager: one handler each, returning an OpResult."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui.protocol import (
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
    THREAD_STARTED,
    Op,
    OpResult,
)
from codex_tui.tasks import handover
from codex_tui.tasks.kinds import escalation_refusal, sandbox_mode_for
from codex_tui.tasks.store import TaskRecord
from codex_tui.tasks.submission import (
    ReviewJob,
    Submission,
    check_submission,
    resolve_reviews,
)
from codex_tui.tasks.task import Task

if TYPE_CHECKING:
    from codex_tui.tasks.manager import TaskManager

CONTINUE_TEXT = "Continue where you left off."
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


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


class TaskOperations:
    """The handlers behind `TaskManager.submit`, through the manager's task and queue methods."""

    def __init__(self, manager: TaskManager) -> None:
        self._manager = manager

    def handler(self, op_type: str) -> Callable[[Op], Awaitable[OpResult]] | None:
        """The handler of operation `op_type`; None when there is no such operation."""
        handlers: dict[str, Callable[[Op], Awaitable[OpResult]]] = {
            OP_SUBMIT: self._op_submit,
            OP_MCP_STATUS: self._op_mcp_status,
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
        return handlers.get(op_type)

    def _task(self, op: Op) -> Task:
        task = self._manager.get_task(op.task_id)
        if task is None:
            raise LookupError(f"unknown task '{op.task_id}'")
        return task

    async def _op_submit(self, op: Op) -> OpResult:
        spec = check_submission(op.data, self._manager.config, self._manager.repo)
        if isinstance(spec, str):
            return OpResult(False, spec)
        if spec.kind == "review":
            return await self._submit_reviews(spec, op.data.get("review"))
        group_id = new_id("g")
        tasks = [
            self._create_task(spec, attempt, group_id, spec.models[(attempt - 1) % len(spec.models)])
            for attempt in range(1, spec.attempts + 1)
        ]
        ids = [task.id for task in tasks]
        for task in tasks:
            self._manager.enqueue(task, spec.prompt, spec.images)
        return OpResult(True, f"submitted {len(ids)} task(s)", {"task_ids": ids, "group_id": group_id})

    async def _submit_reviews(self, spec: Submission, review: Any) -> OpResult:
        """One review task per target (each its own group), resolved before any is created."""

        def find(task_id: str) -> TaskRecord | None:
            task = self._manager.get_task(task_id)
            return task.record if task is not None else None

        resolved = await resolve_reviews(spec, review, find)
        if isinstance(resolved, str):
            return OpResult(False, resolved)
        tasks = [
            self._create_task(spec, 1, new_id("g"), spec.models[0], review=job) for job in resolved.reviews
        ]
        for task in tasks:
            self._manager.enqueue(task, task.record.prompt, [])
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
            provider=self._manager.config.model_provider,
            kind=spec.kind,
            review_target=target,
            network=spec.network,
            allowed_domains=list(spec.allowed_domains),
        )
        task = Task(record, self._manager.context())
        self._manager.add_task(task)
        self._manager.store.put(record, urgent=True)
        self._manager.emit(
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
        self._manager.emit(record.id, THREAD_STARTED, {"thread_id": record.id})
        if self._manager.backend_note:
            task.note(self._manager.backend_note, "warning")
        return task

    async def _op_mcp_status(self, op: Op) -> OpResult:
        """The configured MCP servers, their state and tools (started first when `start`)."""
        if op.data.get("start"):
            await self._manager.mcp.start_all()
        return OpResult(True, "", {"servers": self._manager.mcp.status()})

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
        queued = self._manager.queued_job(task)
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
        self._manager.enqueue(task, text, images)
        return OpResult(True, message)

    async def _op_interrupt(self, op: Op) -> OpResult:
        task = self._task(op)
        if self._manager.unqueue(task) is not None:
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
        self._manager.unqueue(task)
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
        if task.busy or self._manager.queued_job(task) is not None:
            return OpResult(False, f"task {task.id} is still running; cancel it first")
        await task.stop()
        task.record.archived = True
        self._manager.store.put(task.record, urgent=True)
        task.note("Archived.")
        return OpResult(True, "archived")

    async def _op_approve(self, op: Op) -> OpResult:
        task = self._task(op)
        return task.approvals.approve(str(op.data.get("request_id", "")), str(op.data.get("decision", "")))

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
        return [
            t.record for t in self._manager.live_tasks() if t.record.review_target.get("task_id") == task_id
        ]

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
        self._manager.store.put(task.record, urgent=True)
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
        await task.set_kind(str(kind), sandbox_mode_for(str(kind), self._manager.config.sandbox_mode))
        return OpResult(True, f"now a {kind} task")

    async def _op_read_file(self, op: Op) -> OpResult:
        return await handover.read_file(self._task(op), str(op.data.get("path") or ""))

    async def _op_get_pr(self, op: Op) -> OpResult:
        task = self._task(op)
        return await handover.get_pr(task, self._reviews_of(task.id))

    def _idle_task(self, op: Op) -> Task:
        task = self._task(op)
        if task.busy or self._manager.queued_job(task) is not None:
            raise RuntimeError(f"task {task.id} is running; wait for it or interrupt it first")
        return task


def _public_target(target: dict[str, Any]) -> dict[str, Any]:
    """What front ends see of a review target: its type, label and reviewed task."""
    return {key: target[key] for key in ("type", "label", "task_id") if target.get(key)}
