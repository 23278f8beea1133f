"""The Responses API client (`client.responses.create(stream=True)`), over `openai.AsyncOpenAI`.

The neutral history (models/base.py) is converted item by item, so a longer history always yields
a request whose `input` starts with the previous one: prompt caching stays effective.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from codex_tui.models.base import (
    Completed,
    HistoryItem,
    ModelError,
    ModelEvent,
    ModelRequest,
    OutputSchema,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    WebSearchCall,
)
from codex_tui.models.retry import (
    StreamFailure,
    iterate_with_idle_timeout,
    retry_after_from_message,
    with_idle_timeout,
)
from codex_tui.models.sdk import WireClient, hang_up, raw_body

WEB_SEARCH_TOOL: dict[str, Any] = {"type": "web_search"}
"""The hosted search tool; its calls come back as `web_search_call` output items."""
WEB_SEARCH_SOURCES = "web_search_call.action.sources"
"""`include` entry asking for the URLs a search used."""
RETRYABLE_CODES = frozenset(
    {"server_error", "rate_limit_exceeded", "internal_error", "overloaded", "slow_down"}
)


class ResponsesClient(WireClient):
    """A ModelClient for the Responses API; retries per its RetryPolicy."""

    def build_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of the SDK call for one request."""
        return request_kwargs(request)

    async def _attempt(self, kwargs: dict[str, Any]) -> AsyncGenerator[ModelEvent, None]:
        timeout = self.policy.idle_timeout_s
        request = self._client.responses.create(**raw_body(kwargs))
        stream = await with_idle_timeout(request, timeout, "response")
        state = _StreamState()
        try:
            async with contextlib.aclosing(iterate_with_idle_timeout(stream, timeout)) as events:
                async for event in events:
                    for out in state.handle(event):
                        yield out
                    if state.completed is not None:
                        yield state.completed
                        return
        finally:
            await hang_up(stream)


def request_kwargs(request: ModelRequest) -> dict[str, Any]:
    """The keyword arguments of `responses.create` for one request."""
    kwargs: dict[str, Any] = {
        "model": request.model,
        "instructions": request.instructions,
        "input": history_to_input(request.history),
        "stream": True,
        "store": False,
    }
    tools = [tool_param(spec) for spec in request.tools]
    if request.web_search:
        tools.append(WEB_SEARCH_TOOL)
    if tools:
        kwargs["tools"] = tools
        kwargs["tool_choice"] = "auto"
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    include: list[str] = []
    if request.reasoning_effort:
        kwargs["reasoning"] = {"effort": request.reasoning_effort, "summary": "auto"}
        include.append("reasoning.encrypted_content")
    if request.web_search:
        include.append(WEB_SEARCH_SOURCES)
    if include:
        kwargs["include"] = include
    if request.conversation_id:
        kwargs["prompt_cache_key"] = request.conversation_id
    if request.output_schema is not None:
        kwargs.setdefault("text", {})["format"] = text_format(request.output_schema)
    return kwargs


def text_format(output: OutputSchema) -> dict[str, Any]:
    """The `text.format` asking for structured output (Responses `json_schema` format)."""
    return {"type": "json_schema", "name": output.name, "schema": output.schema, "strict": output.strict}


def tool_param(spec: ToolSpec) -> dict[str, Any]:
    """A function tool, or a custom tool with a Lark grammar when the spec is freeform."""
    if spec.freeform_grammar is not None:
        return {
            "type": "custom",
            "name": spec.name,
            "description": spec.description,
            "format": {"type": "grammar", "syntax": "lark", "definition": spec.freeform_grammar},
        }
    parameters = spec.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description,
        "parameters": parameters,
        "strict": False,
    }


def history_to_input(history: list[HistoryItem]) -> list[dict[str, Any]]:
    """Convert neutral history items to Responses input items (one or none per item)."""
    out: list[dict[str, Any]] = []
    for item in history:
        converted = _input_item(item)
        if converted is not None:
            out.append(converted)
    return out


def _input_item(item: HistoryItem) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "message":
        return _message(item)
    if kind == "reasoning":
        if not item.get("encrypted_content"):
            return None  # without the encrypted blob a stateless request cannot use it
        summary = [{"type": "summary_text", "text": item["text"]}] if item.get("text") else []
        return {"type": "reasoning", "summary": summary, "encrypted_content": item["encrypted_content"]}
    if kind == "tool_call":
        if item.get("kind") == "custom":
            return {
                "type": "custom_tool_call",
                "call_id": item["call_id"],
                "name": item["name"],
                "input": item.get("arguments", ""),
            }
        return {
            "type": "function_call",
            "call_id": item["call_id"],
            "name": item["name"],
            "arguments": item.get("arguments", ""),
        }
    if kind == "web_search":
        return {
            "type": "web_search_call",
            "id": item.get("id", ""),
            "status": item.get("status", "completed"),
            "action": item.get("action") or {"type": "search"},
        }
    if kind == "tool_result":
        wire = "custom_tool_call_output" if item.get("kind") == "custom" else "function_call_output"
        return {"type": wire, "call_id": item["call_id"], "output": item.get("output", "")}
    return None


