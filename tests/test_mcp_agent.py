"""The agent with MCP tools: a crash mid-turn, an interrupted call, tools that come and go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from codex_tui.agent.loop import Agent, AgentSettings
from codex_tui.models.scripted_testing import scripted_client
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tools import default_tools
from codex_tui.tools.mcp_tools import McpToolset
from tests.conftest import give_to_sandbox
from tests.mcp_servers.support import stdio_config
from tests.test_agent_harness import Harness, approve


@asynccontextmanager
async def mcp_agent(repo: Path, turns: list[dict[str, Any]]) -> AsyncIterator[Harness]:
    """An agent on the scripted server whose extra tools come from the demo MCP server."""
    pool = McpServerPool({"demo": stdio_config("demo", approval="never")})
    async with ScriptedServer([{"name": "mcp", "turns": turns}]) as server:
        sandbox = LocalSandbox(SandboxSpec("t-mcp", give_to_sandbox(repo), mode="auto"), use_bwrap=False)
        await sandbox.start()
        box: list[Harness] = []

        def emit(kind: str, data: dict[str, Any]) -> None:
            box[0].emit(kind, data)

        toolset = McpToolset(pool.configured, pool.connect, emit, ask_by_default=False)
        agent = Agent(
            task_id="t-mcp",
            client=scripted_client(server.base_url),
            sandbox=sandbox,
            workspace=repo,
            settings=AgentSettings(model="scripted:mcp"),
            emit=emit,
            request_approval=approve,
            tools=default_tools(),
            extra_tools=toolset.tools,
        )
        box.append(Harness(agent, server, repo, "responses"))
        try:
            yield box[0]
        finally:
            await sandbox.stop()
            await pool.close()


def tool_names(harness: Harness, index: int) -> set[str]:
    return {str(t.get("name")) for t in harness.requests()[index].body["tools"]}


async def test_a_server_crash_mid_turn_drops_its_tools_and_the_turn_goes_on(git_repo: Path) -> None:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "demo__crash", "arguments": {}}]},
        {"text": "Carried on without it."},
    ]
    async with mcp_agent(git_repo, turns) as harness:
        result = await harness.agent.run_turn("crash the server")
    assert result.status == "completed" and result.final_message == "Carried on without it."
    assert "demo__crash" in tool_names(harness, 0) and "shell" in tool_names(harness, 0)
    assert not {n for n in tool_names(harness, 1) if n.startswith("demo__")}
    [item] = [d["item"] for d in harness.of("item.completed", "mcp_tool_call")]
    assert item["status"] == "failed" and "stopped answering" in item["error"]
    assert "stopped answering" in harness.tool_outputs(1)[0]
    [note] = [n for n in harness.notes() if "'demo'" in n]
    assert "stopped answering" in note and "no longer offered" in note


async def test_interrupting_a_slow_mcp_call_fails_its_item_and_answers_the_call(git_repo: Path) -> None:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "demo__sleep", "arguments": {"seconds": 30}}]},
        {"text": "never"},
    ]
    async with mcp_agent(git_repo, turns) as harness:
        turn = asyncio.create_task(harness.agent.run_turn("sleep"))
        await harness.wait_for("item.started", "mcp_tool_call", timeout=60)
        harness.agent.interrupt()
        result = await asyncio.wait_for(turn, 30)
    assert result.status == "interrupted"
    [item] = [d["item"] for d in harness.of("item.completed", "mcp_tool_call")]
    assert (item["status"], item["error"]) == ("failed", "interrupted")
    calls = [i for i in harness.agent.history if i.get("type") == "tool_call"]
    answers = [i for i in harness.agent.history if i.get("type") == "tool_result"]
    assert len(calls) == len(answers) == 1
