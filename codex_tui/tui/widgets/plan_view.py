"""The to-do pane: the agent's plan as a checklist with a progress bar."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import ProgressBar, Static

from codex_tui.tui.state import TodoItem

MARKS = {
    "completed": ("☑", "$success"),
    "in_progress": ("◐", "$warning"),
    "pending": ("☐", "$foreground-muted"),
}


def checklist(items: list[TodoItem]) -> Content:
    """One line per step: a box, and the text (struck through when done)."""
    if not items:
        return Content.styled("No plan yet — the agent writes one with update_plan.", "$foreground-muted")
    lines: list[tuple[str, str] | str] = []
    for number, item in enumerate(items, 1):
        mark, style = MARKS.get(item.status, MARKS["pending"])
        text_style = "strike $foreground-muted" if item.status == "completed" else ""
        if item.status == "in_progress":
            text_style = "bold"
        if number > 1:
            lines.append("\n")
        lines += [(f"{mark} ", style), (item.text, text_style)]
    return Content.assemble(*lines)


class PlanView(VerticalScroll):
    """Checklist + progress; `show_plan` redraws only when the plan changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[tuple[tuple[str, str], ...], str] | None = None

    def compose(self) -> ComposeResult:
        """Explanation, progress bar, checklist."""
        yield Static("", id="plan-explanation")
        yield Static("", id="plan-count")
        yield ProgressBar(total=1, show_eta=False, id="plan-progress")
        yield Static(checklist([]), id="plan-items")

    def show_plan(self, items: list[TodoItem], explanation: str) -> None:
        """Show this plan (no work when it is the one already shown)."""
        key = (tuple((i.text, i.status) for i in items), explanation)
        if key == self._shown:
            return
        self._shown = key
        done = sum(1 for i in items if i.status == "completed")
        self.query_one("#plan-explanation", Static).update(Content(explanation))  # model text: no markup
        self.query_one("#plan-explanation", Static).display = bool(explanation)
        count = self.query_one("#plan-count", Static)
        count.update(Content.styled(f"{done} of {len(items)} steps done", "bold"))
        count.display = bool(items)
        bar = self.query_one("#plan-progress", ProgressBar)
        bar.update(total=max(1, len(items)), progress=done)
        bar.display = bool(items)
        self.query_one("#plan-items", Static).update(checklist(items))
