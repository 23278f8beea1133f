"""A task's approval requests: decided by its kind or policy when they can be, else asked and awaited."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

from codex_tui.protocol import (
    APPROVAL_REQUESTED,
    APPROVAL_RESOLVED,
    ApprovalDecision,
    OpResult,
)
from codex_tui.tasks.kinds import escalation_refusal

if TYPE_CHECKING:
    from codex_tui.tasks.task import Task

_request_ids = itertools.count(1)


class Approvals:
    """The pending approval requests of one task, and how each one is decided."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self.pending: dict[str, asyncio.Future[ApprovalDecision]] = {}

    async def request(self, data: dict[str, Any]) -> ApprovalDecision:
        """Ask the user (or the policy) whether an escalated command or patch may run."""
        request_id = f"ap-{next(_request_ids)}"
        self._task.emit(APPROVAL_REQUESTED, {"request_id": request_id, **data})
        if refusal := escalation_refusal(self._task.record.kind):
            self._resolved(request_id, "deny", refusal)
            return "deny"
        if self._task.ctx.approval_policy == "never":
            self._resolved(request_id, "deny", "the approval policy is never")
            return "deny"
        if self._task.record.approve_all:
            self._resolved(request_id, "approve_task", "approved for this task earlier")
            return "approve_task"
        future: asyncio.Future[ApprovalDecision] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        self._task.set_status("waiting_approval")
        try:
            decision = await future
        except asyncio.CancelledError:
            self._resolved(request_id, "deny", "the turn was interrupted")
            raise
        finally:
            self.pending.pop(request_id, None)
            if not self.pending and self._task.record.status == "waiting_approval":
                self._task.set_status("running")
        if decision == "approve_task":
            self._task.record.approve_all = True
        self._resolved(request_id, decision)
        return decision

    def _resolved(self, request_id: str, decision: str, reason: str = "") -> None:
        data: dict[str, Any] = {"request_id": request_id, "decision": decision}
        if reason:
            data["reason"] = reason
        self._task.emit(APPROVAL_RESOLVED, data)

    def approve(self, request_id: str, decision: str) -> OpResult:
        """Resolve a pending approval."""
        if decision not in ("approve", "approve_task", "deny"):
            return OpResult(False, f"unknown decision '{decision}' (approve, approve_task or deny)")
        future = self.pending.get(request_id)
        if future is None or future.done():
            return OpResult(False, f"no pending approval '{request_id}' on task {self._task.id}")
        future.set_result(decision)  # type: ignore[arg-type]
        return OpResult(True, decision)

    def deny_all(self) -> None:
        """Answer every pending request with deny (the task is cancelled)."""
        for future in self.pending.values():
            if not future.done():
                future.set_result("deny")
