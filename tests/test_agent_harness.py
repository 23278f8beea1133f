"""Shared set-up for agent tests (no tests here): scripted server, real wire client, local sandbox."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tui.agent.loop import Agent, AgentSettings
from codex_tui.models.scripted_testing import scripted_client
from codex_tui.protocol import ApprovalDecision
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.scripted import RecordedRequest, ScriptedServer
from codex_tui.tools import default_tools
from codex_tui.tools.base import Tool
from tests.conftest import give_to_sandbox


@dataclass
class Harness:
    """A running agent with everything it emitted and everything the server received."""

    agent: Agent
    server: ScriptedServer
    repo: Path
    wire: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files_changed: int = 0
    _waiters: list[tuple[Any, asyncio.Future[dict[str, Any]]]] = field(default_factory=list)

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """The agent's emit callback."""
        self.events.append((event_type, data))
        for waiter in list(self._waiters):
            match, future = waiter
            if not future.done() and match(event_type, data):
                future.set_result(data)
                self._waiters.remove(waiter)

    async def wait_for(
        self, event_type: str, item_type: str | None = None, timeout: float = 10
    ) -> dict[str, Any]:
        """Wait until an event of this type (and item type) is emitted."""

        def match(kind: str, data: dict[str, Any]) -> bool:
            return kind == event_type and (item_type is None or data.get("item", {}).get("type") == item_type)

        for kind, data in self.events:
            if match(kind, data):
                return data
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((match, future))
        return await asyncio.wait_for(future, timeout)

    def of(self, event_type: str, item_type: str | None = None) -> list[dict[str, Any]]:
        """Data of the events of one type (and item type), in order."""
        return [
            data
            for kind, data in self.events
            if kind == event_type and (item_type is None or data.get("item", {}).get("type") == item_type)
        ]

    def notes(self) -> list[str]:
        """Messages of note events."""
        return [data["message"] for data in self.of("note")]

    def requests(self) -> list[RecordedRequest]:
        """The model requests the server received."""
        return self.server.model_requests()

    def conversation(self, index: int) -> list[dict[str, Any]]:
        """The wire-level history of one request (Responses `input` or Chat `messages`)."""
        body = self.requests()[index].body
        return list(body["input"] if self.wire == "responses" else body["messages"])

    def instructions(self, index: int) -> str:
        """The instructions of one request."""
        body = self.requests()[index].body
        if self.wire == "responses":
            return str(body["instructions"])
        return str(body["messages"][0]["content"])

    def tool_outputs(self, index: int) -> list[str]:
        """Tool outputs in one request, in order."""
        if self.wire == "responses":
            return [
                str(i.get("output"))
                for i in self.conversation(index)
                if i.get("type") in ("function_call_output", "custom_tool_call_output")
            ]
        return [str(m.get("content")) for m in self.conversation(index) if m.get("role") == "tool"]


async def approve(_request: dict[str, Any]) -> ApprovalDecision:
    """Approve every request (the tests that need a decision make their own)."""
    return "approve"


@asynccontextmanager
async def agent_harness(
    repo: Path,
    scenarios: list[dict[str, Any]],
    *,
    wire: str = "responses",
    model: str | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    tools: list[Tool] | None = None,
    history: list[dict[str, Any]] | None = None,
    max_retries: int = 3,
    on_files_changed: Callable[[], Awaitable[None]] | None = None,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """Start the scripted server, a client for `wire`, a local sandbox on `repo` and an agent."""
    async with ScriptedServer(scenarios) as server:
        client = scripted_client(server.base_url, wire, max_retries=max_retries)
        workspace = SandboxSpec(task_id="t-agent", workspace=give_to_sandbox(repo), mode="auto")
        sandbox = LocalSandbox(workspace, use_bwrap=False)
        await sandbox.start()
        harness_box: list[Harness] = []

        async def files_changed() -> None:
            harness_box[0].files_changed += 1

        agent_settings = AgentSettings(
            model=model or f"scripted:{scenarios[0]['name']}", home=home, **settings
        )
        agent = Agent(
            task_id="t-agent",
            client=client,
            sandbox=sandbox,
            workspace=repo,
            settings=agent_settings,
            emit=lambda t, d: harness_box[0].emit(t, d),
            request_approval=approve,
            cwd=cwd,
            tools=tools if tools is not None else default_tools(agent_settings.mode),
            history=history,
            on_files_changed=on_files_changed or files_changed,
        )
        harness = Harness(agent, server, repo, wire)
        harness_box.append(harness)
        try:
            yield harness
        finally:
            await sandbox.stop()


def write_png(path: Path, width: int = 2, height: int = 2) -> Path:
    """Write a small valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path
