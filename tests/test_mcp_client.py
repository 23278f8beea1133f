"""The MCP client against real servers built with the official SDK, over stdio and streamable HTTP."""

from __future__ import annotations

import pytest

from codex_tui.config_mcp import McpServerConfig
from codex_tui.tools.mcp_client import McpConnection, McpServerError
from tests.mcp_servers.support import http_server, stdio_config


async def test_stdio_server_lists_its_tools_and_answers_calls() -> None:
    connection = McpConnection(stdio_config("demo"))
    try:
        await connection.start()
        names = {tool.name for tool in connection.tools}
        assert {"echo", "add", "forecast", "pixel", "fail"} <= names
        echo = next(t for t in connection.tools if t.name == "echo")
        assert echo.input_schema["properties"]["text"]["type"] == "string"
        result = await connection.call_tool("echo", {"text": "hi"})
        assert result.content == [{"type": "text", "text": "echo: hi"}]
        assert not result.is_error
    finally:
        await connection.stop()
    assert connection.state == "stopped"


async def test_image_structured_content_and_tool_errors_come_back_as_data() -> None:
    connection = McpConnection(stdio_config("demo"))
    try:
        await connection.start()
        image = await connection.call_tool("pixel", {})
        forecast = await connection.call_tool("forecast", {"city": "Oslo"})
        failed = await connection.call_tool("fail", {"message": "no such city"})
    finally:
        await connection.stop()
    assert image.content[0]["type"] == "image" and image.content[0]["mime_type"] == "image/png"
    assert forecast.structured_content == {"city": "Oslo", "celsius": 21}
    assert failed.is_error and "no such city" in failed.content[0]["text"]


async def test_server_env_from_config_reaches_the_server() -> None:
    connection = McpConnection(stdio_config("demo", env={"DEMO_SECRET": "s3cr3t"}))
    try:
        await connection.start()
        result = await connection.call_tool("env_secret", {})
    finally:
        await connection.stop()
    assert result.content[0]["text"] == "secret present"


async def test_streamable_http_server_lists_and_calls_tools() -> None:
    with http_server() as url:
        connection = McpConnection(McpServerConfig("web", url=url))
        try:
            await connection.start()
            assert "add" in {tool.name for tool in connection.tools}
            result = await connection.call_tool("add", {"a": 2, "b": 3})
        finally:
            await connection.stop()
    assert result.structured_content == {"result": 5}


async def test_http_server_gets_the_bearer_token_and_headers_from_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_MCP_TOKEN", "tok-123")
    with http_server() as url:
        config = McpServerConfig(
            "web", url=url, bearer_token_env_var="DEMO_MCP_TOKEN", http_headers={"X-Team": "core"}
        )
        connection = McpConnection(config)
        try:
            await connection.start()
            result = await connection.call_tool("headers", {})
        finally:
            await connection.stop()
    assert result.content[0]["text"] == "authorization=Bearer tok-123 team=core"


async def test_missing_bearer_token_variable_fails_the_start_clearly() -> None:
    connection = McpConnection(
        McpServerConfig("web", url="http://127.0.0.1:9/mcp", bearer_token_env_var="NO_SUCH_VAR")
    )
    with pytest.raises(McpServerError, match="bearer_token_env_var NO_SUCH_VAR is not set"):
        await connection.start()
    await connection.stop()


async def test_server_that_dies_at_start_fails_with_its_stderr() -> None:
    connection = McpConnection(stdio_config("crashy", "crashing_server.py"))
    with pytest.raises(McpServerError) as caught:
        await connection.start()
    await connection.stop()
    assert connection.state == "failed"
    assert "MCP server 'crashy' failed to start" in str(caught.value)
    assert "missing configuration" in str(caught.value)


async def test_missing_command_fails_clearly() -> None:
    connection = McpConnection(McpServerConfig("nope", command="/nonexistent/mcp-server"))
    with pytest.raises(McpServerError, match="command not found"):
        await connection.start()
    await connection.stop()


async def test_server_that_never_answers_fails_after_the_startup_timeout() -> None:
    connection = McpConnection(stdio_config("hang", "hanging_server.py", startup_timeout_sec=0.5))
    with pytest.raises(McpServerError, match=r"did not finish starting within 0.5 s \(startup_timeout_sec\)"):
        await connection.start()
    await connection.stop()
    assert connection.state == "failed"


async def test_slow_tool_call_times_out_and_the_server_stays_up() -> None:
    connection = McpConnection(stdio_config("demo", tool_timeout_sec=0.3))
    try:
        await connection.start()
        with pytest.raises(McpServerError, match=r"sleep did not answer within 0.3 s \(tool_timeout_sec\)"):
            await connection.call_tool("sleep", {"seconds": 30})
        assert connection.state == "ready"
        assert (await connection.call_tool("echo", {"text": "still here"})).content[0][
            "text"
        ] == "echo: still here"
    finally:
        await connection.stop()


async def test_server_that_crashes_during_a_call_is_marked_failed() -> None:
    connection = McpConnection(stdio_config("demo"))
    try:
        await connection.start()
        with pytest.raises(McpServerError, match="stopped answering"):
            await connection.call_tool("crash", {})
        assert connection.state == "failed"
        with pytest.raises(McpServerError, match="stopped answering"):
            await connection.call_tool("echo", {"text": "anyone?"})
    finally:
        await connection.stop()
