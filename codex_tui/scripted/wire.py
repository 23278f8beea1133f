"""Wire shapes of the scripted server: Responses and Chat Completions bodies and stream events.

The shapes follow what the real API sends and what the `openai` SDK parses, so a client tested
against the scripted server behaves the same against the real one.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from codex_tui.scripted.scenario import ScriptedSearch, ScriptedToolCall


@dataclass(slots=True)
class Answer:
    """One scripted model response, ready to be rendered in either wire shape."""

    ident: str
    model: str
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    web_searches: list[ScriptedSearch] = field(default_factory=list)
    """Served as `web_search_call` items only when the Responses request offers `web_search`."""
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    """Overrides Chat's finish reason; `length` / `content_filter` make a Responses answer incomplete."""

    def incomplete_reason(self) -> str | None:
        """The Responses `incomplete_details.reason` of this answer, or None when it completes."""
        return INCOMPLETE_REASONS.get(self.finish_reason or "")

    def chat_finish_reason(self, has_calls: bool) -> str:
        """The Chat `finish_reason` of this answer."""
        return self.finish_reason or ("tool_calls" if has_calls else "stop")


INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat finish reasons that correspond to an incomplete Responses answer, with its reason."""


@dataclass(slots=True)
class RenderedCall:
    """A tool call resolved against what the request offered."""

    call_id: str
    name: str
    kind: str
    payload: str
    """The arguments string (function) or the freeform input (custom)."""


def chunks(text: str, size: int) -> list[str]:
    """Split text into pieces of `size` characters (at least one piece when text is non-empty)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def offered_tools(body: dict[str, Any]) -> dict[str, str]:
    """Tool name -> "function" | "custom" as offered by a Responses or Chat request."""
    offered: dict[str, str] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):
            offered[str(tool["function"].get("name"))] = "function"
        elif tool.get("type") in ("function", "custom") and "name" in tool:
            offered[str(tool["name"])] = str(tool["type"])
    return offered


def render_calls(answer: Answer, offered: dict[str, str], *, custom_allowed: bool) -> list[RenderedCall]:
    """Decide each call's kind: what the request offered, else what the scenario says."""
    out: list[RenderedCall] = []
    for i, call in enumerate(answer.tool_calls):
        kind = offered.get(call.name, call.kind)
        if not custom_allowed:
            kind = "function"
        payload = call.custom_input() if kind == "custom" else call.argument_text()
        call_id = call.call_id or f"call_{answer.ident}_{i}"
        out.append(RenderedCall(call_id, call.name, kind, payload))
    return out


def encrypted_reasoning(text: str) -> str:
    """A stand-in for the opaque encrypted reasoning blob (deterministic)."""
    return "scripted-enc:" + base64.b64encode(text.encode()).decode()


# --- Responses API ------------------------------------------------------------------------------


