"""Which of a response's tool calls may run together: consecutive read-only ones."""

from __future__ import annotations

from typing import Final

from codex_tui.models.base import HistoryItem

READ_ONLY_TOOLS: Final = frozenset({"update_plan", "view_image"})
"""Tools that touch neither files nor processes; consecutive calls to them run concurrently."""


def call_batches(calls: list[HistoryItem]) -> list[list[int]]:
    """Indexes of calls grouped so that consecutive read-only calls share a batch."""
    batches: list[list[int]] = []
    for index, call in enumerate(calls):
        read_only = call.get("name") in READ_ONLY_TOOLS
        if read_only and batches and calls[batches[-1][0]].get("name") in READ_ONLY_TOOLS:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches
