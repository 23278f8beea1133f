"""A well-behaved MCP server (MCPServer) over stdio, or streamable HTTP with `--http PORT`."""

from __future__ import annotations

import asyncio
import base64
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

server = MCPServer("demo")


class Forecast(BaseModel):
    """A weather forecast."""

    city: str
    celsius: int


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def forecast(city: str) -> Forecast:
    """Tomorrow's weather (structured content)."""
    return Forecast(city=city, celsius=21)


@server.tool()
def pixel() -> Image:
    """A 1x1 PNG image."""
    return Image(data=PNG_1X1, format="png")


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool()
def env_secret() -> str:
    """Whether DEMO_SECRET reached the server (never its value)."""
    return "secret present" if os.environ.get("DEMO_SECRET") else "secret missing"


@server.tool()
def headers(ctx: Context) -> str:
    """The Authorization and X-Team headers of an HTTP request ("-" when absent)."""
    sent = ctx.headers or {}
    return f"authorization={sent.get('authorization', '-')} team={sent.get('x-team', '-')}"


@server.tool()
def crash() -> str:
    """Exit the server process at once."""
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run(transport="streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
