"""The `[mcp_servers.NAME]` tables of config.toml, written as Codex users write them.

A server is either launched over stdio (`command`, `args`, `env`, `cwd`) or reached over
streamable HTTP (`url`, `bearer_token_env_var`, `http_headers`). Every mistake becomes a
ConfigError naming the file, the table and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

McpApproval = Literal["on-request", "never"]
MCP_APPROVALS: Final = ("on-request", "never")
DEFAULT_STARTUP_TIMEOUT_S: Final = 10.0
DEFAULT_TOOL_TIMEOUT_S: Final = 60.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class McpConfigError(ValueError):
    """An [mcp_servers.NAME] table is wrong; config.py turns it into a ConfigError."""


@dataclass(slots=True)
class McpServerConfig:
    """One MCP server the user trusts: how to reach it, which tools to offer, and its limits."""

    name: str
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    bearer_token_env_var: str = ""
    http_headers: dict[str, str] = field(default_factory=dict)
    enabled_tools: list[str] | None = None
    """Only these tools are offered (None: all)."""
    disabled_tools: list[str] = field(default_factory=list)
    startup_timeout_sec: float = DEFAULT_STARTUP_TIMEOUT_S
    tool_timeout_sec: float = DEFAULT_TOOL_TIMEOUT_S
    enabled: bool = True
    approval: McpApproval | None = None
    """None: ask when the task's approval policy asks (on-request), else run without asking."""

    @property
    def transport(self) -> str:
        """ "stdio" or "http"."""
        return "http" if self.url else "stdio"

    def offers(self, tool: str) -> bool:
        """Whether the tool passes `enabled_tools` / `disabled_tools`."""
        if self.enabled_tools is not None and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools


_STRINGS = ("command", "cwd", "url", "bearer_token_env_var")
_STRING_LISTS = ("args", "disabled_tools", "enabled_tools")
_STRING_TABLES = ("env", "http_headers")
_TIMEOUTS = ("startup_timeout_sec", "tool_timeout_sec")


def parse_mcp_servers(
    value: Any, source: str, known: dict[str, McpServerConfig] | None = None
) -> dict[str, McpServerConfig]:
    """The servers of an `mcp_servers` table, merged over `known` (a profile or -c refines a server)."""
    if not isinstance(value, dict):
        raise McpConfigError(f"{source}: key 'mcp_servers': expected a table ([mcp_servers.NAME])")
    servers = dict(known or {})
    for name, table in value.items():
        servers[name] = parse_mcp_server(name, table, source, servers.get(name))
    return servers


def parse_mcp_server(
    name: str, table: Any, source: str, base: McpServerConfig | None = None
) -> McpServerConfig:
    """One [mcp_servers.NAME] table; `base` holds what an earlier layer set for the same server."""
    where = f"{source}: [mcp_servers.{name}]"
    if not _NAME_RE.match(name):
        raise McpConfigError(f"{where}: a server name may use letters, digits, '_' and '-' only")
    if not isinstance(table, dict):
        raise McpConfigError(f"{where}: expected a table")
    server = _copy(base) if base is not None else McpServerConfig(name)
    for key, item in table.items():
        _set(server, key, item, where)
    if server.command and server.url:
        raise McpConfigError(f"{where}: give either 'command' (stdio) or 'url' (streamable HTTP), not both")
    if not server.command and not server.url:
        raise McpConfigError(f"{where}: needs 'command' (a stdio server) or 'url' (a streamable HTTP server)")
    if server.url and not server.url.startswith(("http://", "https://")):
        raise McpConfigError(f"{where}: key 'url': expected an http:// or https:// URL, got {server.url!r}")
    return server


def _set(server: McpServerConfig, key: str, item: Any, where: str) -> None:
    if key in _STRINGS:
        if not isinstance(item, str):
            raise McpConfigError(f"{where}: key '{key}': expected a string, got {item!r}")
        setattr(server, key, item)
    elif key in _STRING_LISTS:
        if not isinstance(item, list) or not all(isinstance(x, str) for x in item):
            raise McpConfigError(f"{where}: key '{key}': expected a list of strings, got {item!r}")
        setattr(server, key, list(item))
    elif key in _STRING_TABLES:
        if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
            raise McpConfigError(f"{where}: key '{key}': expected a table of NAME = \"value\"")
        setattr(server, key, dict(item))
    elif key in _TIMEOUTS:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise McpConfigError(f"{where}: key '{key}': expected a number of seconds, got {item!r}")
        if not math.isfinite(item) or item <= 0:
            raise McpConfigError(f"{where}: key '{key}': must be greater than 0, got {item}")
        setattr(server, key, float(item))
    elif key == "enabled":
        if not isinstance(item, bool):
            raise McpConfigError(f"{where}: key 'enabled': expected true or false, got {item!r}")
        server.enabled = item
    elif key == "approval":
        if item not in MCP_APPROVALS:
            raise McpConfigError(
                f"{where}: key 'approval': {item!r} is not one of {', '.join(MCP_APPROVALS)}"
            )
        server.approval = item
    else:
        raise McpConfigError(f"{where}: unknown key '{key}'")


def _copy(server: McpServerConfig) -> McpServerConfig:
    return McpServerConfig(
        name=server.name,
        command=server.command,
        args=list(server.args),
        env=dict(server.env),
        cwd=server.cwd,
        url=server.url,
        bearer_token_env_var=server.bearer_token_env_var,
        http_headers=dict(server.http_headers),
        enabled_tools=list(server.enabled_tools) if server.enabled_tools is not None else None,
        disabled_tools=list(server.disabled_tools),
        startup_timeout_sec=server.startup_timeout_sec,
        tool_timeout_sec=server.tool_timeout_sec,
        enabled=server.enabled,
        approval=server.approval,
    )