def responses_output(answer: Answer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The completed output items of a Responses answer."""
    items: list[dict[str, Any]] = []
    if answer.reasoning:
        items.append(_reasoning_item(answer, body, done=True))
    items += [_search_item(answer, i, body, done=True) for i in range(_searches_served(answer, body))]
    if answer.text:
        items.append(_message_item(answer, answer.text, "completed"))
    for call in render_calls(answer, offered_tools(body), custom_allowed=True):
        items.append(_call_item(call, done=True))
    return items


def responses_object(answer: Answer, body: dict[str, Any], *, status: str) -> dict[str, Any]:
    """A `response` object (in_progress, completed, incomplete or failed)."""
    done = status in ("completed", "incomplete")
    return {
        "id": f"resp_{answer.ident}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": answer.model,
        "output": responses_output(answer, body) if done else [],
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "instructions": body.get("instructions"),
        "store": bool(body.get("store", True)),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning"),
        "text": body.get("text") or {"format": {"type": "text"}},
        "error": None,
        "incomplete_details": {"reason": answer.incomplete_reason()} if status == "incomplete" else None,
        "usage": _responses_usage(answer) if done else None,
    }


def responses_error_events(
    answer: Answer, body: dict[str, Any], code: str, message: str
) -> list[dict[str, Any]]:
    """A stream that starts, then fails with `response.failed`."""
    failed = responses_object(answer, body, status="failed")
    failed["error"] = {"code": code, "message": message}
    return [
        {"type": "response.created", "response": responses_object(answer, body, status="in_progress")},
        {"type": "response.failed", "response": failed},
    ]


def responses_events(answer: Answer, body: dict[str, Any], chunk_chars: int) -> list[dict[str, Any]]:
    """Every SSE event of a streamed Responses answer, in order (sequence numbers added)."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": responses_object(answer, body, status="in_progress")},
        {"type": "response.in_progress", "response": responses_object(answer, body, status="in_progress")},
    ]
    index = 0
    if answer.reasoning:
        events += _reasoning_events(answer, body, index, chunk_chars)
        index += 1
    for number in range(_searches_served(answer, body)):
        events += _search_events(answer, number, body, index)
        index += 1
    if answer.text:
        events += _message_events(answer, index, chunk_chars)
        index += 1
    for call in render_calls(answer, offered_tools(body), custom_allowed=True):
        events += _call_events(call, index, chunk_chars)
        index += 1
    end = "incomplete" if answer.incomplete_reason() else "completed"
    events.append({"type": f"response.{end}", "response": responses_object(answer, body, status=end)})
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
    return events


def _responses_usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": len(answer.reasoning) // 4},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _searches_served(answer: Answer, body: dict[str, Any]) -> int:
    """How many of the answer's searches to serve: all when `web_search` is offered, else none."""
    offered = any(isinstance(t, dict) and t.get("type") == "web_search" for t in body.get("tools") or [])
    return len(answer.web_searches) if offered else 0


def _search_item(answer: Answer, number: int, body: dict[str, Any], *, done: bool) -> dict[str, Any]:
    search = answer.web_searches[number]
    action: dict[str, Any] = {"type": "search", "query": search.query}
    if done and "web_search_call.action.sources" in (body.get("include") or []):
        action["sources"] = [{"type": "url", "url": url} for url in search.sources]
    return {
        "id": f"ws_{answer.ident}_{number}",
        "type": "web_search_call",
        "status": search.status if done else "in_progress",
        "action": action,
    }


def _search_events(answer: Answer, number: int, body: dict[str, Any], index: int) -> list[dict[str, Any]]:
    item_id = f"ws_{answer.ident}_{number}"
    where = {"item_id": item_id, "output_index": index}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": _search_item(answer, number, body, done=False),
        },
        {"type": "response.web_search_call.in_progress", **where},
        {"type": "response.web_search_call.searching", **where},
        {"type": "response.web_search_call.completed", **where},
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": _search_item(answer, number, body, done=True),
        },
    ]


def _reasoning_item(answer: Answer, body: dict[str, Any], *, done: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"rs_{answer.ident}",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": answer.reasoning}] if done else [],
    }
    if "reasoning.encrypted_content" in (body.get("include") or []):
        item["encrypted_content"] = encrypted_reasoning(answer.reasoning) if done else None
    return item


def _message_item(answer: Answer, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []
    return {
        "id": f"msg_{answer.ident}",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def _call_item(call: RenderedCall, *, done: bool) -> dict[str, Any]:
    payload = call.payload if done else ""
    if call.kind == "custom":
        return {
            "id": f"ctc_{call.call_id}",
            "type": "custom_tool_call",
            "call_id": call.call_id,
            "name": call.name,
            "input": payload,
        }
    return {
        "id": f"fc_{call.call_id}",
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": payload,
        "status": "completed" if done else "in_progress",
    }


def _reasoning_events(answer: Answer, body: dict[str, Any], index: int, size: int) -> list[dict[str, Any]]:
    item_id = f"rs_{answer.ident}"
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": _reasoning_item(answer, body, done=False),
        },
        {
            "type": "response.reasoning_summary_part.added",
            **where,
            "part": {"type": "summary_text", "text": ""},
        },
    ]
    events += [
        {"type": "response.reasoning_summary_text.delta", **where, "delta": piece}
        for piece in chunks(answer.reasoning, size)
    ]
    return [
        *events,
        {"type": "response.reasoning_summary_text.done", **where, "text": answer.reasoning},
        {
            "type": "response.reasoning_summary_part.done",
            **where,
            "part": {"type": "summary_text", "text": answer.reasoning},
        },
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": _reasoning_item(answer, body, done=True),
        },
    ]


