"""A task's diff: recomputed after files change (bursts coalesced) and on demand."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from codex_tui.protocol import DIFF_UPDATED
from codex_tui.tasks.task_context import describe_error

if TYPE_CHECKING:
    from codex_tui.tasks.task import Task


class DiffTracker:
    """Keeps a task's diff current: one computation at a time, repeated while files changed meanwhile."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self.dirty = False
        """Files changed since the last diff was computed."""
        self._job: asyncio.Task[None] | None = None

    def schedule(self) -> None:
        """Files changed: compute the diff soon (once for a burst of changes)."""
        self.dirty = True
        if self._job is None or self._job.done():
            self._job = asyncio.create_task(self._loop(), name=f"diff-{self._task.id}")

    async def _loop(self) -> None:
        while self.dirty:
            self.dirty = False
            try:
                await self._emit()
            except Exception as exc:
                self._task.note(f"could not compute the diff: {describe_error(exc)}", "warning")
                self.dirty = True  # retried by the next refresh
                return

    async def refresh(self, *, force: bool = False) -> None:
        """Wait for a pending diff; compute one now if files changed since the last one (or `force`)."""
        if self._job is not None:
            await self._job
        if force or self.dirty:
            self.dirty = False
            await self._emit()

    async def _emit(self) -> None:
        if self._task.workspace is None:
            return
        summary = (await self._task.workspace.diff()).summary_dict()
        self._task.record.added, self._task.record.removed = summary["added"], summary["removed"]
        self._task.ctx.store.put(self._task.record)
        self._task.emit(DIFF_UPDATED, summary)
