"""The scripted model server on its own: endpoints, scenario choice, turn counting, loading, modes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import openai
import pydantic
import pytest

from codex_tui.models.base import OutputSchema
from codex_tui.scripted import FINISHED_TEXT, ScenarioError, ScriptedServer, load_scenarios
from codex_tui.scripted.scenario import read_conversation

SHELL_FN: Any = {"type": "function", "name": "shell", "parameters": {"type": "object"}}
SHELL_CHAT: Any = {"type": "function", "function": {"name": "shell", "parameters": {"type": "object"}}}
PATCH_FN: Any = {"type": "function", "name": "apply_patch", "parameters": {"type": "object"}}
SCENARIOS = [
    {"name": "bug", "match": r"fix .*bug", "turns": [{"text": "bug scenario"}]},
    {"name": "docs", "match": r"docs", "turns": [{"text": "docs scenario"}, {"text": "docs again"}]},
    {"name": "default", "turns": [{"text": "default scenario"}]},
]


def sdk(srv: ScriptedServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0)


def msg(role: str, text: str) -> Any:
    return {"role": role, "content": text}


async def test_non_streaming_answers_parse_with_the_sdk_on_both_apis() -> None:
    turn = {
        "reasoning": "why",
        "text": "plain answer",
        "tool_calls": [{"name": "shell", "arguments": {"a": 1}}],
    }
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        client = sdk(srv)
        resp = await client.responses.create(model="scripted:s", input="hi", tools=[SHELL_FN])
        chat = await client.chat.completions.create(
            model="scripted:s", messages=[msg("user", "hi")], tools=[SHELL_CHAT]
        )
    assert resp.output_text == "plain answer"
    assert [item.type for item in resp.output] == ["reasoning", "message", "function_call"]
    assert resp.usage is not None and resp.usage.output_tokens > 0
    choice = chat.choices[0]
    assert choice.message.content == "plain answer" and choice.finish_reason == "tool_calls"
    calls: Any = choice.message.tool_calls
    assert calls and json.loads(calls[0].function.arguments) == {"a": 1}
    assert (choice.message.model_extra or {}).get("reasoning_content") == "why"


async def test_scripted_finish_reason_ends_chat_with_it_and_responses_as_incomplete() -> None:
    turn = {"text": "cut sh", "finish_reason": "length"}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        client = sdk(srv)
        chat = await client.chat.completions.create(
            model="scripted:s", messages=[msg("user", "hi")], tools=[SHELL_CHAT]
        )
        resp = await client.responses.create(model="scripted:s", input="hi", tools=[SHELL_FN])
        stream = await client.responses.create(model="scripted:s", input="hi", tools=[SHELL_FN], stream=True)
        last = [event async for event in stream][-1]
    assert chat.choices[0].finish_reason == "length"
    assert resp.status == "incomplete" and resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens" and resp.output_text == "cut sh"
    assert last.type == "response.incomplete"


async def test_models_endpoint_lists_every_scenario() -> None:
    async with ScriptedServer(SCENARIOS) as srv:
        ids = [m.id async for m in await sdk(srv).models.list()]
    assert ids == ["scripted", "scripted:bug", "scripted:docs", "scripted:default"]


@pytest.mark.parametrize(
    ("messages", "model", "expected"),
    [
        ([msg("user", "please fix the parser bug")], "gpt-5", "bug scenario"),
        ([msg("user", "<environment_context/>"), msg("user", "update the docs")], "gpt-5", "docs scenario"),
        ([msg("user", "something else")], "gpt-5", "default scenario"),
        ([msg("user", "please fix the parser bug")], "scripted:docs", "docs scenario"),
    ],
)
async def test_scenario_is_chosen_by_model_name_then_user_message_then_default(
    messages: Any, model: str, expected: str
) -> None:
    async with ScriptedServer(SCENARIOS) as srv:
        chat = await sdk(srv).chat.completions.create(model=model, messages=messages, tools=[SHELL_CHAT])
    assert chat.choices[0].message.content == expected


async def test_turns_follow_the_history_and_end_with_a_finished_note() -> None:
    history = [msg("user", "update the docs")]
    answers = []
    async with ScriptedServer(SCENARIOS) as srv:
        for _ in range(3):
            chat = await sdk(srv).chat.completions.create(model="m", messages=history, tools=[SHELL_CHAT])
            answer = chat.choices[0].message.content or ""
            answers.append(answer)
            history += [msg("assistant", answer), msg("user", "go on")]
    assert answers == ["docs scenario", "docs again", FINISHED_TEXT]


def test_turn_index_counts_runs_of_assistant_items_as_one_response() -> None:
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "reasoning", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {"type": "function_call", "call_id": "1", "name": "shell", "arguments": "{}"},
        {"type": "function_call", "call_id": "2", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "1", "output": ""},
        {"type": "function_call_output", "call_id": "2", "output": ""},
        {"type": "custom_tool_call", "call_id": "3", "name": "apply_patch", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "3", "output": ""},
    ]
    conversation = read_conversation(items)
    assert conversation.turn_index == 2
    assert conversation.user_texts == ["go"]
    assert read_conversation(items[:1]).fingerprint() != conversation.fingerprint()


async def test_scripted_errors_repeat_for_each_conversation_but_not_for_its_retries() -> None:
    turn = {"text": "ok", "errors": [{"status": 429, "message": "slow down", "retry_after": 0.01}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        client = sdk(srv)
        outcomes = []
        for prompt in ("first", "first", "second"):
            try:
                await client.chat.completions.create(
                    model="scripted:s", messages=[msg("user", prompt)], tools=[SHELL_CHAT]
                )
                outcomes.append("ok")
            except openai.RateLimitError as exc:
                assert exc.response.headers["retry-after-ms"] == "10"
                outcomes.append("429")
    assert outcomes == ["429", "ok", "429"]


async def test_responses_offering_apply_patch_as_a_function_gets_input_json() -> None:
    turn = {"tool_calls": [{"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"}]}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        resp = await sdk(srv).responses.create(model="scripted:s", input="go", tools=[PATCH_FN])
    (call,) = resp.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"input": "*** Begin Patch\n*** End Patch"}


async def test_bad_requests_get_clear_http_errors() -> None:
    async with ScriptedServer(SCENARIOS) as srv, httpx2.AsyncClient(base_url=srv.base_url) as http:
        bad_json = await http.post(
            "/responses", content=b"{nope", headers={"content-type": "application/json"}
        )
        no_input = await http.post("/chat/completions", json={"model": "m"})
        unknown = await http.get("/nothing-here")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]
    assert no_input.status_code == 400 and "messages" in no_input.json()["error"]["message"]
    assert unknown.status_code == 404 and "Unknown endpoint" in unknown.json()["error"]["message"]


async def test_api_key_header_is_noted_but_its_value_is_never_recorded() -> None:
    async with ScriptedServer(SCENARIOS) as srv:
        await sdk(srv).chat.completions.create(model="m", messages=[msg("user", "hi")], tools=[SHELL_CHAT])
    (recorded,) = srv.requests
    assert recorded.authorized is True
    assert "authorization" not in recorded.headers
    assert "sk-test" not in repr(srv.requests)


def test_thread_mode_serves_synchronous_callers() -> None:
    srv = ScriptedServer(SCENARIOS).start_in_thread()
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0)
        stream = client.responses.create(model="scripted:bug", input="x", tools=[SHELL_FN], stream=True)
        deltas = [
            getattr(e, "delta", "") for e in stream if getattr(e, "type", "") == "response.output_text.delta"
        ]
    finally:
        srv.stop()
        srv.stop()
    assert "".join(deltas) == "bug scenario"
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0).models.list()


def test_scenarios_load_from_a_file_a_list_or_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(SCENARIOS[0]))
    (tmp_path / "b.json").write_text(json.dumps({"scenarios": SCENARIOS[1:]}))
    assert [s.name for s in load_scenarios(tmp_path)] == ["bug", "docs", "default"]
    assert [s.name for s in load_scenarios(tmp_path / "b.json")] == ["docs", "default"]
    loaded = load_scenarios(tmp_path / "a.json")[0]
    assert loaded.match == r"fix .*bug" and loaded.turns[0].text == "bug scenario"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"turns": []}', "needs a non-empty string 'name'"),
        ('{"name": "x", "match": "("}', "not a valid regex"),
        ('{"name": "x", "turns": [{"txt": "typo"}]}', "unknown field(s) txt"),
        ('{"name": "x", "turns": [{"errors": [{"status": "429"}]}]}', "'status' has the wrong type"),
        ('{"name": "x", "turns": [{"tool_calls": [{"arguments": {}}]}]}', "needs a string 'name'"),
        ('{"name": "x", "turns": [{"tool_calls": 3}]}', "'tool_calls' has the wrong type"),
        ('{"name": "x", "turns": [{"json": [1]}]}', "'json' has the wrong type"),
        ('{"name": "x", "turns": [{"json": {}, "text": "t"}]}', "either 'text' or 'json'"),
        ('{"name": "x", "turns": [{"requires_schema": "yes"}]}', "'requires_schema' must be true or false"),
    ],
)
def test_malformed_scenarios_are_refused_with_a_message_naming_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScenarioError) as info:
        load_scenarios(path)
    assert message in str(info.value) and str(path) in str(info.value)


async def test_standalone_server_runs_from_the_command_line(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.json"
    scenario_file.write_text(json.dumps(SCENARIOS))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "codex_tui.scripted",
        "--scenario",
        str(scenario_file),
        "--port",
        "0",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        base_url = line.split(" on ")[1].split(" ")[0]
        client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
        chat = await client.chat.completions.create(
            model="m", messages=[msg("user", "fix the bug")], tools=[SHELL_CHAT]
        )
    finally:
        proc.terminate()
        await proc.wait()
    assert chat.choices[0].message.content == "bug scenario"


def test_standalone_server_reports_a_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    done = subprocess.run(
        [sys.executable, "-m", "codex_tui.scripted", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "a scenario must be an object" in done.stderr and "Traceback" not in done.stderr


async def test_request_the_server_cannot_handle_gets_a_500_not_a_dropped_connection() -> None:
    body = {
        "model": "m",
        "messages": [msg("user", "hi")],
        "tools": [SHELL_CHAT],
        "stream": True,
        "stream_options": "not-an-object",
    }
    async with ScriptedServer(SCENARIOS) as srv, httpx2.AsyncClient(base_url=srv.base_url) as http:
        answer = await http.post("/chat/completions", json=body)
    assert answer.status_code == 500 and "scripted server error" in answer.json()["error"]["message"]


STRICT_SCHEMA: Any = {
    "type": "object",
    "properties": {"verdict": {"type": "string"}, "findings": {"type": "array", "items": {}}},
    "required": ["verdict", "findings"],
    "additionalProperties": False,
}
LOOSE_ITEM: Any = {
    "type": "object",
    "properties": {"file": {"type": "string"}},
    "additionalProperties": False,
}


def with_items(items: Any) -> Any:
    return {**STRICT_SCHEMA, "properties": {**STRICT_SCHEMA["properties"], "findings": {"items": items}}}


@pytest.mark.parametrize(
    ("api", "field_value", "param", "message"),
    [
        ("responses", "verbose", "text", "Invalid type for 'text': expected an object, but got a string"),
        ("responses", {"format": {"type": "xml"}}, "text.format.type", "Supported values are: 'text'"),
        ("responses", {"format": {}}, "text.format.type", "Missing required parameter: 'text.format.type'"),
        (
            "responses",
            {"format": {"type": "json_schema", "schema": STRICT_SCHEMA}},
            "text.format.name",
            "Missing required parameter: 'text.format.name'",
        ),
        (
            "responses",
            {"format": {"type": "json_schema", "name": "review"}},
            "text.format.schema",
            "Missing required parameter: 'text.format.schema'",
        ),
        (
            "responses",
            {"format": {"type": "json_schema", "name": "a review", "schema": STRICT_SCHEMA}},
            "text.format.name",
            "string does not match pattern",
        ),
        (
            "responses",
            {"format": {"type": "json_schema", "name": "r", "schema": {"type": "array"}, "strict": True}},
            "text.format.schema",
            "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'",
        ),
        ("chat", "json", "response_format", "Invalid type for 'response_format'"),
        (
            "chat",
            {"type": "json_schema"},
            "response_format.json_schema",
            "Missing required parameter: 'response_format.json_schema'",
        ),
        (
            "chat",
            {"type": "json_schema", "json_schema": {"schema": STRICT_SCHEMA}},
            "response_format.json_schema.name",
            "Missing required parameter: 'response_format.json_schema.name'",
        ),
        (
            "chat",
            {"type": "json_schema", "json_schema": {"name": "r"}},
            "response_format.json_schema.schema",
            "Missing required parameter: 'response_format.json_schema.schema'",
        ),
        (
            "chat",
            {"type": "json_schema", "json_schema": {"name": "r", "schema": STRICT_SCHEMA, "strict": "yes"}},
            "response_format.json_schema.strict",
            "expected a boolean, but got a string",
        ),
        (
            "chat",
            {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": with_items(LOOSE_ITEM), "strict": True},
            },
            "response_format",
            "Invalid schema for response_format 'r': In context=('properties', 'findings', 'items'), "
            "'required' is required to be supplied and to be an array including every key in properties. "
            "Missing 'file'.",
        ),
    ],
)
async def test_malformed_structured_output_field_is_a_400_naming_the_field(
    api: str, field_value: Any, param: str, message: str
) -> None:
    if api == "responses":
        path, body = "/responses", {"model": "m", "input": "hi", "tools": [SHELL_FN], "text": field_value}
    else:
        body = {"model": "m", "messages": [msg("user", "hi")], "tools": [SHELL_CHAT]}
        path, body["response_format"] = "/chat/completions", field_value
    async with ScriptedServer(SCENARIOS) as srv, httpx2.AsyncClient(base_url=srv.base_url) as http:
        answer = await http.post(path, json=body)
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["type"] == "invalid_request_error"
    assert error["param"] == param and message in error["message"]
    assert srv.output_schemas() == [None]


async def test_plain_text_and_json_mode_formats_are_accepted_as_no_schema() -> None:
    async with ScriptedServer(SCENARIOS) as srv:
        client = sdk(srv)
        text: Any = {"format": {"type": "text"}, "verbosity": "low"}
        resp = await client.responses.create(model="m", input="hi", tools=[SHELL_FN], text=text)
        chat = await client.chat.completions.create(
            model="m",
            messages=[msg("user", "hi")],
            tools=[SHELL_CHAT],
            response_format={"type": "json_object"},
        )
    assert resp.output_text == chat.choices[0].message.content == "default scenario"
    assert srv.output_schemas() == [None, None]


class Review(pydantic.BaseModel):
    verdict: str
    findings: list[str]


async def test_sdk_structured_output_helpers_parse_a_scripted_json_answer() -> None:
    strict_shell: Any = {
        "type": "function",
        "function": {
            "name": "shell",
            "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
            "strict": True,
        },
    }
    responses_shell: Any = {"type": "function", "name": "shell", **strict_shell["function"]}
    turn = {"json": {"verdict": "approve", "findings": ["tidy"]}, "requires_schema": True}
    async with ScriptedServer([{"name": "s", "turns": [turn]}]) as srv:
        client = sdk(srv)
        resp = await client.responses.parse(
            model="scripted:s", input="review", tools=[responses_shell], text_format=Review
        )
        chat = await client.chat.completions.parse(
            model="scripted:s", messages=[msg("user", "review")], tools=[strict_shell], response_format=Review
        )
    assert resp.output_parsed == Review(verdict="approve", findings=["tidy"])
    assert chat.choices[0].message.parsed == Review(verdict="approve", findings=["tidy"])
    schemas = srv.output_schemas()
    assert all(isinstance(s, OutputSchema) and s.name == "Review" and s.strict for s in schemas)
