"""What the Responses client sends and how it reads Responses-specific answers."""

from __future__ import annotations

from typing import Any

from codex_tui.models.base import Completed, ModelRequest, ToolCall, ToolSpec
from codex_tui.models.responses import history_to_input
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer

PATCH = ToolSpec(
    "apply_patch", "Edit files with a patch", freeform_grammar='start: "*** Begin Patch" /(.|\\n)*/'
)
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"command": {"type": "array"}}})
PATCH_TEXT = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"


def request(history: list[dict[str, Any]], **kw: Any) -> ModelRequest:
    return ModelRequest(
        model="scripted:s", instructions="Be brief.", history=history, tools=[SHELL, PATCH], **kw
    )


def prompt(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "text", "text": text}]}


async def test_freeform_tool_is_offered_as_a_lark_custom_tool_and_called_with_raw_input() -> None:
    turn = {"tool_calls": [{"name": "apply_patch", "input": PATCH_TEXT}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url), request([prompt("add hello")]))
        body = srv.model_requests()[0].body
    assert body["tools"][1] == {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edit files with a patch",
        "format": {"type": "grammar", "syntax": "lark", "definition": PATCH.freeform_grammar},
    }
    assert body["tools"][0]["type"] == "function" and body["tools"][0]["name"] == "shell"
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert (call.kind, call.name, call.arguments) == ("custom", "apply_patch", PATCH_TEXT)


async def test_reasoning_effort_asks_for_summaries_and_encrypted_reasoning_without_storing() -> None:
    turn = {"reasoning": "Think about parsers.", "text": "ok"}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        req = request([prompt("go")], reasoning_effort="high", conversation_id="task-42")
        events = await collect_events(scripted_client(srv.base_url), req)
        body = srv.model_requests()[0].body
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["store"] is False and body["stream"] is True
    assert body["prompt_cache_key"] == "task-42"
    assert body["instructions"] == "Be brief."
    reasoning = events[-1].items[0] if isinstance(events[-1], Completed) else {}
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]


async def test_encrypted_reasoning_is_passed_back_on_the_next_turn() -> None:
    turns = [
        {"reasoning": "step one", "tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]},
        {"text": "done"},
    ]
    async with ScriptedServer([{"name": "s", "turns": turns}]) as srv:
        client = scripted_client(srv.base_url)
        history = [prompt("go")]
        first = await collect_events(client, request(history, reasoning_effort="low"))
        done = first[-1]
        assert isinstance(done, Completed)
        call = next(e for e in first if isinstance(e, ToolCall))
        history += [
            *done.items,
            {"type": "tool_result", "call_id": call.call_id, "output": "a b", "kind": "function"},
        ]
        await collect_events(client, request(history, reasoning_effort="low"))
        second_input = srv.model_requests()[1].body["input"]
    reasoning = second_input[1]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"] == done.items[0]["encrypted_content"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "step one"}]
    assert second_input[2]["type"] == "function_call" and second_input[2]["call_id"] == call.call_id
    assert second_input[3] == {"type": "function_call_output", "call_id": call.call_id, "output": "a b"}


def test_history_converts_to_responses_input_items() -> None:
    history: list[dict[str, Any]] = [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "image_url": "data:x", "name": "a"},
            ],
        },
        {"type": "reasoning", "text": "no blob", "encrypted_content": None, "id": "rs_1"},
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        {"type": "tool_call", "call_id": "c1", "name": "apply_patch", "arguments": "PATCH", "kind": "custom"},
        {"type": "tool_result", "call_id": "c1", "output": "applied", "kind": "custom"},
    ]
    assert history_to_input(history) == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": "data:x", "detail": "auto"},
            ],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "PATCH"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "applied"},
    ]


async def test_malformed_arguments_reach_the_agent_unchanged() -> None:
    turn = {"tool_calls": [{"name": "shell", "arguments": '{"command": ["ls"'}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url), request([prompt("go")]))
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.arguments == '{"command": ["ls"'
