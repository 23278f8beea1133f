"""What the Chat Completions client sends and how it reads compatible servers' answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codex_tui.models.base import (
    Completed,
    ModelError,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from codex_tui.models.chat import history_to_messages
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer

PATCH = ToolSpec("apply_patch", "Edit files with a patch", freeform_grammar="start: /(.|\\n)+/")
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"command": {"type": "array"}}})
PATCH_TEXT = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"


def request(history: list[dict[str, Any]], **kw: Any) -> ModelRequest:
    return ModelRequest(
        model="scripted:s", instructions="Be brief.", history=history, tools=[SHELL, PATCH], **kw
    )


def prompt(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "text", "text": text}]}


async def test_freeform_tool_is_offered_as_a_function_taking_input() -> None:
    turn = {"tool_calls": [{"name": "apply_patch", "input": PATCH_TEXT}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url, "chat"), request([prompt("add hello")]))
        body = srv.model_requests()[0].body
    offered = body["tools"][1]
    assert offered["type"] == "function" and offered["function"]["name"] == "apply_patch"
    assert offered["function"]["parameters"]["required"] == ["input"]
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.kind == "function"
    assert json.loads(call.arguments) == {"input": PATCH_TEXT}


async def test_request_carries_system_message_usage_option_and_effort() -> None:
    async with ScriptedServer([{"name": "s", "turns": [{"text": "ok"}]}]) as srv:
        await collect_events(
            scripted_client(srv.base_url, "chat"), request([prompt("go")], reasoning_effort="low")
        )
        body = srv.model_requests()[0].body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1] == {"role": "user", "content": "go"}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "low"
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_delta_fields_of_compatible_servers_are_read(field: str) -> None:
    turn = {"reasoning": "Let me think.", "text": "ok", "reasoning_field": field}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url, "chat"), request([prompt("go")]))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Let me think."
    assert isinstance(events[-1], Completed) and events[-1].items[0]["type"] == "reasoning"


def test_answer_text_and_tool_calls_become_one_assistant_message_followed_by_tool_messages() -> None:
    history = [
        prompt("hi"),
        {"type": "reasoning", "text": "thinking", "encrypted_content": None, "id": None},
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Looking."}]},
        {
            "type": "tool_call",
            "call_id": "a",
            "name": "shell",
            "arguments": '{"command":["ls"]}',
            "kind": "function",
        },
        {"type": "tool_call", "call_id": "b", "name": "apply_patch", "arguments": "PATCH", "kind": "custom"},
        {"type": "tool_result", "call_id": "a", "output": "x.py", "kind": "function"},
        {"type": "tool_result", "call_id": "b", "output": "done", "kind": "custom"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "image_url": "data:y", "name": "s"},
            ],
        },
    ]
    assert history_to_messages("Sys.", history) == [
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "shell", "arguments": '{"command":["ls"]}'},
                },
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input": "PATCH"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "x.py"},
        {"role": "tool", "tool_call_id": "b", "content": "done"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:y"}},
            ],
        },
    ]


async def test_malformed_arguments_reach_the_agent_unchanged() -> None:
    turn = {"tool_calls": [{"name": "shell", "arguments": "{not json"}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url, "chat"), request([prompt("go")]))
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.arguments == "{not json"


@pytest.mark.parametrize(
    "arguments",
    ['{"command": ["bash", "-c", "echo hi > out.txt"', {"command": ["bash", "-c", "echo hi > out.txt"]}],
    ids=["truncated-json", "json-that-parses"],
)
async def test_answer_cut_off_at_the_output_limit_is_an_error_and_yields_no_tool_call(arguments: Any) -> None:
    turn = {
        "text": "Writing it.",
        "tool_calls": [{"name": "shell", "arguments": arguments}],
        "finish_reason": "length",
    }
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        client = scripted_client(srv.base_url, "chat")
        events: list[Any] = []
        with pytest.raises(ModelError) as caught:
            async for event in client.stream(request([prompt("go")])):
                events.append(event)
        sent = len(srv.model_requests())
    assert "cut off at its output limit (finish_reason=length)" in str(caught.value)
    assert not [e for e in events if isinstance(e, ToolCall | Completed)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Writing it."
    assert sent == 1  # not retried: the same request would be cut off again


async def test_answer_stopped_by_the_content_filter_is_a_clear_error() -> None:
    turn = {"text": "Sure, here", "finish_reason": "content_filter"}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        with pytest.raises(ModelError, match=r"content filter stopped the model's answer \(finish_reason="):
            await collect_events(scripted_client(srv.base_url, "chat"), request([prompt("go")]))


@pytest.mark.parametrize("finish_reason", [None, "stop"])
async def test_answer_that_stops_normally_is_completed(finish_reason: str | None) -> None:
    turn: dict[str, Any] = {"text": "All done."}
    if finish_reason:
        turn["finish_reason"] = finish_reason
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url, "chat"), request([prompt("go")]))
    assert isinstance(events[-1], Completed)
    assert events[-1].items == [
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "All done."}]}
    ]
