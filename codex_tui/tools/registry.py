"""The tools offered to the model, and one dispatcher that never raises for anything the model sends."""

from __future__ import annotations

import asyncio

from codex_tui.protocol import SandboxMode
from codex_tui.tools.base import Tool, ToolContext, ToolResult
from codex_tui.tools.patch_tool import ApplyPatchTool
from codex_tui.tools.plan import UpdatePlanTool
from codex_tui.tools.shell import ShellTool
from codex_tui.tools.view_image import ViewImageTool


def default_tools(mode: SandboxMode = "auto", default_timeout_ms: int = 10_000) -> list[Tool]:
    """shell, apply_patch, update_plan and view_image (the shell's description fits the mode)."""
    return [ShellTool(mode, default_timeout_ms), ApplyPatchTool(), UpdatePlanTool(), ViewImageTool()]


def find_tool(name: str, tools: list[Tool] | None = None) -> Tool | None:
    """The tool called `name` among `tools` (default: the default tools), or None."""
    for tool in tools if tools is not None else default_tools():
        if tool.spec.name == name:
            return tool
    return None


async def run_tool(
    name: str, arguments: str, ctx: ToolContext, tools: list[Tool] | None = None
) -> ToolResult:
    """Run a tool call; unknown names, bad arguments and tool bugs come back as failed results."""
    available = tools if tools is not None else default_tools(ctx.mode, ctx.default_timeout_ms)
    tool = find_tool(name, available)
    if tool is None:
        names = ", ".join(t.spec.name for t in available)
        return ToolResult(f"unsupported call: {name} (available tools: {names})", success=False)
    try:
        return await tool.run(arguments, ctx)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        return ToolResult(f"{name} failed: {type(error).__name__}: {error}", success=False)
