"""The compare view: 2–4 tasks or attempts side by side (chat, diff or log); apply one of them."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import HorizontalScroll, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from codex_tui import protocol as p
from codex_tui.tui.bindings import COMPARE_BINDINGS
from codex_tui.tui.copy_text import copy_selection_for_ctrl_c
from codex_tui.tui.log_feed import feed_log
from codex_tui.tui.review import summary_text
from codex_tui.tui.state import STATUS_ICONS, TaskModel
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from codex_tui.tui.widgets.task_list import STATUS_STYLES

COMPARE_PANES = ("chat", "diff", "log")
MIN_COLUMN_WIDTH = 36
"""Narrower columns wrap or crop everything; with less room, fewer columns show and the row scrolls."""


def columns_in_view(width: int, count: int) -> int:
    """How many of `count` columns fit side by side in `width` cells (at least one)."""
    return max(1, min(count, width // MIN_COLUMN_WIDTH))


def review_line(review: TaskModel | None) -> Content:
    """`Review: ✓ correct · 0 P0 · 1 P1 · 2 P2`, `Review: running`, or nothing without a review."""
    if review is None:
        return Content("")
    if review.review is None:
        state = "running" if review.status not in p.TERMINAL_STATUSES else review.status
        return Content.assemble("\n", ("Review: ", "bold"), (state, "$text-muted"))
    result = review.review
    style = "$text-success" if result.correct and not result.failed else "$text-error"
    return Content.assemble("\n", ("Review: ", "bold"), (summary_text(result), style))


def column_header(task: TaskModel, review: TaskModel | None = None) -> Content:
    """`● Attempt 2/3 · ready · +12 −3`, the title, and the verdict of its review when there is one."""
    style = STATUS_STYLES.get(task.status, "$foreground")
    attempt = f"Attempt {task.attempt}/{task.attempts}" if task.attempts > 1 else "Task"
    return Content.assemble(
        (STATUS_ICONS.get(task.status, "·") + " ", f"bold {style}"),
        (attempt, "bold"),
        " · ",
        (task.status.replace("_", " "), style),
        " · ",
        (f"+{task.added}", "$success"),
        " ",
        (f"−{task.removed}", "$error"),
        "\n",
        (task.title, "$foreground-muted"),
        review_line(review),
    )


class CompareColumn(Vertical):
    """One task in the compare view: a header and the chosen pane."""

    def __init__(self, task: TaskModel, patch: str, pane: str, review: TaskModel | None = None) -> None:
        super().__init__(classes="compare-column", id=f"col-{task.id}")
        self.task_model = task
        self.review = review
        self.review_key: tuple[str, int] | None = (review.id, review.rev) if review else None
        self.patch = patch
        self.pane = pane
        self._log_cursor = 0

    def compose(self) -> ComposeResult:
        """Header and body."""
        yield Static(column_header(self.task_model, self.review), classes="compare-header")
        yield self._body()

    def _body(self) -> Widget:
        if self.pane == "diff":
            return DiffView(classes="compare-body")
        if self.pane == "log":
            return SandboxLog(classes="compare-body")
        return ChatView(classes="compare-body")

    async def on_mount(self) -> None:
        """Fill the body from the task model."""
        await self.refresh_body()

    async def show_pane(self, pane: str) -> None:
        """Switch this column to chat, diff or log."""
        if pane == self.pane:
            return
        self.pane = pane
        self._log_cursor = 0
        await self.query_one(".compare-body").remove()
        await self.mount(self._body())
        await self.refresh_body()

    async def refresh_body(self) -> None:
        """Bring header and body in line with the task model."""
        task = self.task_model
        self.query_one(".compare-header", Static).update(column_header(task, self.review))
        body = self.query_one(".compare-body")
        if isinstance(body, ChatView):
            await body.show_blocks(task.id, task.blocks)
        elif isinstance(body, SandboxLog):
            feed_log(body, task.log_ops_since(self._log_cursor))
            self._log_cursor = task.log_end
        elif isinstance(body, DiffView):
            body.set_patch(self.patch)

    def set_patch(self, patch: str) -> None:
        """A newer patch of this task."""
        self.patch = patch
        body = self.query_one(".compare-body")
        if isinstance(body, DiffView):
            body.set_patch(patch)


class CompareScreen(Screen[str | None]):
    """Dismisses with the task id to apply, or None."""

    CSS_PATH = "compare.tcss"

    BINDINGS = COMPARE_BINDINGS

    class ReviewRequested(Message):
        """The user asked for a review of every compared attempt."""

        def __init__(self, task_ids: list[str]) -> None:
            super().__init__()
            self.task_ids = task_ids

    def __init__(
        self,
        tasks: list[TaskModel],
        patches: dict[str, str],
        *,
        pane: str = "diff",
        reviews: dict[str, TaskModel] | None = None,
    ) -> None:
        super().__init__()
        self.reviews = dict(reviews or {})
        """The newest review task of each compared task, by compared task id."""
        self.tasks = tasks[:4]
        self.patches = patches
        self.pane = pane if pane in COMPARE_PANES else "diff"
        self.current = 0
        self.shown = len(self.tasks)
        """Columns side by side at the current width."""

    @property
    def task_ids(self) -> list[str]:
        """Ids of the compared tasks, left to right."""
        return [t.id for t in self.tasks]

    def compose(self) -> ComposeResult:
        """A title line, the columns, the footer."""
        yield Static(self._title(), id="compare-title")
        with HorizontalScroll(id="compare-columns", can_focus=False):
            for task in self.tasks:
                yield CompareColumn(task, self.patches.get(task.id, ""), self.pane, self.reviews.get(task.id))
        yield Footer()

    def on_mount(self) -> None:
        """Mark the first column as current."""
        self._mark_current()

    def on_resize(self, event: events.Resize) -> None:
        """Size the columns so a whole number of them fits; the others are a scroll away."""
        shown = columns_in_view(event.size.width, len(self.tasks))
        if shown != self.shown:
            self.shown = shown
            self.query_one("#compare-title", Static).update(self._title())
        width = event.size.width // shown
        for column in self._columns():
            column.styles.width = width
        self.call_after_refresh(self._scroll_to_current)

    def _title(self) -> Content:
        scrolls = f" · {self.shown} in view, ←/→ scroll" if self.shown < len(self.tasks) else " · ←/→ choose"
        return Content.assemble(
            ("Compare ", "bold $primary"),
            (f"{len(self.tasks)} attempts", "bold"),
            (
                f" · showing {self.pane}{scrolls} · Enter applies the chosen one · Esc back",
                "$foreground-muted",
            ),
        )

    def _scroll_to_current(self) -> None:
        columns = self._columns()
        if self.current < len(columns):
            self.query_one("#compare-columns").scroll_to_widget(columns[self.current], animate=False)

    def _columns(self) -> list[CompareColumn]:
        return list(self.query(CompareColumn))

    def _mark_current(self) -> None:
        for index, column in enumerate(self._columns()):
            column.set_class(index == self.current, "current")

    def action_move(self, step: int) -> None:
        """Choose the column to the left/right."""
        self.current = max(0, min(len(self.tasks) - 1, self.current + step))
        self._mark_current()
        self._scroll_to_current()

    async def action_pane(self, pane: str) -> None:
        """Show chat, diff or log in every column."""
        if pane not in COMPARE_PANES:
            return
        self.pane = pane
        self.query_one("#compare-title", Static).update(self._title())
        for column in self._columns():
            await column.show_pane(pane)

    def action_copy_text(self) -> None:
        """Ctrl+C with a selection copies it (with a toast); without one, the key goes on to the app."""
        copy_selection_for_ctrl_c(self)

    def action_apply(self) -> None:
        """Apply the chosen attempt and close."""
        self.dismiss(self.tasks[self.current].id)

    def action_close(self) -> None:
        """Back to the main view."""
        self.dismiss(None)

    def action_review(self) -> None:
        """Start a review of every compared attempt (their verdicts appear in the headers)."""
        self.post_message(self.ReviewRequested(self.task_ids))

    def update_reviews(self, reviews: dict[str, TaskModel]) -> None:
        """Live update of the reviews of the compared tasks."""
        for column in self._columns():
            review = reviews.get(column.task_model.id)
            key = (review.id, review.rev) if review else None
            if key != column.review_key:
                column.review, column.review_key = review, key
                column.query_one(".compare-header", Static).update(column_header(column.task_model, review))

    def update_tasks(self, tasks: list[TaskModel]) -> None:
        """Live update: the App passes the latest models of the compared tasks."""
        by_id = {t.id: t for t in tasks}
        for column in self._columns():
            task = by_id.get(column.task_model.id)
            if task is not None:
                column.task_model = task
                self.run_worker(column.refresh_body(), group=f"col-{task.id}", exclusive=True)

    def set_patch(self, task_id: str, patch: str) -> None:
        """A newer patch for one column."""
        for column in self._columns():
            if column.task_model.id == task_id:
                column.set_patch(patch)

    def chosen(self) -> dict[str, Any]:
        """Which task is chosen (for tests and the palette)."""
        return {"index": self.current, "task_id": self.tasks[self.current].id, "pane": self.pane}
