"""`web_search` items from the hosted search of the Responses API, as one model call streams them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codex_tui.models.base import WebSearchCall
from codex_tui.protocol import ITEM_COMPLETED, ITEM_STARTED, ITEM_WEB_SEARCH
from codex_tui.tools.base import EmitFn

NO_HOSTED_SEARCH = (
    "web search is on, but this provider speaks the Chat Completions API, which has no hosted search: "
    "the model cannot search the web (configure an MCP search server in [mcp_servers] instead)"
)
"""The note a task gets once when search is asked for on the Chat wire API."""


class WebSearchItems:
    """Turns WebSearchCall events into item.started / item.completed with our own item ids."""

    def __init__(self, emit: EmitFn, new_id: Callable[[], str]) -> None:
        self._emit = emit
        self._new_id = new_id
        self._open: dict[str, dict[str, Any]] = {}

    def update(self, event: WebSearchCall) -> None:
        """Start the item on the first event of a call; complete it when the call is done."""
        item = self._open.get(event.call_id)
        if item is None:
            item = {
                "id": self._new_id(),
                "type": ITEM_WEB_SEARCH,
                "query": event.query,
                "status": "in_progress",
            }
            self._open[event.call_id] = item
            self._emit(ITEM_STARTED, {"item": dict(item)})
        if event.query:
            item["query"] = event.query
        if event.status in ("in_progress", "searching"):
            return
        item["status"] = "completed" if event.status == "completed" else "failed"
        if event.sources:
            item["sources"] = list(event.sources)
        self._emit(ITEM_COMPLETED, {"item": item})
        del self._open[event.call_id]

    def close(self, reason: str) -> None:
        """Complete every search still open as failed (the stream ended or was discarded)."""
        for item in self._open.values():
            self._emit(ITEM_COMPLETED, {"item": {**item, "status": "failed", "error": reason}})
        self._open.clear()
