"""The task list: one two-line card per task (status, title; elapsed, +/−, tokens, attempt)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from codex_tui.tui.attention import ATTENTION_MARKS
from codex_tui.tui.bindings import TASK_LIST_BINDINGS

STATUS_STYLES: dict[str, str] = {
    "queued": "$foreground-muted",
    "starting": "$secondary",
    "running": "$primary",
    "waiting_approval": "$warning",
    "ready": "$success",
    "applied": "$accent",
    "failed": "$error",
    "cancelled": "$foreground-muted",
}

STATUS_LABELS = {"waiting_approval": "approval?"}


@dataclass(frozen=True, slots=True)
class TaskRow:
    """What one card shows; the App builds these from its task models."""

    id: str
    icon: str
    status: str
    title: str
    elapsed: str
    added: int
    removed: int
    tokens: str
    attempt: str
    cost: str = ""
    """The task's estimated cost (`$0.42`, `?` for a model with no price; tui/cost.py), "" for none."""
    attention: str = ""
    """Why the task needs the user (tui/attention.py: approval, failed, finished), "" for nothing."""
    conflict: bool = False
    """Another unapplied task of the same repository changes one of its files (tui/conflicts.py)."""


def row_marks(row: TaskRow) -> list[tuple[str, str]]:
    """Marks before the title: `?` approval (unless the icon is `?`), `!` failed, `★` unseen, `⚠` conflict."""
    marks: list[tuple[str, str]] = []
    if row.attention in ATTENTION_MARKS and not (row.attention == "approval" and row.icon == "?"):
        style = {"approval": "$warning", "failed": "$error"}.get(row.attention, "$success")
        marks.append((ATTENTION_MARKS[row.attention] + " ", f"bold {style}"))
    if row.conflict:
        marks.append(("⚠ ", "bold $warning"))
    return marks


def render_row(row: TaskRow, width: int) -> Content:
    """Two lines: `● title` and `  1m 05s  +12 −3  4.2k tok $0.42  2/2 status`."""
    style = STATUS_STYLES.get(row.status, "$foreground")
    marks = row_marks(row)
    title_width = max(8, width - 2 - sum(len(text) for text, _ in marks))
    title = row.title if len(row.title) <= title_width else row.title[: title_width - 1] + "…"
    parts: list[tuple[str, str] | str] = [(row.icon, f"bold {style}"), " ", *marks, (title, "bold")]
    details: list[tuple[str, str] | str] = []
    for drop in ((), ("cost",), ("cost", "tokens"), ("cost", "tokens", "elapsed")):
        details = _details(row, style, set(drop))
        if 2 + sum(len(d if isinstance(d, str) else d[0]) for d in details) <= width:
            break  # a narrow list drops the cost, then the tokens, then the time: one line stays one
    details.insert(0, "\n  ")
    return Content.assemble(*parts, *details)


def _details(row: TaskRow, style: str, drop: set[str]) -> list[tuple[str, str] | str]:
    details: list[tuple[str, str] | str] = []
    if row.elapsed and "elapsed" not in drop:
        details += [(row.elapsed, "$foreground-muted"), "  "]
    details += [(f"+{row.added}", "$success"), " ", (f"−{row.removed}", "$error")]
    if "tokens" not in drop:
        details += ["  ", (f"{row.tokens} tok", "$foreground-muted")]
    if row.cost and "cost" not in drop:
        details += [" ", (row.cost, "$foreground-muted")]
    if row.attempt:
        details += ["  ", (row.attempt, "$secondary")]
    details += ["  ", (STATUS_LABELS.get(row.status, row.status), style)]
    return details


class TaskList(OptionList):
    """Tasks in creation order; highlighting one selects it (posts TaskList.Selected)."""

    BINDINGS = TASK_LIST_BINDINGS

    class Selected(Message):
        """The user moved to another task."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, TaskRow] = {}
        self._order: list[str] = []
        self._width = 40
        self.border_title = "Tasks"

    @property
    def selected_id(self) -> str | None:
        """Id of the highlighted task."""
        option = self.highlighted_option
        return option.id if option is not None else None

    def sync(self, rows: list[TaskRow]) -> None:
        """Show exactly these rows: add new cards, redraw changed ones, drop the missing."""
        wanted = [r.id for r in rows]
        if wanted[: len(self._order)] != self._order:
            self._rebuild(rows)
            return
        for row in rows:
            old = self._rows.get(row.id)
            if old is None:
                self.add_option(Option(render_row(row, self._width), id=row.id))
                self._order.append(row.id)
            elif old != row:
                self.replace_option_prompt(row.id, render_row(row, self._width))
            self._rows[row.id] = row
        if self.highlighted is None and self._order:
            self.highlighted = 0

    def select_task(self, task_id: str) -> None:
        """Highlight the card of this task (no message when it is already highlighted)."""
        if task_id in self._order:
            self.highlighted = self._order.index(task_id)

    def move(self, step: int) -> None:
        """Highlight the next (+1) or previous (−1) task."""
        if not self._order:
            return
        current = self.highlighted if self.highlighted is not None else 0
        self.highlighted = max(0, min(len(self._order) - 1, current + step))

    def _rebuild(self, rows: list[TaskRow]) -> None:
        selected = self.selected_id
        self.set_options([Option(render_row(r, self._width), id=r.id) for r in rows])
        self._rows = {r.id: r for r in rows}
        self._order = [r.id for r in rows]
        if selected in self._order:
            self.highlighted = self._order.index(selected)
        elif self._order:
            self.highlighted = min(len(self._order) - 1, self.highlighted or 0)

    def on_resize(self) -> None:
        """Titles are cut to the width: redraw the cards when it changes."""
        width = max(10, self.scrollable_content_region.width - 2)  # an option's padding: 1 each side
        if width != self._width:
            self._width = width
            self._rebuild(list(self._rows[i] for i in self._order))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Selected(event.option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Selected(event.option.id))
