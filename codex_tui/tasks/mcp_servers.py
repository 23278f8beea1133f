"""The MCP servers of one app run: started when a task first needs them, shared, stopped at the end.

A server that failed stays failed for the run (its tools are not offered again); `codex-tui mcp list`
and the TUI's `/mcp` read :meth:`McpServerPool.status`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from codex_tui.config_mcp import McpServerConfig
from codex_tui.tools.mcp_client import McpConnection, McpServerError


class McpServerPool:
    """Connections to the configured MCP servers, one per server, shared by every task."""

    def __init__(self, servers: dict[str, McpServerConfig]) -> None:
        self.servers = dict(servers)
        self._connections: dict[str, McpConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    @property
    def configured(self) -> list[McpServerConfig]:
        """The enabled servers, in config order."""
        return [server for server in self.servers.values() if server.enabled]

    async def connect(self, name: str) -> McpConnection:
        """The started connection to `name` (starting it on first use); raises McpServerError."""
        if self._closed:
            raise McpServerError("the app is stopping; MCP servers are closed")
        config = self.servers.get(name)
        if config is None or not config.enabled:
            raise McpServerError(f"MCP server '{name}' is not configured (or enabled = false)")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            connection = self._connections.get(name)
            if connection is None:
                connection = self._connections[name] = McpConnection(config)
            await connection.start()  # at once when ready; raises when failed
        return connection

    async def start_all(self) -> None:
        """Start every enabled server concurrently (failures are kept in their status)."""

        async def start(name: str) -> None:
            with contextlib.suppress(McpServerError):
                await self.connect(name)

        await asyncio.gather(*(start(server.name) for server in self.configured))

    def status(self) -> list[dict[str, Any]]:
        """One row per configured server: name, transport, enabled, state, error, tools (names)."""
        rows: list[dict[str, Any]] = []
        for server in self.servers.values():
            connection = self._connections.get(server.name)
            state = connection.state if connection is not None else "stopped"
            rows.append(
                {
                    "name": server.name,
                    "transport": server.transport,
                    "target": server.url or " ".join([server.command, *server.args]),
                    "enabled": server.enabled,
                    "state": state if server.enabled else "disabled",
                    "error": connection.error if connection is not None else "",
                    "tools": [
                        tool.name
                        for tool in (connection.tools if connection is not None else [])
                        if server.offers(tool.name)
                    ],
                }
            )
        return rows

    async def close(self) -> None:
        """Stop every server (bounded waits); later connects fail with a clear message."""
        self._closed = True
        connections = list(self._connections.values())
        await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)
