"""Structured output on both wire clients, against the real scripted server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codex_tui.models.base import (
    Completed,
    HistoryItem,
    ModelError,
    ModelEvent,
    ModelRequest,
    OutputSchema,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from codex_tui.models.chat import response_format
from codex_tui.models.responses import text_format
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer
from codex_tui.scripted.scenario import PROSE_WITHOUT_SCHEMA

WIRES = ["responses", "chat"]
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"command": {"type": "array"}}})
FINDING = {
    "type": "object",
    "properties": {"file": {"type": "string"}, "line": {"type": "integer"}, "comment": {"type": "string"}},
    "required": ["file", "line", "comment"],
    "additionalProperties": False,
}
REVIEW = OutputSchema(
    "code_review",
    {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["approve", "request_changes"]},
            "findings": {"type": "array", "items": FINDING},
        },
        "required": ["verdict", "findings"],
        "additionalProperties": False,
    },
)
ANSWER = {
    "verdict": "request_changes",
    "findings": [{"file": "parser.py", "line": 12, "comment": "The loop skips the last token."}],
}


def request(schema: OutputSchema | None, history: list[HistoryItem] | None = None) -> ModelRequest:
    prompt: HistoryItem = {"type": "message", "role": "user", "content": [{"type": "text", "text": "review"}]}
    return ModelRequest(
        model="scripted:s",
        instructions="You review code.",
        history=history or [prompt],
        tools=[SHELL],
        output_schema=schema,
    )


def answer_text(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def wire_format(body: dict[str, Any], wire: str) -> Any:
    return body.get("text") if wire == "responses" else body.get("response_format")


def scenario(*turns: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "s", "turns": list(turns)}]


@pytest.mark.parametrize("wire", WIRES)
async def test_output_schema_reaches_the_server_in_each_wire_apis_shape(wire: str) -> None:
    async with ScriptedServer(scenario({"json": ANSWER})) as srv:
        await collect_events(scripted_client(srv.base_url, wire), request(REVIEW))
    (sent,) = srv.model_requests()
    fields = {"name": "code_review", "schema": REVIEW.schema, "strict": True}
    if wire == "responses":
        assert sent.body["text"] == {"format": {"type": "json_schema", **fields}}
    else:
        assert sent.body["response_format"] == {"type": "json_schema", "json_schema": fields}
    assert sent.body["tools"] and srv.output_schemas() == [REVIEW]


@pytest.mark.parametrize("wire", WIRES)
async def test_json_turn_streams_back_in_pieces_and_parses(wire: str) -> None:
    async with ScriptedServer(scenario({"json": ANSWER, "requires_schema": True, "chunk_chars": 16})) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request(REVIEW))
    assert sum(isinstance(e, TextDelta) for e in events) > 3
    assert json.loads(answer_text(events)) == ANSWER


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    ("turn", "prose"),
    [
        ({"json": ANSWER, "requires_schema": True}, PROSE_WITHOUT_SCHEMA),
        ({"json": ANSWER, "requires_schema": True, "text_without_schema": "Looks fine."}, "Looks fine."),
    ],
)
async def test_requires_schema_turn_answers_prose_when_the_request_sent_no_schema(
    wire: str, turn: dict[str, Any], prose: str
) -> None:
    async with ScriptedServer(scenario(turn)) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request(None))
    assert answer_text(events) == prose
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose)


@pytest.mark.parametrize("wire", WIRES)
async def test_no_format_field_is_sent_without_an_output_schema(wire: str) -> None:
    async with ScriptedServer(scenario({"text": "plain"})) as srv:
        await collect_events(scripted_client(srv.base_url, wire), request(None))
    (sent,) = srv.model_requests()
    assert "text" not in sent.body and "response_format" not in sent.body
    assert srv.output_schemas() == [None]


@pytest.mark.parametrize("wire", WIRES)
async def test_schema_goes_on_every_call_of_a_turn_that_uses_tools_first(wire: str) -> None:
    look = {"tool_calls": [{"name": "shell", "arguments": {"command": ["git", "diff"]}}]}
    async with ScriptedServer(scenario(look, {"json": ANSWER, "requires_schema": True})) as srv:
        client = scripted_client(srv.base_url, wire)
        first = request(REVIEW)
        events = await collect_events(client, first)
        (call,) = [e for e in events if isinstance(e, ToolCall)]
        done = events[-1]
        assert isinstance(done, Completed)
        result = {"type": "tool_result", "call_id": call.call_id, "output": "diff", "kind": call.kind}
        history = [*first.history, *done.items, result]
        final = await collect_events(client, request(REVIEW, history))
    assert json.loads(answer_text(final)) == ANSWER
    bodies = [r.body for r in srv.model_requests()]
    assert srv.output_schemas() == [REVIEW, REVIEW]
    assert wire_format(bodies[0], wire) == wire_format(bodies[1], wire)
    assert all(body["tools"] for body in bodies)


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    ("schema", "server_says"),
    [
        (
            OutputSchema("code_review", {"type": "object", "properties": {"verdict": {"type": "string"}}}),
            "Invalid schema for response_format 'code_review': In context=(), 'additionalProperties' is "
            "required to be supplied and to be false.",
        ),
        (
            OutputSchema("code review", REVIEW.schema),
            "string does not match pattern",
        ),
    ],
)
async def test_malformed_schema_is_a_model_error_with_the_servers_message_and_no_retry(
    wire: str, schema: OutputSchema, server_says: str
) -> None:
    events: list[ModelEvent] = []
    async with ScriptedServer(scenario({"json": ANSWER})) as srv:
        with pytest.raises(ModelError) as info:
            async for event in scripted_client(srv.base_url, wire).stream(request(schema)):
                events.append(event)
    assert server_says in str(info.value) and info.value.status_code == 400
    assert events == [] and len(srv.model_requests()) == 1


@pytest.mark.parametrize("wire", WIRES)
async def test_json_that_breaks_a_strict_schema_is_still_served_as_written(wire: str) -> None:
    slip = {"verdict": "maybe", "extra": True}
    async with ScriptedServer(scenario({"json": slip})) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request(REVIEW))
    assert json.loads(answer_text(events)) == slip


def test_non_strict_schema_is_sent_with_strict_false() -> None:
    loose = OutputSchema("notes", {"type": "object"}, strict=False)
    assert text_format(loose) == {
        "type": "json_schema",
        "name": "notes",
        "schema": {"type": "object"},
        "strict": False,
    }
    assert response_format(loose)["json_schema"]["strict"] is False
