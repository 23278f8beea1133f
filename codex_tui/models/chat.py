"""The Chat Completions client for OpenAI-compatible servers (Ollama, vLLM, LM Studio, llama.cpp…).

Freeform (custom) tools are offered as plain function tools taking `{"input": string}`; their calls
come back as `ToolCall(kind="function")` with that JSON as arguments. Reasoning arrives in the
non-standard `reasoning_content` or `reasoning` delta fields and is streamed as ReasoningDelta; it
is kept in the history for display but not sent back (compatible servers reject or ignore it).
An answer that ends with `finish_reason` `length` or `content_filter` raises ModelError (like the
Responses client's `response.incomplete`), so a truncated tool call is never run.
Chat Completions has no hosted tools: `ModelRequest.web_search` is ignored here (the agent notes
once per task that the provider has no hosted search; an MCP search server is the way).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
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
)
from codex_tui.models.retry import (
    StreamFailure,
    iterate_with_idle_timeout,
    with_idle_timeout,
)
from codex_tui.models.sdk import WireClient, hang_up, raw_body

REASONING_FIELDS = ("reasoning_content", "reasoning")
FREEFORM_INPUT_DESCRIPTION = "The complete raw input for this tool (for apply_patch: the whole patch text)."
STOPPED_ANSWERS = {
    "length": (
        "the model's answer was cut off at its output limit (finish_reason=length); it was discarded "
        "and none of its tool calls were run — ask for a smaller step or raise the server's output limit"
    ),
    "content_filter": (
        "the server's content filter stopped the model's answer (finish_reason=content_filter); "
        "it was discarded and none of its tool calls were run"
    ),
}
"""Finish reasons that end the call with a ModelError: the answer (and any tool call) may be partial."""


class ChatClient(WireClient):
    """A ModelClient for the Chat Completions API; retries per its RetryPolicy."""

    def build_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of the SDK call for one request."""
        return request_kwargs(request)

    async def _attempt(self, kwargs: dict[str, Any]) -> AsyncGenerator[ModelEvent, None]:
        timeout = self.policy.idle_timeout_s
        request = self._client.chat.completions.create(**raw_body(kwargs))
        stream = await with_idle_timeout(request, timeout, "response")
        state = _StreamState()
        try:
            async with contextlib.aclosing(iterate_with_idle_timeout(stream, timeout)) as chunks:
                async for chunk in chunks:
                    for out in state.handle(chunk):
                        yield out
        finally:
            await hang_up(stream)
        for event in state.finish():
            yield event


def request_kwargs(request: ModelRequest) -> dict[str, Any]:
    """The keyword arguments of `chat.completions.create` for one request."""
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": history_to_messages(request.instructions, request.history),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        kwargs["tools"] = [tool_param(spec) for spec in request.tools]
        kwargs["tool_choice"] = "auto"
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.reasoning_effort:
        kwargs["reasoning_effort"] = request.reasoning_effort
    if request.output_schema is not None:
        kwargs["response_format"] = response_format(request.output_schema)
    return kwargs


def response_format(output: OutputSchema) -> dict[str, Any]:
    """The `response_format` asking for structured output (Chat `json_schema` format)."""
    schema = {"name": output.name, "schema": output.schema, "strict": output.strict}
    return {"type": "json_schema", "json_schema": schema}


def tool_param(spec: ToolSpec) -> dict[str, Any]:
    """A function tool; a freeform spec becomes a function taking one string, `input`."""
    if spec.freeform_grammar is not None:
        parameters: dict[str, Any] = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": FREEFORM_INPUT_DESCRIPTION}},
            "required": ["input"],
            "additionalProperties": False,
        }
    else:
        parameters = spec.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": parameters},
    }


