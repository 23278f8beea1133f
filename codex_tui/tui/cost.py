"""Cost in the TUI: each task's estimate for its task-list card, and the total for the status bar."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from codex_tui.pricing import Cost, Price, estimate, format_usd
from codex_tui.tui.state import TaskModel, format_tokens


def task_cost(task: TaskModel, prices: Mapping[str, Price], default_model: str) -> Cost | None:
    """The estimated cost of a task's tokens, or None when its model has no price."""
    return estimate(task.model or default_model, task, prices)


def cost_label(task: TaskModel, prices: Mapping[str, Price], default_model: str) -> str:
    """`$0.42` for a card; "" before the first token, "?" for a model with no price."""
    if not task.tokens:
        return ""
    return format_usd(task_cost(task, prices, default_model))


@dataclass(frozen=True, slots=True)
class CostTotal:
    """Tokens and estimated USD of several tasks; `unpriced` tasks used tokens of a model with no price."""

    tokens: int = 0
    usd: float = 0.0
    unpriced: int = 0

    def label(self) -> str:
        """`48.1k tok · $0.42`, with `+?` when some tasks could not be priced (`?` when none could)."""
        if self.unpriced and not self.usd:
            usd = "?"
        else:
            usd = format_usd(self.usd) + ("+?" if self.unpriced else "")
        return f"{format_tokens(self.tokens)} tok · {usd}"


def cost_total(tasks: Iterable[TaskModel], prices: Mapping[str, Price], default_model: str) -> CostTotal:
    """The tokens and estimated cost of all these tasks together."""
    tokens, usd, unpriced = 0, 0.0, 0
    for task in tasks:
        if not task.tokens:
            continue
        tokens += task.tokens
        cost = task_cost(task, prices, default_model)
        if cost is None:
            unpriced += 1
        else:
            usd += cost.usd
    return CostTotal(tokens, usd, unpriced)
