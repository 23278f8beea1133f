"""Which tasks need the user: waiting for an approval, failed, or finished and not yet looked at.

Pure (no Textual): the attention inbox, the marks of the task list and of the mission-control
tiles, and the "next attention" key all read :func:`attention_items`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from codex_tui.tui.state import Approval, AppState, TaskModel

AttentionKind = Literal["approval", "failed", "finished"]
KIND_ORDER: dict[str, int] = {"approval": 0, "failed": 1, "finished": 2}
ATTENTION_MARKS: dict[str, str] = {"approval": "?", "failed": "!", "finished": "★"}
"""One character per kind, for the task list and the tiles."""
ATTENTION_LABELS: dict[str, str] = {
    "approval": "waiting for approval",
    "failed": "failed",
    "finished": "finished, not seen yet",
}


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One entry of the attention inbox."""

    task_id: str
    kind: AttentionKind
    title: str
    detail: str
    """The command or patch awaiting approval, the failure message, or the finish status."""


class SeenTracker:
    """Remembers which finished tasks the user has looked at (a task that finishes again is new)."""

    def __init__(self) -> None:
        self._seen: dict[str, float | None] = {}

    def mark(self, task: TaskModel | None) -> bool:
        """The user has this task in view: a finished task counts as seen; True when that is news."""
        if task is None or task.finished is None or task.active:
            return False
        if self._seen.get(task.id, -1.0) == task.finished:
            return False
        self._seen[task.id] = task.finished
        return True

    def is_seen(self, task: TaskModel) -> bool:
        """The task's latest finish has been in view."""
        return task.finished is not None and self._seen.get(task.id, -1.0) == task.finished


def attention_kind(task: TaskModel, seen: SeenTracker) -> AttentionKind | None:
    """Why this task needs the user, or None."""
    if task.approvals:
        return "approval"
    if task.status == "failed" and not seen.is_seen(task):
        return "failed"
    if task.status == "ready" and not seen.is_seen(task):
        return "finished"
    return None


def attention_items(state: AppState, seen: SeenTracker) -> list[AttentionItem]:
    """Every task that needs the user: approvals first, then failures, then unseen finished tasks."""
    items: list[AttentionItem] = []
    for task in state.visible_tasks():
        kind = attention_kind(task, seen)
        if kind is not None:
            items.append(AttentionItem(task.id, kind, task.title or task.id, _detail(task, kind)))
    return sorted(items, key=lambda item: KIND_ORDER[item.kind])  # stable: creation order within a kind


def next_attention(state: AppState, seen: SeenTracker, after_id: str | None) -> str | None:
    """The task to jump to after `after_id` (inbox order, wrapping around); None when nothing waits."""
    ids = [item.task_id for item in attention_items(state, seen)]
    if not ids:
        return None
    if after_id in ids:
        return ids[(ids.index(after_id) + 1) % len(ids)]
    return ids[0]


def modal_approval(
    state: AppState, selected_id: str | None, answered: Collection[tuple[str, str]]
) -> Approval | None:
    """The approval that may open as a dialog: only one of the task in view (others wait in the inbox)."""
    task = state.tasks.get(selected_id or "")
    if task is None:
        return None
    return first_approval(task, answered)


def first_approval(task: TaskModel, answered: Collection[tuple[str, str]] = ()) -> Approval | None:
    """The oldest open approval of this task that has not been answered yet."""
    return next(
        (a for a in task.approvals.values() if (a.task_id, a.request_id) not in answered),
        None,
    )


def _detail(task: TaskModel, kind: AttentionKind) -> str:
    if kind == "approval":
        approval = next(iter(task.approvals.values()))
        if approval.kind == "mcp":
            return f"MCP {approval.server}.{approval.tool}"
        what = approval.command or approval.patch or approval.kind
        return what.splitlines()[0] if what else approval.kind
    if kind == "failed":
        return (task.message or "failed").splitlines()[0]
    return f"ready · +{task.added} −{task.removed}"
