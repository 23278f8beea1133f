"""One connection to an MCP server (official `mcp` SDK): start, list tools, call tools, stop.

The SDK's client is an anyio context manager, so it lives in one owner task for its whole life;
callers from any task send requests through it. Servers run on the host with the user's trust:
their env and headers come from config.toml and never reach a sandbox, an event or a rollout.
A stdio server's stderr goes to a private temporary file (never the terminal); its last lines
explain a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from codex_tui.config_mcp import McpServerConfig

if TYPE_CHECKING:  # the SDK takes ~0.5 s to import: only when a server starts (see _connect)
    from mcp import Client

ServerState = Literal["stopped", "starting", "ready", "failed"]
STDERR_TAIL_BYTES: Final = 2048
STOP_TIMEOUT_S: Final = 10.0
_MAX_PAGES: Final = 100


class McpServerError(Exception):
    """The server could not start, went away, or did not answer in time; the message says which."""


@dataclass(slots=True, frozen=True)
class McpToolInfo:
    """A tool as the server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(slots=True)
class McpCallResult:
    """What a tool call returned: content blocks as plain JSON, structured content, the error flag."""

    content: list[dict[str, Any]] = field(default_factory=list)
    structured_content: Any = None
    is_error: bool = False


class McpConnection:
    """One MCP server, connected on `start()` and shared by every task that uses it."""

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self.state: ServerState = "stopped"
        self.error = ""
        """Why the server failed (empty unless state is "failed")."""
        self.tools: list[McpToolInfo] = []
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._stderr: IO[str] | None = None
        self._deadline = 0.0

    @property
    def name(self) -> str:
        """The server's name in config.toml."""
        return self.config.name

    async def start(self) -> None:
        """Connect and list the tools within `startup_timeout_sec`; raises McpServerError.

        Safe to call again (e.g. after a caller was cancelled mid-start): it waits for the same
        start-up, within what is left of the timeout.
        """
        if self.state == "ready":
            return
        if self.state == "failed":
            raise McpServerError(self.error)
        if self._stop.is_set():
            raise McpServerError(f"MCP server '{self.name}' was stopped")
        loop = asyncio.get_running_loop()
        timeout = self.config.startup_timeout_sec
        if self._owner is None:
            self.state = "starting"
            self._deadline = loop.time() + timeout
            self._owner = asyncio.create_task(self._own(), name=f"mcp-{self.name}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            remaining = max(0.0, self._deadline - loop.time())
            await asyncio.wait({ready, self._owner}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        if not self.error:  # neither ready nor failed: still starting
            await self._fail(f"did not finish starting within {timeout:g} s (startup_timeout_sec)")
        raise McpServerError(self.error)

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> McpCallResult:
        """Call a tool within `tool_timeout_sec`; raises McpServerError when the server fails or is slow."""
        client = self._client
        if self.state != "ready" or client is None:
            raise McpServerError(self.error or f"MCP server '{self.name}' is not running")
        timeout = self.config.tool_timeout_sec
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), timeout)
        except TimeoutError:
            raise McpServerError(f"{tool} did not answer within {timeout:g} s (tool_timeout_sec)") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if await self._connection_lost(exc):
                raise McpServerError(self.error) from None
            raise McpServerError(f"{tool} failed: {_describe(exc)}") from None
        return McpCallResult(
            content=[block.model_dump(mode="json", exclude_none=True) for block in result.content],
            structured_content=result.structured_content,
            is_error=bool(result.is_error),
        )

    async def stop(self) -> None:
        """Close the session and end the server process (bounded wait); safe to call twice."""
        self._stop.set()
        owner, self._owner = self._owner, None
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), STOP_TIMEOUT_S)
            except (TimeoutError, Exception):
                owner.cancel()
                with contextlib.suppress(BaseException):
                    await owner
        if self.state != "failed":
            self.state = "stopped"
        self._client = None
        self._close_stderr()

    # --- the owner task ----------------------------------------------------------------------

    async def _own(self) -> None:
        try:
            async with self._connect() as client:
                self.tools = await _list_tools(client)
                self._client = client
                self.state = "ready"
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the SDK raises exception groups from its task groups
            if self.state != "failed" and not self._stop.is_set():
                self.state = "failed"
                self.error = self._failure_text(f"failed to start: {_describe(exc)}")
        finally:
            self._client = None

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[Client]:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import get_default_environment, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        cfg = self.config
        if cfg.url:
            async with create_mcp_http_client(headers=self._http_headers()) as http:
                transport = streamable_http_client(cfg.url, http_client=http)
                async with Client(transport, cache=None) as client:
                    yield client
            return
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        params = StdioServerParameters(
            command=cfg.command,
            args=list(cfg.args),
            env=get_default_environment() | cfg.env,
            cwd=cfg.cwd or None,
        )
        async with Client(stdio_client(params, errlog=self._stderr), cache=None) as client:
            yield client

    def _http_headers(self) -> dict[str, str]:
        headers = dict(self.config.http_headers)
        if var := self.config.bearer_token_env_var:
            token = os.environ.get(var)
            if not token:
                raise McpServerError(f"bearer_token_env_var {var} is not set in the environment")
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _connection_lost(self, exc: Exception) -> bool:
        """After a failed call: True (and state failed) when the server itself is gone."""
        owner = self._owner
        closed = _is_connection_closed(exc)
        gone = closed or owner is None or owner.done()
        if gone and self.state != "failed":
            await self._fail("stopped answering (it crashed or closed the connection)")
        return gone

    async def _fail(self, reason: str) -> None:
        self.state = "failed"
        self.error = self._failure_text(reason)
        self._client = None
        self._stop.set()
        owner = self._owner
        if owner is not None and not owner.done():
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, STOP_TIMEOUT_S)

    def _failure_text(self, reason: str) -> str:
        text = f"MCP server '{self.name}' {reason}"
        if tail := self._stderr_tail():
            text += f" — its stderr ends with: {tail}"
        return text

    def _stderr_tail(self) -> str:
        handle = self._stderr
        if handle is None:
            return ""
        try:
            handle.flush()
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - STDERR_TAIL_BYTES))
            lines = [line.strip() for line in handle.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return " | ".join(lines[-3:])

    def _close_stderr(self) -> None:
        handle, self._stderr = self._stderr, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()


async def _list_tools(client: Client) -> list[McpToolInfo]:
    tools: list[McpToolInfo] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += [
            McpToolInfo(tool.name, tool.description or "", dict(tool.input_schema or {}))
            for tool in page.tools
        ]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _describe(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpServerError):
        return str(exc)
    from mcp import MCPError

    if isinstance(exc, MCPError):
        return "the connection closed" if _is_connection_closed(exc) else exc.error.message
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, OSError) else f"{type(exc).__name__}: {text}"


def _is_connection_closed(exc: BaseException) -> bool:
    """True for the SDK's "connection closed" error (the server went away)."""
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED
