"""`codex-tui mcp list`: the configured MCP servers, started once to show their state and tools."""

from __future__ import annotations

import argparse
import json
from typing import Any

from codex_tui.boundary.terminal import strip_controls
from codex_tui.cli_common import resolve_config, run, say
from codex_tui.tasks.mcp_servers import McpServerPool


def mcp_parser() -> argparse.ArgumentParser:
    """`codex-tui mcp list [--json]`."""
    parser = argparse.ArgumentParser(prog="codex-tui mcp", description="MCP servers ([mcp_servers.NAME])")
    parser.add_argument("action", choices=("list",))
    parser.add_argument("--json", action="store_true", help="one JSON object with every server")
    parser.add_argument("--profile", help="a [profiles.NAME] table of config.toml")
    parser.add_argument(
        "-c", "--config", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key (TOML value)",
    )  # fmt: skip
    return parser


def cmd_mcp(args: argparse.Namespace) -> int:
    """Start every enabled server, print name, transport, state and tools, stop them; 1 if one failed."""
    cfg = resolve_config(args)
    rows = run(server_status(McpServerPool(cfg.mcp_servers)))
    if args.json:
        print(json.dumps({"servers": rows}, ensure_ascii=False))
    elif not rows:
        say("no MCP servers configured: add [mcp_servers.NAME] tables to config.toml (see the README)")
    else:
        for row in rows:
            say(format_row(row))
    return 1 if any(row["state"] == "failed" for row in rows) else 0


async def server_status(pool: McpServerPool) -> list[dict[str, Any]]:
    """Start the pool's servers, read their status, and stop them again."""
    try:
        await pool.start_all()
        return pool.status()
    finally:
        await pool.close()


def format_row(row: dict[str, Any]) -> str:
    """One server as text: `name · transport · state`, then its tools or its error."""
    head = f"{row['name']} · {row['transport']} · {row['state']} · {row['target']}"
    if row["state"] == "failed":
        return strip_controls(f"{head}\n    {row['error']}")
    tools = ", ".join(row["tools"]) or "(no tools)"
    return strip_controls(f"{head}\n    tools: {tools}")
