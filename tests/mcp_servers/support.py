"""Configs for the test MCP servers, and a streamable HTTP server run in a subprocess."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codex_tui.config_mcp import McpServerConfig

SERVERS = Path(__file__).resolve().parent


def stdio_config(name: str, script: str = "demo_server.py", **kw: object) -> McpServerConfig:
    """A stdio server running one of this folder's scripts with this Python."""
    return McpServerConfig(name, command=sys.executable, args=[str(SERVERS / script)], **kw)  # type: ignore[arg-type]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_server() -> Iterator[str]:
    """The demo server over streamable HTTP; yields its URL once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS / "demo_server.py"), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise RuntimeError("the HTTP MCP server exited during start-up")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
