"""A low-level MCP server listing one tool with a broken input schema beside a good one."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(name="good", description="Works.", input_schema={"type": "object", "properties": {}}),
    types.Tool(
        name="broken",
        description="Its schema is not a valid JSON schema.",
        input_schema={"type": "object", "properties": {"x": {"type": "banana"}}},
    ),
]


async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
    """Both tools, the broken one included."""
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Every call answers with the tool's name."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"called {params.name}")])


async def main() -> None:
    """Serve over stdio."""
    server: Server[Any] = Server("bad-schema", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
