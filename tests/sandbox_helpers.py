"""Test helpers for tools: the real local sandbox (recording its calls) and a recording ToolContext."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from codex_tui.protocol import ApprovalDecision, SandboxMode
from codex_tui.sandbox.base import ExecResult, OutputCallback, SandboxSpec
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.tools.base import ToolContext
from tests.conftest import give_to_sandbox


@dataclass
class ExecCall:
    """One command the sandbox was asked to run."""

    argv: list[str]
    cwd: str | None
    timeout_s: float
    escalated: bool


class RecordingSandbox:
    """The real local sandbox (bubblewrap when available), plus a record of every command it ran."""

    def __init__(self, workspace: Path, mode: SandboxMode = "auto") -> None:
        self.inner = LocalSandbox(
            SandboxSpec(task_id="test", workspace=give_to_sandbox(workspace), mode=mode)
        )
        self.backend = self.inner.backend
        self.workdir = self.inner.workdir
        self.calls: list[ExecCall] = []

    async def start(self) -> None:
        """Start the local sandbox."""
        await self.inner.start()

    async def stop(self) -> None:
        """Stop the local sandbox."""
        await self.inner.stop()

    def describe(self) -> str:
        """What the local sandbox isolates."""
        return self.inner.describe()

    async def alive(self) -> bool:
        """Whether the wrapped sandbox still runs."""
        return await self.inner.alive()

    async def exec(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        timeout_s: float = 10.0,
        on_output: OutputCallback | None = None,
        env: dict[str, str] | None = None,
        escalated: bool = False,
    ) -> ExecResult:
        """Record the call, then run it in the local sandbox."""
        self.calls.append(ExecCall(list(argv), cwd, timeout_s, escalated))
        return await self.inner.exec(
            argv, cwd=cwd, timeout_s=timeout_s, on_output=on_output, env=env, escalated=escalated
        )


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains `marker` (zombies excluded)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@dataclass
class Recorder:
    """Collects what a tool emits and the approvals it asks for."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    decision: ApprovalDecision = "approve"
    next_id: int = 0

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """The ToolContext.emit callback."""
        self.events.append((type_, data))

    def new_item_id(self) -> str:
        """The ToolContext.new_item_id callback."""
        self.next_id += 1
        return f"item_{self.next_id}"

    async def request_approval(self, data: dict[str, Any]) -> ApprovalDecision:
        """The ToolContext.request_approval callback: answers with `decision`."""
        self.approvals.append(data)
        return self.decision

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """The data of every event of one type, in order."""
        return [data for kind, data in self.events if kind == type_]

    def items(self, type_: str) -> list[dict[str, Any]]:
        """The items of every item.* event of one event type."""
        return [data["item"] for data in self.of_type(type_)]


def make_context(
    workspace: Path,
    sandbox: Any,
    recorder: Recorder,
    *,
    mode: SandboxMode = "auto",
    emit: Callable[[str, dict[str, Any]], None] | None = None,
    request_approval: Callable[[dict[str, Any]], Awaitable[ApprovalDecision]] | None = None,
    **extra: Any,
) -> ToolContext:
    """A ToolContext wired to `recorder` (or to the given callbacks)."""
    return ToolContext(
        sandbox=sandbox,
        workspace=workspace,
        mode=mode,
        emit=emit or recorder.emit,
        new_item_id=recorder.new_item_id,
        request_approval=request_approval or recorder.request_approval,
        **extra,
    )
