"""The model-facing contract: a neutral conversation history, tool specs and streamed model events.

The agent keeps its history as a list of plain JSON items (below); each wire client
(`responses.py`, `chat.py`) converts them to its API's shape on every request, so the same history
can be resent as an exact prefix and written to the rollout unchanged.

History items (dicts):
  {"type": "message", "role": "user"|"assistant"|"system",
   "content": [{"type": "text", "text": str} | {"type": "image", "image_url": "data:…", "name": str}]}
  {"type": "reasoning", "text": str, "encrypted_content": str|None, "id": str|None}
  {"type": "tool_call", "call_id": str, "name": str, "arguments": str, "kind": "function"|"custom"}
  {"type": "tool_result", "call_id": str, "output": str, "kind": "function"|"custom"}
  {"type": "web_search", "id": str, "status": str, "action": {...}}  (Responses hosted search; sent
   back as a `web_search_call` item, skipped by the Chat client)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

HistoryItem = dict[str, Any]


@dataclass(slots=True)
class ToolSpec:
    """A tool offered to the model: a JSON-schema function, or a freeform (custom) tool."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    freeform_grammar: str | None = None
    """Lark grammar for a Responses API custom tool; None for a plain function tool."""


@dataclass(slots=True)
class OutputSchema:
    """A JSON schema the model's final message must follow (structured output)."""

    name: str
    """Names the format for the API: letters, digits, `_` and `-`, at most 64 characters."""
    schema: dict[str, Any]
    strict: bool = True
    """Ask the API to enforce the schema exactly (it then accepts only its strict subset)."""


@dataclass(slots=True)
class ModelRequest:
    """Everything one model call needs; the history is resent in full each turn."""

    model: str
    instructions: str
    history: list[HistoryItem]
    tools: list[ToolSpec] = field(default_factory=list)
    reasoning_effort: str | None = None
    parallel_tool_calls: bool = True
    conversation_id: str | None = None
    """Stable per task; sent as prompt_cache_key where the API accepts it."""
    output_schema: OutputSchema | None = None
    """The final message must be JSON following it; sent on every call of the turn (tools stay
    offered). Requested, not guaranteed: the caller still validates what comes back."""
    web_search: bool = False
    """Offer the hosted `web_search` tool (Responses API only; the Chat client ignores it)."""


@dataclass(slots=True)
class TextDelta:
    """A piece of the assistant's visible answer."""

    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of a reasoning summary (shown dimmed)."""

    text: str


@dataclass(slots=True)
class ToolCall:
    """A complete tool call; `arguments` is the raw string the model produced (may be bad JSON)."""

    call_id: str
    name: str
    arguments: str
    kind: Literal["function", "custom"] = "function"


@dataclass(slots=True)
class WebSearchCall:
    """The hosted web search started (status in_progress) or finished (completed, failed…)."""

    call_id: str
    status: str
    query: str = ""
    sources: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Usage:
    """Token usage of one model call."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        """The usage of both calls together."""
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


@dataclass(slots=True)
class Retrying:
    """The client is about to retry after a failure (shown to the user, not the model).

    The retry runs the whole call again from the start: everything this call already streamed
    (text, reasoning, tool calls) is void when `discard_partial` is true, and will be streamed anew.
    """

    attempt: int
    delay_s: float
    reason: str
    discard_partial: bool = True
    """True when deltas or tool calls of the failed attempt were already yielded."""


@dataclass(slots=True)
class Completed:
    """The call finished: the final items to append to history, and usage."""

    items: list[HistoryItem]
    usage: Usage


ModelEvent = TextDelta | ReasoningDelta | ToolCall | WebSearchCall | Retrying | Completed


class ModelError(Exception):
    """The model call failed for good (retries exhausted or a non-retryable error)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelClient(Protocol):
    """One wire API. `stream` yields deltas and tool calls, and ends with exactly one Completed."""

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model call; raises ModelError when it cannot complete."""
        ...
