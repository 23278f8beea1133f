"""The tool registry and dispatcher: the four tools, and bad calls that never raise."""

from __future__ import annotations

import json
from pathlib import Path

from codex_tui.models.base import ToolSpec
from codex_tui.tools import default_tools, find_tool, run_tool
from codex_tui.tools.base import ToolContext, ToolResult
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context


def context(tmp_path: Path) -> ToolContext:
    recorder = Recorder()
    return make_context(tmp_path, RecordingSandbox(tmp_path), recorder)


class ExplodingTool:
    """A tool with a bug: its handler raises."""

    spec = ToolSpec(name="explode", description="raises", parameters={"type": "object"})

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        raise RuntimeError("boom")


def test_default_tools_are_the_four_codex_tools() -> None:
    names = [tool.spec.name for tool in default_tools()]
    assert names == ["shell", "apply_patch", "update_plan", "view_image"]
    assert all(tool.spec.description and tool.spec.parameters for tool in default_tools())


def test_shell_description_follows_the_mode() -> None:
    assert "network is on" in default_tools("full-access")[0].spec.description
    assert "read-only" in default_tools("read-only")[0].spec.description


def test_find_tool_by_name() -> None:
    tool = find_tool("update_plan")
    assert tool is not None and tool.spec.name == "update_plan"
    assert find_tool("rm_rf") is None


async def test_unknown_tool_gets_a_clear_error(tmp_path: Path) -> None:
    result = await run_tool("rm_rf", "{}", context(tmp_path))
    assert not result.success
    assert result.output == (
        "unsupported call: rm_rf (available tools: shell, apply_patch, update_plan, view_image)"
    )


async def test_malformed_json_arguments_never_raise(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    for name in ("shell", "update_plan", "view_image", "apply_patch"):
        result = await run_tool(name, '{"broken": ', ctx)
        assert not result.success
        assert result.output.startswith("failed to parse function arguments: "), name


async def test_a_tool_that_raises_becomes_a_failed_result(tmp_path: Path) -> None:
    result = await run_tool("explode", "{}", context(tmp_path), tools=[ExplodingTool()])
    assert not result.success
    assert result.output == "explode failed: RuntimeError: boom"


async def test_dispatch_runs_the_named_tool(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    result = await run_tool("shell", json.dumps({"command": ["echo", "dispatched"]}), ctx)
    assert result.success
    assert result.output.endswith("Output:\ndispatched\n")
