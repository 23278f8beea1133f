"""The items a model call and a tool call emit: streamed text with batched deltas, and call items
that an interrupt or a crash must close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from codex_tui.protocol import ITEM_COMMAND, ITEM_COMPLETED, ITEM_STARTED, ITEM_UPDATED, MESSAGE_DELTA
from codex_tui.tools.base import EmitFn

FLUSH_INTERVAL_S: Final = 0.03
"""Deltas of one streamed item are emitted at most this often (and at the item's end)."""


class StreamedItem:
    """One agent_message or reasoning item being streamed; deltas wait in `pending` until flushed."""

    __slots__ = ("flushed_at", "id", "kind", "parts", "pending", "timer")

    def __init__(self, item_id: str, kind: str) -> None:
        self.id = item_id
        self.kind = kind
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.flushed_at = float("-inf")
        self.timer: asyncio.TimerHandle | None = None

    @property
    def text(self) -> str:
        """Everything streamed so far."""
        return "".join(self.parts)


class ItemStream:
    """The streamed items of one model call attempt, with deltas batched to one event per ~30 ms."""

    def __init__(self, emit: EmitFn, new_id: Callable[[], str]) -> None:
        self._emit = emit
        self._new_id = new_id
        self._loop = asyncio.get_running_loop()
        self._items: dict[str, StreamedItem] = {}
        self._last: StreamedItem | None = None

    def delta(self, kind: str, text: str) -> None:
        """Add a piece of text to the item of this kind, starting it on the first piece."""
        if not text:
            return
        item = self._items.get(kind) or self._start(kind)
        if self._last is not None and self._last is not item:
            self._flush(self._last)
        self._last = item
        item.parts.append(text)
        item.pending.append(text)
        wait = FLUSH_INTERVAL_S - (self._loop.time() - item.flushed_at)
        if wait <= 0:
            self._flush(item)
        elif item.timer is None:
            item.timer = self._loop.call_later(wait, self._flush, item)

    def text(self, kind: str) -> str:
        """The text streamed so far for one kind of item."""
        item = self._items.get(kind)
        return item.text if item else ""

    def close(self, final: dict[str, str] | None = None, *, discarded: bool = False) -> None:
        """Complete every item: with the final texts when given, marked discarded when dropped."""
        final = final or {}
        for kind, text in final.items():
            if text and kind not in self._items:
                self._start(kind).parts.append(text)
        for item in self._items.values():
            self._flush(item)
            done: dict[str, Any] = {
                "id": item.id,
                "type": item.kind,
                "text": final.get(item.kind) or item.text,
            }
            if discarded:
                done["discarded"] = True
            self._emit(ITEM_COMPLETED, {"item": done})
        self._items.clear()
        self._last = None

    def _start(self, kind: str) -> StreamedItem:
        item = StreamedItem(self._new_id(), kind)
        self._items[kind] = item
        self._emit(ITEM_STARTED, {"item": {"id": item.id, "type": kind, "text": ""}})
        return item

    def _flush(self, item: StreamedItem) -> None:
        if item.timer is not None:
            item.timer.cancel()
            item.timer = None
        if item.pending:
            delta = "".join(item.pending)
            item.pending.clear()
            self._emit(MESSAGE_DELTA, {"item_id": item.id, "kind": item.kind, "delta": delta})
        item.flushed_at = self._loop.time()


class CallItems:
    """The items one tool call opened, so an interrupt or a crash can close them as failed."""

    def __init__(self, emit: EmitFn) -> None:
        self._emit = emit
        self.open: dict[str, dict[str, Any]] = {}

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Forward a tool's event, remembering which of its items are still open."""
        item = data.get("item")
        if isinstance(item, dict) and "id" in item:
            if event_type in (ITEM_STARTED, ITEM_UPDATED):
                self.open[item["id"]] = item
            elif event_type == ITEM_COMPLETED:
                self.open.pop(item["id"], None)
        self._emit(event_type, data)

    def fail_open_items(self, message: str) -> None:
        """Complete every item the call left open, with status failed."""
        for item in list(self.open.values()):
            done = {**item, "status": "failed"}
            if item.get("type") == ITEM_COMMAND:
                done.setdefault("exit_code", None)
                text = str(done.get("aggregated_output") or "")
                done["aggregated_output"] = f"{text}\n[{message}]" if text else f"[{message}]"
            else:
                done.setdefault("error", message)
            self._emit(ITEM_COMPLETED, {"item": done})
        self.open.clear()
