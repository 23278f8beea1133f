"""Both wire clients against the real scripted server, through the real openai client."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from codex_tui.models.base import (
    Completed,
    HistoryItem,
    ModelError,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer

WIRES = ["responses", "chat"]
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"command": {"type": "array"}}})
PATCH = ToolSpec("apply_patch", "Edit files", freeform_grammar="start: /(.|\\n)+/")
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def user(text: str, *images: str) -> HistoryItem:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "image", "image_url": url, "name": "shot.png"} for url in images]
    return {"type": "message", "role": "user", "content": content}


def request(history: list[HistoryItem], model: str = "scripted:s", **kw: Any) -> ModelRequest:
    return ModelRequest(
        model=model, instructions="You are a coding agent.", history=history, tools=[SHELL, PATCH], **kw
    )


def texts(events: list[Any], kind: type[TextDelta | ReasoningDelta]) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


def completed(events: list[Any]) -> Completed:
    done: list[Completed] = [e for e in events if isinstance(e, Completed)]
    assert len(done) == 1 and events[-1] is done[0]
    result: Completed = done[0]
    return result


def tool_results(calls: list[ToolCall]) -> list[HistoryItem]:
    return [
        {"type": "tool_result", "call_id": c.call_id, "output": f"ran {c.name}", "kind": c.kind}
        for c in calls
    ]


@pytest.mark.parametrize("wire", WIRES)
async def test_text_streams_in_several_deltas_and_completes(wire: str) -> None:
    scenario = {"name": "s", "turns": [{"text": "The tests pass now.", "chunk_chars": 4}]}
    async with ScriptedServer([scenario]) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request([user("fix it")]))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 5
    assert texts(events, TextDelta) == "The tests pass now."
    assert completed(events).items == [
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "The tests pass now."}]}
    ]


@pytest.mark.parametrize("wire", WIRES)
async def test_reasoning_summary_streams_before_the_answer(wire: str) -> None:
    scenario = {"name": "s", "turns": [{"reasoning": "Look at the failing test first.", "text": "Done."}]}
    async with ScriptedServer([scenario]) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request([user("go")]))
    assert texts(events, ReasoningDelta) == "Look at the failing test first."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_text])
    items = completed(events).items
    assert items[0]["type"] == "reasoning" and items[0]["text"] == "Look at the failing test first."
    assert items[1]["content"][0]["text"] == "Done."


@pytest.mark.parametrize("wire", WIRES)
async def test_two_parallel_tool_calls_arrive_in_one_answer(wire: str) -> None:
    calls = [
        {"name": "shell", "arguments": {"command": ["pytest", "-q"]}},
        {"name": "shell", "arguments": {"command": ["git", "status"]}},
    ]
    scenario = {"name": "s", "turns": [{"text": "Checking.", "tool_calls": calls, "chunk_chars": 5}]}
    async with ScriptedServer([scenario]) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request([user("go")]))
    got = [e for e in events if isinstance(e, ToolCall)]
    assert [json.loads(c.arguments)["command"] for c in got] == [["pytest", "-q"], ["git", "status"]]
    assert len({c.call_id for c in got}) == 2
    items = completed(events).items
    assert [i["type"] for i in items] == ["message", "tool_call", "tool_call"]
    assert [i["call_id"] for i in items[1:]] == [c.call_id for c in got]


@pytest.mark.parametrize("wire", WIRES)
async def test_usage_reports_input_cached_and_output_tokens(wire: str) -> None:
    usage = {"input_tokens": 1200, "cached_input_tokens": 1000, "output_tokens": 80}
    scenario = {"name": "s", "turns": [{"text": "ok", "usage": usage}]}
    async with ScriptedServer([scenario]) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request([user("go")]))
    got = completed(events).usage
    assert (got.input_tokens, got.cached_input_tokens, got.output_tokens) == (1200, 1000, 80)


@pytest.mark.parametrize("wire", WIRES)
async def test_attached_image_is_sent_as_a_data_url(wire: str) -> None:
    async with ScriptedServer([{"name": "s", "turns": [{"text": "I see a pixel."}]}]) as srv:
        await collect_events(scripted_client(srv.base_url, wire), request([user("what is this?", PNG_URL)]))
        body = srv.model_requests()[0].body
    if wire == "responses":
        parts = body["input"][0]["content"]
        assert {"type": "input_image", "image_url": PNG_URL, "detail": "auto"} in parts
        assert {"type": "input_text", "text": "what is this?"} in parts
    else:
        parts = body["messages"][1]["content"]
        assert {"type": "image_url", "image_url": {"url": PNG_URL}} in parts
        assert {"type": "text", "text": "what is this?"} in parts


@pytest.mark.parametrize("wire", WIRES)
async def test_history_is_resent_as_an_exact_prefix_across_turns(wire: str) -> None:
    turns = [
        {
            "reasoning": "plan",
            "text": "Running tests.",
            "tool_calls": [
                {"name": "shell", "arguments": {"command": ["pytest"]}},
                {"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch\n"},
            ],
        },
        {"text": "Fixed.", "tool_calls": [{"name": "shell", "arguments": {"command": ["pytest"]}}]},
        {"text": "All green."},
    ]
    async with ScriptedServer([{"name": "s", "turns": turns}]) as srv:
        client = scripted_client(srv.base_url, wire)
        history: list[HistoryItem] = [user("fix the bug")]
        finals = []
        for _ in range(3):
            events = await collect_events(
                client, request(history, reasoning_effort="low", conversation_id="t1")
            )
            history += completed(events).items
            history += tool_results([e for e in events if isinstance(e, ToolCall)])
            finals.append(texts(events, TextDelta))
        bodies = [r.body for r in srv.model_requests()]
    assert finals == ["Running tests.", "Fixed.", "All green."]
    key = "input" if wire == "responses" else "messages"
    for earlier, later in itertools.pairwise(bodies):
        assert len(later[key]) > len(earlier[key])
        assert later[key][: len(earlier[key])] == earlier[key]
        assert later.get("instructions") == earlier.get("instructions")
        assert later["tools"] == earlier["tools"]


@pytest.mark.parametrize("wire", WIRES)
async def test_four_concurrent_conversations_stay_independent(wire: str) -> None:
    scenarios = [
        {
            "name": f"s{i}",
            "match": f"task {i}$",
            "turns": [
                {
                    "text": f"first answer {i}",
                    "chunk_delay_ms": 2,
                    "tool_calls": [{"name": "shell", "arguments": {"command": ["echo", str(i)]}}],
                    "errors": [{"status": 429, "retry_after": 0.01}] if i % 2 else [],
                },
                {"text": f"second answer {i}", "chunk_delay_ms": 2},
            ],
        }
        for i in range(4)
    ]
    async with ScriptedServer(scenarios) as srv:
        client = scripted_client(srv.base_url, wire)

        async def conversation(i: int) -> list[str]:
            history: list[HistoryItem] = [user(f"task {i}")]
            answers = []
            for _ in range(2):
                events = await collect_events(client, request(history, model="scripted"))
                history += completed(events).items
                history += tool_results([e for e in events if isinstance(e, ToolCall)])
                answers.append(texts(events, TextDelta))
            return answers

        results = await asyncio.gather(*(conversation(i) for i in range(4)))
    assert results == [[f"first answer {i}", f"second answer {i}"] for i in range(4)]


@pytest.mark.parametrize("wire", WIRES)
async def test_request_without_tools_gets_a_summary_and_consumes_no_turn(wire: str) -> None:
    turns = [
        {"text": "Edited parser.py.", "tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]},
        {"text": "second turn"},
    ]
    async with ScriptedServer([{"name": "s", "turns": turns}]) as srv:
        client = scripted_client(srv.base_url, wire)
        history: list[HistoryItem] = [user("fix the parser")]
        events = await collect_events(client, request(history))
        history += completed(events).items
        history += tool_results([e for e in events if isinstance(e, ToolCall)])
        summary_req = ModelRequest(model="scripted:s", instructions="Summarise.", history=history)
        summary = texts(await collect_events(client, summary_req), TextDelta)
        compacted = [user("fix the parser"), user(summary)]
        after = texts(await collect_events(client, request(compacted)), TextDelta)
    assert summary.startswith("Summary of the work so far:")
    assert "fix the parser" in summary and "Edited parser.py." in summary
    assert after == "second turn"


@pytest.mark.parametrize("wire", WIRES)
async def test_malformed_history_item_is_a_model_error_not_a_crash(wire: str) -> None:
    broken: list[HistoryItem] = [user("go"), {"type": "tool_call", "name": "shell"}]
    async with ScriptedServer([{"name": "s", "turns": [{"text": "x"}]}]) as srv:
        with pytest.raises(ModelError, match="history item is malformed"):
            await collect_events(scripted_client(srv.base_url, wire), request(broken))
        assert srv.requests == []