def history_to_messages(instructions: str, history: list[HistoryItem]) -> list[dict[str, Any]]:
    """The system message, then the history; an answer's text and tool calls form one message."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    pending: dict[str, Any] | None = None
    for item in history:
        kind = item.get("type")
        if kind in ("reasoning", "web_search"):
            continue
        if kind == "tool_call" or (kind == "message" and item.get("role") == "assistant"):
            if pending is None or (kind == "message" and (pending["content"] or pending.get("tool_calls"))):
                pending = {"role": "assistant", "content": None}
                messages.append(pending)
            _add_to_assistant(pending, item)
            continue
        pending = None
        converted = _other_message(item)
        if converted is not None:
            messages.append(converted)
    return messages


def _add_to_assistant(message: dict[str, Any], item: HistoryItem) -> None:
    if item.get("type") == "message":
        message["content"] = _text_of(item.get("content", []))
        return
    arguments = item.get("arguments", "")
    if item.get("kind") == "custom":
        arguments = json.dumps({"input": arguments}, ensure_ascii=False)
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": arguments},
    }
    message.setdefault("tool_calls", []).append(call)


def _other_message(item: HistoryItem) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "tool_result":
        return {"role": "tool", "tool_call_id": item["call_id"], "content": item.get("output", "")}
    if kind != "message":
        return None
    role = item.get("role", "user")
    content = item.get("content", [])
    if isinstance(content, str) or not any(p.get("type") == "image" for p in content):
        return {"role": role, "content": _text_of(content)}
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image":
            parts.append({"type": "image_url", "image_url": {"url": part.get("image_url", "")}})
        else:
            parts.append({"type": "text", "text": part.get("text", "")})
    return {"role": role, "content": parts}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") != "image")


@dataclass(slots=True)
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class _StreamState:
    """Accumulates chat chunks: text, reasoning, tool calls by index, usage, finish reason."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None

    def handle(self, chunk: Any) -> list[ModelEvent]:
        """Deltas to yield now for one chunk."""
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        out: list[ModelEvent] = []
        for choice in chunk.choices or []:
            if choice.index not in (0, None):
                continue
            delta = choice.delta
            if delta is not None:
                out += self._delta(delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return out

    def _delta(self, delta: Any) -> list[ModelEvent]:
        out: list[ModelEvent] = []
        extra = delta.model_extra or {}
        for field_name in REASONING_FIELDS:
            piece = extra.get(field_name)
            if isinstance(piece, str) and piece:
                self.reasoning.append(piece)
                out.append(ReasoningDelta(piece))
                break
        if delta.content:
            self.text.append(delta.content)
            out.append(TextDelta(delta.content))
        for call in delta.tool_calls or []:
            self._call_delta(call)
        return out

    def _call_delta(self, call: Any) -> None:
        index = call.index if isinstance(call.index, int) else self._guess_index(call.id)
        slot = self.calls.setdefault(index, _PartialCall())
        if call.id:
            slot.call_id = call.id
        function = call.function
        if function is not None:
            if function.name and not slot.name:
                slot.name = function.name
            slot.arguments += function.arguments or ""

    def _guess_index(self, call_id: str | None) -> int:
        """Servers that omit `index`: a new id starts a new call, otherwise continue the last."""
        known = {c.call_id for c in self.calls.values()}
        if not self.calls or (call_id and call_id not in known):
            return len(self.calls)
        return max(self.calls)

    def finish(self) -> list[ModelEvent]:
        """The tool calls and the Completed event, once the stream has ended."""
        if self.finish_reason is None:
            raise StreamFailure("the stream ended before the answer was complete (no finish_reason)")
        stopped = STOPPED_ANSWERS.get(self.finish_reason)
        if stopped is not None:  # a cut-off tool call's JSON may still parse: never hand one on
            raise ModelError(stopped)
        items: list[HistoryItem] = []
        if self.reasoning:
            items.append(
                {"type": "reasoning", "text": "".join(self.reasoning), "encrypted_content": None, "id": None}
            )
        if self.text:
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": "".join(self.text)}],
                }
            )
        out: list[ModelEvent] = []
        for index in sorted(self.calls):
            partial = self.calls[index]
            call_id = partial.call_id or f"call_{uuid.uuid4().hex[:24]}"
            out.append(ToolCall(call_id, partial.name, partial.arguments, "function"))
            items.append(
                {
                    "type": "tool_call",
                    "call_id": call_id,
                    "name": partial.name,
                    "arguments": partial.arguments,
                    "kind": "function",
                }
            )
        out.append(Completed(items=items, usage=self.usage))
        return out


def _usage(raw: Any) -> Usage:
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        input_tokens=raw.prompt_tokens or 0,
        cached_input_tokens=cached or 0,
        output_tokens=raw.completion_tokens or 0,
    )
