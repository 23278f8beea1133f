"""The status bar: model, mode, context left, tokens and cost, running and queued counts."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static

from codex_tui.tui.state import format_tokens


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What the bar shows; the App fills it from the selected task and the counts."""

    model: str
    mode: str
    context_left: int | None
    tokens: int
    running: int
    queued: int
    task: str = ""
    task_cost: str = ""
    """The selected task's estimated cost (`$0.42`, `?`), "" to leave it out."""
    usage: str = ""
    """The selected task's sandbox meters (`cpu 12% · mem 140M/2.0G · disk 35M`, tui/usage_meter.py)."""
    total: str = ""
    """Tokens and cost of all tasks (`48.1k tok · $1.20`, tui/cost.py), "" to leave it out."""


def status_content(info: StatusInfo) -> Content:
    """`model gpt-5 │ mode auto │ context 87% │ 12.3k tokens · $0.42 │ all 48k tok · $1.20 │ 2 running`"""
    context = "—" if info.context_left is None else f"{info.context_left}% left"
    context_style = "$foreground-muted"
    if info.context_left is not None and info.context_left < 15:
        context_style = "$error"
    elif info.context_left is not None and info.context_left < 40:
        context_style = "$warning"
    sep = (" │ ", "$foreground-muted")
    parts: list[tuple[str, str] | str] = [
        ("model ", "$foreground-muted"),
        (info.model, "bold"),
        sep,
        ("mode ", "$foreground-muted"),
        (info.mode, "bold $secondary"),
        sep,
        ("context ", "$foreground-muted"),
        (context, context_style),
        sep,
        (f"{format_tokens(info.tokens)} tokens", ""),
    ]
    if info.task_cost:
        parts += [" · ", (info.task_cost, "$secondary")]
    if info.usage:
        parts += [sep, (info.usage, "$foreground-muted")]
    if info.total:
        parts += [sep, ("all ", "$foreground-muted"), (info.total, "")]
    parts += [
        sep,
        (f"{info.running} running", "$primary" if info.running else "$foreground-muted"),
        " · ",
        (f"{info.queued} queued", "$warning" if info.queued else "$foreground-muted"),
    ]
    if info.task:
        parts += [sep, (info.task, "$foreground-muted")]
    return Content.assemble(*parts)


class StatusBar(Static):
    """One line at the bottom; redrawn only when what it shows changed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._info: StatusInfo | None = None

    def show(self, info: StatusInfo) -> None:
        """Show this status (no work when unchanged)."""
        if info != self._info:
            self._info = info
            self.update(status_content(info))
