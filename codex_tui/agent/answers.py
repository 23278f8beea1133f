"""A model response as the turn loop uses it: the stream's events, then the answer and its tool calls."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import suppress
from dataclasses import dataclass

from codex_tui.agent.context import message_text
from codex_tui.models.base import (
    Completed,
    HistoryItem,
    ModelClient,
    ModelEvent,
    ModelRequest,
    Retrying,
    ToolCall,
    Usage,
)


@dataclass(slots=True)
class Answer:
    """One completed model response."""

    items: list[HistoryItem]
    text: str
    calls: list[HistoryItem]
    usage: Usage


async def model_events(client: ModelClient, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
    """The client's events; the stream is closed promptly on every exit path."""
    stream = client.stream(request)
    try:
        async for event in stream:
            yield event
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with suppress(Exception):
                await closer()


def collect_answer(completed: Completed, loose_calls: list[ToolCall]) -> Answer:
    """The completed response as an Answer; tool calls streamed outside its items are added to them."""
    items = list(completed.items)
    calls = [item for item in items if item.get("type") == "tool_call"]
    if not calls and loose_calls:
        calls = [
            {
                "type": "tool_call",
                "call_id": c.call_id,
                "name": c.name,
                "arguments": c.arguments,
                "kind": c.kind,
            }
            for c in loose_calls
        ]
        items.extend(calls)
    return Answer(items, assistant_text(items), calls, completed.usage)


def assistant_text(items: list[HistoryItem]) -> str:
    """The text of the assistant messages among `items`."""
    return "".join(
        message_text(item)
        for item in items
        if item.get("type") == "message" and item.get("role") == "assistant"
    )


def retry_note(event: Retrying) -> str:
    """The warning shown while the model request is retried."""
    return f"model request failed ({event.reason}); retrying in {event.delay_s:.1f} s"
