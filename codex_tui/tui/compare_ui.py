"""The App's side of the compare view: which tasks to compare, their patches and reviews, live updates."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from codex_tui import protocol as p
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.state import TaskModel

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp


class CompareController:
    """Opens the compare view for one CodexApp and keeps it in line with the task models."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app
        self._diff_revs: dict[str, int] = {}

    def candidates(self) -> list[TaskModel]:
        """The selected task's attempts, or else the four most recent tasks."""
        app = self.app
        if app.selected_id is None:
            return []
        group = app.state.group(app.selected_id)
        if len(group) >= 2:
            return group[:4]
        return app.state.visible_tasks()[-4:]

    def open(self) -> None:
        """Compare the candidates side by side (or say why not)."""
        tasks = self.candidates()
        if len(tasks) < 2:
            self.app.notify("Nothing to compare: run a task with /attempts 2 or more", severity="warning")
            return
        self.app.run_worker(self._open(tasks), group="compare", exclusive=True, exit_on_error=False)

    async def _open(self, tasks: list[TaskModel]) -> None:
        app = self.app
        results = await asyncio.gather(*(app.source.submit(p.Op(p.OP_GET_DIFF, t.id)) for t in tasks))
        patches = {
            t.id: str(r.data.get("patch") or "") if r.ok else "" for t, r in zip(tasks, results, strict=True)
        }
        pane = app.active_pane() if app.active_pane() in ("diff", "log") else "diff"
        screen = CompareScreen(tasks, patches, pane=pane, reviews=self.reviews_of([t.id for t in tasks]))
        self._diff_revs = {t.id: t.diff_rev for t in tasks}
        await app.push_screen(screen, self._done)

    def reviews_of(self, task_ids: list[str]) -> dict[str, TaskModel]:
        """The newest review task of each of these tasks (those that have one)."""
        found = {task_id: self.app.state.review_of(task_id) for task_id in task_ids}
        return {task_id: review for task_id, review in found.items() if review is not None}

    def _done(self, task_id: str | None) -> None:
        if task_id:
            self.app.goto_task(task_id)
            self.app.send_soon(p.Op(p.OP_APPLY, task_id, {"branch": False, "dry_run": False}))

    def refresh(self, screen: CompareScreen, changed: set[str]) -> None:
        """Bring an open compare view in line with the tasks that changed (and their reviews)."""
        compared = [self.app.state.tasks[i] for i in screen.task_ids if i in changed]
        screen.update_reviews(self.reviews_of(screen.task_ids))
        screen.update_tasks(compared)
        for task in compared:
            self._refresh_diff(task)

    def _refresh_diff(self, task: TaskModel) -> None:
        if self._diff_revs.get(task.id) == task.diff_rev:
            return
        self._diff_revs[task.id] = task.diff_rev

        async def load() -> None:
            result = await self.app.source.submit(p.Op(p.OP_GET_DIFF, task.id))
            if result.ok and isinstance(self.app.screen, CompareScreen):
                self.app.screen.set_patch(task.id, str(result.data.get("patch") or ""))

        self.app.run_worker(load(), exit_on_error=False)
