"""The App's event-derived model of every task: a pure reducer, no Textual, unit-testable.

Every pane renders from a :class:`TaskModel` (`task_model`); the model is rebuilt from events
alone (`state_events`), so switching tasks, reopening the app or replaying a rollout shows the same
thing. Event text comes from the task (command output, model text, file names): `AppState.apply`
strips its terminal control sequences before any handler sees it, so nothing a pane draws can
drive the terminal.
"""

from __future__ import annotations

from codex_tui import protocol as p
from codex_tui.tui.chat_lines import CommandInfo as CommandInfo
from codex_tui.tui.chat_lines import command_line as command_line
from codex_tui.tui.chat_lines import file_change_line as file_change_line
from codex_tui.tui.chat_lines import format_duration as format_duration
from codex_tui.tui.chat_lines import format_tokens as format_tokens
from codex_tui.tui.state_events import HANDLERS, clean_event
from codex_tui.tui.task_model import ACTIVE_STATUSES as ACTIVE_STATUSES
from codex_tui.tui.task_model import MAX_BLOCKS as MAX_BLOCKS
from codex_tui.tui.task_model import MAX_LOG_CHARS as MAX_LOG_CHARS
from codex_tui.tui.task_model import STATUS_ICONS as STATUS_ICONS
from codex_tui.tui.task_model import Approval as Approval
from codex_tui.tui.task_model import ChatBlock as ChatBlock
from codex_tui.tui.task_model import TaskModel as TaskModel
from codex_tui.tui.task_model import TodoItem as TodoItem
from codex_tui.tui.task_model import TurnMark as TurnMark


class AppState:
    """All tasks by id, in creation order, plus pending approvals; fed one event at a time."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskModel] = {}
        self.hidden: set[str] = set()

    def visible_tasks(self) -> list[TaskModel]:
        """Tasks shown in the list (archived ones are hidden)."""
        return [t for t in self.tasks.values() if t.id not in self.hidden]

    def pending_approvals(self) -> list[Approval]:
        """Open approval requests across tasks, oldest task first."""
        return [a for t in self.tasks.values() for a in t.approvals.values()]

    def counts(self) -> dict[str, int]:
        """How many visible tasks are running and queued."""
        tasks = self.visible_tasks()
        return {
            "running": sum(1 for t in tasks if t.active),
            "queued": sum(1 for t in tasks if t.status == "queued"),
        }

    def group(self, task_id: str) -> list[TaskModel]:
        """The attempts sharing this task's group, in attempt order (just the task when alone)."""
        task = self.tasks.get(task_id)
        if task is None:
            return []
        if not task.group_id:
            return [task]
        same = [t for t in self.visible_tasks() if t.group_id == task.group_id]
        return sorted(same, key=lambda t: t.attempt)

    def review_of(self, task_id: str) -> TaskModel | None:
        """The newest review task that reviewed `task_id` (its review_target.task_id), if any."""
        reviews = [
            t
            for t in self.visible_tasks()
            if t.kind == "review" and t.review_target.get("task_id") == task_id
        ]
        done = [t for t in reviews if t.review is not None]
        return (done or reviews)[-1] if reviews else None

    def apply(self, event: p.Event) -> TaskModel | None:
        """Fold one event into the model; returns the task it changed (None if ignored)."""
        task = self.tasks.get(event.task_id)
        if task is None:
            if not event.task_id or event.seq < 0:  # a transient event of a task not seen yet
                return None
            task = TaskModel(id=event.task_id, created=event.ts)
            self.tasks[event.task_id] = task
        elif event.seq <= task.last_seq and event.seq >= 0:
            return None
        task.last_seq = max(task.last_seq, event.seq)
        handler = HANDLERS.get(event.type)
        if handler is not None:
            handler(task, clean_event(event))
        task.rev += 1
        return task
