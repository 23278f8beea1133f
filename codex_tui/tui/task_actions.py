"""What the user does to the selected task: a prompt (new task, steer or follow-up), an
operation (apply, branch, undo, compact, cancel, retry), interrupt, archive, and its status."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui import protocol as p
from codex_tui.tui.cost import cost_label
from codex_tui.tui.state import format_tokens
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.composer import Composer

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp


class TaskActions:
    """The task operations of one CodexApp."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app

    def op(self, op_type: str, data: dict[str, Any] | None = None) -> bool:
        """Send an operation on the selected task; False (with a toast) when none is selected."""
        task = self.app.selected_task()
        if task is None:
            self.app.notify("No task selected", severity="warning")
            return False
        self.app.send_soon(p.Op(op_type, task.id, data or {}))
        return True

    def submit(self, text: str, images: list[Path], *, new_task: bool = False) -> None:
        """A new task, a steer of the running task, or a follow-up of the finished one."""
        task = self.app.selected_task()
        paths = [str(i) for i in images]
        if new_task or self.app.new_task_mode or task is None:
            data: dict[str, Any] = {"prompt": text, "images": paths, "attempts": self.app.next_attempts}
            data.update(self.app.review_ui.submit_kind())
            if self.app.next_mode:
                data["mode"] = self.app.next_mode
            if self.app.next_model:
                data["model"] = self.app.next_model
            data.update(self.app.next_network.take())
            self.app.new_task_mode = False
            self.app.next_attempts = 1
            self.app.send_soon(p.Op(p.OP_SUBMIT, "", data))
        else:
            self.app.send_soon(p.Op(p.OP_USER_MESSAGE, task.id, {"text": text, "images": paths}))
        self.app.refresh_target()

    def new_task(self) -> None:
        """The next message starts a new task."""
        self.app.new_task_mode = True
        self.app.refresh_target()
        self.app.main_widget(Composer).area.focus()

    def interrupt(self) -> None:
        """Esc: leave a maximised pane, else stop the selected task's turn."""
        if self.app.screen.maximized is not None:
            self.app.screen.minimize()
            return
        if self.app.new_task_mode:
            self.app.new_task_mode = False
            self.app.refresh_target()
            return
        task = self.app.selected_task()
        if task is not None and (task.active or task.status == "queued"):
            self.app.send_soon(p.Op(p.OP_INTERRUPT, task.id))
            self.app.notify(f"Interrupting {task.title}")

    def archive(self) -> None:
        """Archive the selected task (hidden from the list)."""
        task = self.app.selected_task()
        if task is None:
            return
        self.app.run_worker(self._archive(task.id), group="ops", exit_on_error=False)

    async def _archive(self, task_id: str) -> None:
        result = await self.app.send(p.Op(p.OP_ARCHIVE, task_id))
        if result.ok:
            self.app.state.hidden.add(task_id)
            if self.app.selected_id == task_id:
                self.app.selected_id = None
                await self.app.main_widget(ChatView).clear()
            self.app.sync_task_list()
            visible = self.app.state.visible_tasks()
            if visible:
                self.app.select(visible[-1].id)
            await self.app.panes_ui.render_selected()

    def status(self) -> None:
        """Show model, mode, context and usage of the selected task."""
        task = self.app.selected_task()
        if task is None:
            self.app.notify(
                f"model {self.app.next_model or self.app.config.model} · no task selected", title="Status"
            )
            return
        context = "unknown" if task.context_left_pct is None else f"{task.context_left_pct}% left"
        cost = cost_label(task, self.app.config.pricing, self.app.config.model)
        lines = [
            f"{task.title} ({task.id})",
            f"status {task.status} · attempt {task.attempt}/{task.attempts}",
            f"model {task.model} · mode {task.mode}",
            f"context {context} · {format_tokens(task.tokens)} tokens "
            f"({format_tokens(task.cached_input_tokens)} cached) · {cost or 'no cost yet'}",
            f"diff +{task.added} −{task.removed} in {len(task.files)} file(s)",
        ]
        self.app.notify("\n".join(lines), title="Status", timeout=10)