def _message_events(answer: Answer, index: int, size: int) -> list[dict[str, Any]]:
    item_id = f"msg_{answer.ident}"
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": _message_item(answer, "", "in_progress"),
        },
        {"type": "response.content_part.added", **where, "part": part},
    ]
    events += [
        {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        for piece in chunks(answer.text, size)
    ]
    return [
        *events,
        {"type": "response.output_text.done", **where, "text": answer.text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": answer.text}},
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": _message_item(answer, answer.text, "completed"),
        },
    ]


def _call_events(call: RenderedCall, index: int, size: int) -> list[dict[str, Any]]:
    item = _call_item(call, done=False)
    where = {"item_id": item["id"], "output_index": index}
    prefix = (
        "response.custom_tool_call_input" if call.kind == "custom" else "response.function_call_arguments"
    )
    done_field = "input" if call.kind == "custom" else "arguments"
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "output_index": index, "item": item}
    ]
    events += [{"type": f"{prefix}.delta", **where, "delta": piece} for piece in chunks(call.payload, size)]
    return [
        *events,
        {"type": f"{prefix}.done", **where, done_field: call.payload},
        {"type": "response.output_item.done", "output_index": index, "item": _call_item(call, done=True)},
    ]


# --- Chat Completions API -----------------------------------------------------------------------


def chat_body(answer: Answer, body: dict[str, Any], reasoning_field: str) -> dict[str, Any]:
    """A non-streamed `chat.completion` object."""
    calls = render_calls(answer, offered_tools(body), custom_allowed=False)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
    if answer.reasoning:
        message[reasoning_field] = answer.reasoning
    if calls:
        message["tool_calls"] = [_chat_call(c) for c in calls]
    return {
        "id": f"chatcmpl-{answer.ident}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.chat_finish_reason(bool(calls)),
                "logprobs": None,
            }
        ],
        "usage": _chat_usage(answer),
    }


def chat_chunks(answer: Answer, body: dict[str, Any], chunk_chars: int, reasoning_field: str) -> list[Any]:
    """Every SSE data payload of a streamed chat answer, ending with the "[DONE]" sentinel."""
    calls = render_calls(answer, offered_tools(body), custom_allowed=False)
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{reasoning_field: piece} for piece in chunks(answer.reasoning, chunk_chars)]
    deltas += [{"content": piece} for piece in chunks(answer.text, chunk_chars)]
    for index, call in enumerate(calls):
        first = {
            "index": index,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [first]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in chunks(call.payload, chunk_chars)
        ]
    out: list[Any] = [_chat_chunk(answer, delta, None) for delta in deltas]
    out.append(_chat_chunk(answer, {}, answer.chat_finish_reason(bool(calls))))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**_chat_chunk(answer, {}, None), "choices": [], "usage": _chat_usage(answer)})
    out.append("[DONE]")
    return out


def chat_error_chunk(message: str, code: str) -> dict[str, Any]:
    """An error payload inside a chat stream (what compatible servers send mid-stream)."""
    return {"error": {"message": message, "type": "server_error", "code": code, "param": None}}


def _chat_call(call: RenderedCall) -> dict[str, Any]:
    return {
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.payload},
    }


def _chat_chunk(answer: Answer, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{answer.ident}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _chat_usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens},
    }


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The JSON body of an HTTP error, in OpenAI's shape (`param` names the offending field)."""
    kind = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_error",
    }.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def json_bytes(payload: Any) -> bytes:
    """Compact JSON, UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