def _message(item: HistoryItem) -> dict[str, Any]:
    role = item.get("role", "user")
    content = item.get("content", [])
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image":
            parts.append({"type": "input_image", "image_url": part.get("image_url", ""), "detail": "auto"})
        elif role == "assistant":
            parts.append({"type": "output_text", "text": part.get("text", "")})
        else:
            parts.append({"type": "input_text", "text": part.get("text", "")})
    return {"type": "message", "role": role, "content": parts}


def output_item_to_history(item: Any) -> HistoryItem | None:
    """A finished output item (SDK model) as a neutral history item; None for other kinds."""
    kind = getattr(item, "type", None)
    if kind == "message":
        text = "".join(getattr(p, "text", None) or getattr(p, "refusal", None) or "" for p in item.content)
        if not text:
            return None
        return {"type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]}
    if kind == "reasoning":
        text = "\n\n".join(s.text for s in item.summary or [])
        return {"type": "reasoning", "text": text, "encrypted_content": item.encrypted_content, "id": item.id}
    if kind == "function_call":
        return {
            "type": "tool_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "kind": "function",
        }
    if kind == "custom_tool_call":
        return {
            "type": "tool_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.input,
            "kind": "custom",
        }
    if kind == "web_search_call":
        action = item.action.model_dump(mode="json", exclude_none=True) if item.action is not None else {}
        return {"type": "web_search", "id": item.id, "status": item.status, "action": action}
    return None


def web_search_event(item: HistoryItem) -> WebSearchCall:
    """The model event for a `web_search` history item (query and source URLs from its action)."""
    action = item.get("action") or {}
    query = action.get("query") or " | ".join(action.get("queries") or []) or action.get("url") or ""
    sources = [str(s.get("url", "")) for s in action.get("sources") or [] if isinstance(s, dict)]
    return WebSearchCall(str(item.get("id", "")), str(item.get("status", "")), str(query), sources)


class _StreamState:
    """Turns Responses stream events into model events; collects the finished items."""

    def __init__(self) -> None:
        self.items: list[HistoryItem] = []
        self.completed: Completed | None = None

    def handle(self, event: Any) -> list[ModelEvent]:
        """Model events for one stream event; sets `completed` at the end of the response."""
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            return [TextDelta(event.delta)] if event.delta else []
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ReasoningDelta(event.delta)] if event.delta else []
        if kind == "response.output_item.added" and getattr(event.item, "type", "") == "web_search_call":
            return [WebSearchCall(event.item.id, "in_progress")]
        if kind == "response.output_item.done":
            return self._item_done(event.item)
        if kind == "response.completed":
            return self._complete(event.response)
        if kind == "response.failed":
            error = event.response.error
            raise _failure(getattr(error, "code", None), getattr(error, "message", None) or "response failed")
        if kind == "response.incomplete":
            details = event.response.incomplete_details
            reason = getattr(details, "reason", None) or "unknown reason"
            raise ModelError(f"the model stopped before finishing its answer ({reason})")
        if kind == "error":
            raise _failure(event.code, event.message or "the model server reported an error")
        return []

    def _item_done(self, item: Any) -> list[ModelEvent]:
        converted = output_item_to_history(item)
        if converted is None:
            return []
        self.items.append(converted)
        if converted["type"] == "web_search":
            return [web_search_event(converted)]
        if converted["type"] != "tool_call":
            return []
        call = ToolCall(converted["call_id"], converted["name"], converted["arguments"], converted["kind"])
        return [call]

    def _complete(self, response: Any) -> list[ModelEvent]:
        late: list[ModelEvent] = []
        if not self.items:  # some servers only list the output in response.completed
            for item in response.output or []:
                late += self._item_done(item)
        usage = Usage()
        if response.usage is not None:
            details = response.usage.input_tokens_details
            usage = Usage(
                input_tokens=response.usage.input_tokens or 0,
                cached_input_tokens=(getattr(details, "cached_tokens", 0) or 0) if details else 0,
                output_tokens=response.usage.output_tokens or 0,
            )
        self.completed = Completed(items=self.items, usage=usage)
        return late


def _failure(code: str | None, message: str) -> StreamFailure:
    retryable = code is None or code in RETRYABLE_CODES
    text = f"{message} ({code})" if code and code not in message else message
    return StreamFailure(text, retryable=retryable, retry_after_s=retry_after_from_message(message))
