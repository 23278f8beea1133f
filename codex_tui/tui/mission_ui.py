"""The App's side of mission control and the attention inbox: seen tasks, marks, approval routing.

An approval opens as a dialog only for the task in view, and only over the main screen; approvals
of other tasks wait in the attention inbox (the App's toast and bell announce them) and are
answered from a tile or by opening the task.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from codex_tui import protocol as p
from codex_tui.tui.attention import SeenTracker, modal_approval, next_attention
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.mission import Marks, MissionScreen, compute_marks
from codex_tui.tui.state import Approval
from codex_tui.tui.widgets.task_list import TaskRow

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp


class MissionController:
    """Mission control, the inbox and the approval dialog for one CodexApp."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app
        self.seen = SeenTracker()
        self.marks = Marks()
        self.answered: set[tuple[str, str]] = set()
        """Approvals answered here and not resolved yet (no second dialog for them)."""
        self._approval_open: Approval | None = None

    # --- state ---------------------------------------------------------------------------------

    def _on_main_screen(self) -> bool:
        app = self.app
        return bool(app.screen_stack) and app.screen is app.screen_stack[0]

    def viewed(self) -> bool:
        """The selected task is in view (main screen on top): a finished one is now seen. True if news."""
        if not self._on_main_screen() or not self.app.selected_task():
            return False
        if not self.seen.mark(self.app.selected_task()):
            return False
        self.marks = compute_marks(self.app.state, self.seen)
        return True

    def refresh(self, changed: set[str]) -> None:
        """After each flush, before the task list syncs: marks, and an open mission control."""
        app = self.app
        if self._on_main_screen():
            self.seen.mark(app.selected_task())
        self.marks = compute_marks(app.state, self.seen)
        if isinstance(app.screen, MissionScreen):
            app.screen.refresh_from(app.state, changed)

    def mark_row(self, row: TaskRow) -> TaskRow:
        """The task list card with its attention and conflict marks."""
        item = self.marks.by_task.get(row.id)
        attention = item.kind if item is not None else ""
        conflict = bool(self.marks.conflicts.get(row.id))
        if attention == row.attention and conflict == row.conflict:
            return row
        return replace(row, attention=attention, conflict=conflict)

    # --- mission control -----------------------------------------------------------------------

    def open(self, *, inbox: bool = False) -> None:
        """Show mission control (focused on the inbox with `inbox`); from mission control, close it."""
        app = self.app
        if isinstance(app.screen, MissionScreen):
            if inbox:
                app.screen.action_inbox()
            else:
                app.screen.dismiss(None)
            return
        if not self._on_main_screen():
            return  # not over a dialog or another view: close that first
        self.seen.mark(app.selected_task() if self._on_main_screen() else None)
        screen = MissionScreen(
            app.state,
            self.seen,
            on_decide=self.decide,
            clock=app.clock if app.show_elapsed else None,
            focus_task=app.selected_id,
            focus_inbox=inbox,
        )
        app.push_screen(screen, self._closed)

    def _closed(self, task_id: str | None) -> None:
        if task_id:
            self.open_task(task_id)

    def open_task(self, task_id: str) -> None:
        """Select a task in the main view; its waiting approval opens as the dialog."""
        self.app.goto_task(task_id)
        self.app.call_later(self._after_open, task_id)

    def _after_open(self, task_id: str) -> None:
        self.viewed()
        self.show_next_approval()

    def next_attention(self) -> None:
        """Jump to the next task that needs the user (from the main view or mission control)."""
        app = self.app
        self.viewed()
        screen = app.screen
        after = screen.focused_task_id if isinstance(screen, MissionScreen) else app.selected_id
        target = next_attention(app.state, self.seen, after)
        if target is None:
            app.notify("Nothing needs you", timeout=3)
        elif isinstance(screen, MissionScreen):
            screen.select_tile(target)
        elif self._on_main_screen():
            self.open_task(target)
        else:
            app.notify("Close this view first, then jump", severity="warning", timeout=3)

    def decide(self, approval: Approval, decision: str) -> None:
        """Answer an approval (from a tile, the inbox or the dialog)."""
        self.answered.add((approval.task_id, approval.request_id))
        data = {"request_id": approval.request_id, "decision": decision}
        self.app.send_soon(p.Op(p.OP_APPROVE, approval.task_id, data))

    # --- the approval dialog -------------------------------------------------------------------

    def show_next_approval(self) -> None:
        """One dialog at a time, for the task in view, over the main screen; closed when resolved."""
        app = self.app
        open_ = self._approval_open
        if open_ is not None:
            task = app.state.tasks.get(open_.task_id)
            if task is None or open_.request_id not in task.approvals:
                screen = app.screen
                if isinstance(screen, ApprovalScreen) and screen.approval is open_:
                    self._approval_open = None
                    screen.dismiss(None)  # type: ignore[arg-type]
                elif not any(getattr(s, "approval", None) is open_ for s in app.screen_stack):
                    self._approval_open = None
            return
        self.answered &= {(a.task_id, a.request_id) for a in app.state.pending_approvals()}
        if not self._on_main_screen():
            return
        approval = modal_approval(app.state, app.selected_id, self.answered)
        if approval is None:
            return
        self._approval_open = approval

        def decided(decision: str | None) -> None:
            self._approval_open = None
            if decision:
                self.decide(approval, decision)
            app.call_later(self.show_next_approval)

        app.push_screen(ApprovalScreen(approval, app.state.tasks[approval.task_id].title), decided)
