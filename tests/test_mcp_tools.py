"""MCP tools as model tools: names, schemas, failures as one note, approvals, results in wire shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_tui.config_mcp import McpServerConfig
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tools.base import ToolContext
from codex_tui.tools.mcp_client import McpCallResult
from codex_tui.tools.mcp_tools import (
    McpTool,
    McpToolset,
    function_parameters,
    model_output,
    qualified_name,
    schema_problem,
    unique_names,
)
from tests.mcp_servers.support import stdio_config


class Recorder:
    """Collects emitted events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    def notes(self) -> list[str]:
        return [str(d["message"]) for k, d in self.events if k == "note"]

    def items(self) -> list[dict[str, Any]]:
        return [d["item"] for k, d in self.events if k == "item.completed"]


def context(emit: Recorder, decision: str = "approve") -> ToolContext:
    """A tool context whose approvals answer `decision` (and are recorded)."""
    asked: list[dict[str, Any]] = []

    async def approve(data: dict[str, Any]) -> Any:
        asked.append(data)
        emit("approval.requested", data)
        return decision

    ids = iter(range(1, 1000))
    return ToolContext(
        sandbox=None,  # type: ignore[arg-type]
        workspace=Path("."),
        mode="auto",
        emit=emit,
        new_item_id=lambda: f"i{next(ids)}",
        request_approval=approve,
    )


def test_names_follow_the_api_pattern_and_never_collide() -> None:
    assert qualified_name("github", "create_issue") == "github__create_issue"
    assert qualified_name("my.server", "tool/with spaces") == "my_server__tool_with_spaces"
    long = qualified_name("s" * 40, "t" * 40)
    assert len(long) == 64
    names = unique_names([("a", "b__c"), ("a__b", "c")], taken=["shell"])
    assert len(set(names.values())) == 2 and all(len(n) <= 64 for n in names.values())
    assert unique_names([("shell", "x")], taken=["shell__x"])[("shell", "x")] != "shell__x"


def test_a_bad_schema_is_explained() -> None:
    assert schema_problem({"type": "object", "properties": {"x": {"type": "string"}}}) is None
    assert "not valid JSON Schema" in str(
        schema_problem({"type": "object", "properties": {"x": {"type": "banana"}}})
    )
    assert "type 'string'" in str(schema_problem({"type": "string"}))


def test_a_schema_without_type_or_properties_becomes_an_object_schema() -> None:
    assert function_parameters({}) == {"type": "object", "properties": {}}
    given = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    assert function_parameters(given) == given


def test_structured_content_goes_to_the_model_as_json_and_images_as_image_parts() -> None:
    text, images = model_output(McpCallResult([{"type": "text", "text": "21"}], {"celsius": 21}))
    assert text == '{"celsius": 21}' and images == []
    text, images = model_output(McpCallResult([{"type": "image", "data": "AAAA", "mime_type": "image/png"}]))
    assert images == [{"type": "image", "image_url": "data:image/png;base64,AAAA"}]
    assert "image" in text


async def test_tool_with_a_bad_schema_is_skipped_with_one_note_and_the_others_are_offered() -> None:
    pool = McpServerPool({"bad": stdio_config("bad", "bad_schema_server.py")})
    emit = Recorder()
    toolset = McpToolset(pool.configured, pool.connect, emit, ask_by_default=False)
    try:
        first = await toolset.tools()
        again = await toolset.tools()
    finally:
        await pool.close()
    assert [t.spec.name for t in first] == ["bad__good"] == [t.spec.name for t in again]
    [note] = emit.notes()
    assert "MCP tool broken of 'bad' skipped" in note and "banana" in note


async def test_servers_that_crash_or_hang_leave_one_note_and_the_rest_still_work() -> None:
    servers = {
        "demo": stdio_config("demo", enabled_tools=["echo", "crash"]),
        "crashy": stdio_config("crashy", "crashing_server.py"),
        "hang": stdio_config("hang", "hanging_server.py", startup_timeout_sec=0.5),
        "off": McpServerConfig("off", command="/nonexistent", enabled=False),
    }
    pool = McpServerPool(servers)
    emit = Recorder()
    toolset = McpToolset(pool.configured, pool.connect, emit, ask_by_default=False)
    try:
        tools = {t.spec.name: t for t in await toolset.tools()}
        assert set(tools) == {"demo__echo", "demo__crash"}
        result = await tools["demo__crash"].run("{}", context(emit))
        assert not result.success and "stopped answering" in result.output
        assert await toolset.tools() == []
        await toolset.tools()
        status = {row["name"]: row["state"] for row in pool.status()}
    finally:
        await pool.close()
    notes = emit.notes()
    assert len(notes) == 3, notes
    assert any("'crashy' failed to start" in n for n in notes)
    assert any("'hang' did not finish starting" in n for n in notes)
    assert any("'demo' stopped answering" in n and "no longer offered" in n for n in notes)
    assert status == {"demo": "failed", "crashy": "failed", "hang": "failed", "off": "disabled"}


async def test_on_request_server_asks_before_each_call_and_a_denial_fails_the_item() -> None:
    pool = McpServerPool({"demo": stdio_config("demo", approval="on-request")})
    emit = Recorder()
    toolset = McpToolset(pool.configured, pool.connect, emit, ask_by_default=False)
    try:
        tools = {t.spec.name: t for t in await toolset.tools()}
        echo = tools["demo__echo"]
        assert isinstance(echo, McpTool) and echo.needs_approval
        denied = await echo.run('{"text": "hi"}', context(emit, "deny"))
        approved = await echo.run('{"text": "hi"}', context(emit, "approve"))
        bad = await echo.run("[1, 2]", context(emit, "approve"))
    finally:
        await pool.close()
    requests = [d for k, d in emit.events if k == "approval.requested"]
    assert requests[0] == {
        "kind": "mcp",
        "server": "demo",
        "tool": "echo",
        "arguments": {"text": "hi"},
        "reason": "call echo on the MCP server demo (it runs on your machine)",
    }
    assert len(requests) == 2
    assert not denied.success and "declined" in denied.output
    assert approved.success and approved.output == '{"result": "echo: hi"}'
    assert not bad.success and "JSON object" in bad.output
    statuses = [(i["status"], i.get("error")) for i in emit.items()]
    assert statuses == [
        ("failed", "declined by the user"),
        ("completed", None),
        ("failed", "the arguments must be a JSON object"),
    ]


def test_unset_approval_follows_the_task_policy() -> None:
    servers = [
        stdio_config("a"),
        stdio_config("b", approval="never"),
        stdio_config("c", approval="on-request"),
    ]

    async def connect(_name: str) -> Any:
        raise AssertionError("not started")

    asks = McpToolset(servers, connect, Recorder(), ask_by_default=True)
    quiet = McpToolset(servers, connect, Recorder(), ask_by_default=False)
    assert [asks.needs_approval(s) for s in servers] == [True, False, True]
    assert [quiet.needs_approval(s) for s in servers] == [False, False, True]
