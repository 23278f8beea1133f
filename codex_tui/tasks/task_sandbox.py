"""The task's view of its sandbox: failures reported once, and the setup script shown as a command."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from codex_tui.protocol import ITEM_COMMAND, ITEM_COMPLETED, ITEM_STARTED, OUTPUT_DELTA
from codex_tui.sandbox.base import ExecResult, OutputCallback, ResourceUsage, Sandbox, SandboxError, Stream

_setup_ids = itertools.count(1)


class WatchedSandbox:
    """The task's sandbox as the agent sees it: the first SandboxError is reported to the task."""

    def __init__(self, inner: Sandbox, on_error: Callable[[SandboxError], None]) -> None:
        self.inner = inner
        self.on_error = on_error
        self.failed: SandboxError | None = None
        self.backend = inner.backend
        self.workdir = inner.workdir
        self.starting: asyncio.Task[None] | None = None
        """The start in progress (it overlaps loading the model client); commands wait for it."""

    async def start(self) -> None:
        """Start the real sandbox."""
        await self.inner.start()

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
        """Run in the real sandbox; a SandboxError (the sandbox itself died) is reported, then raised."""
        if self.failed is not None:
            raise SandboxError(f"the sandbox is gone ({self.failed})")
        try:
            if self.starting is not None:
                await asyncio.shield(self.starting)
            return await self.inner.exec(
                argv, cwd=cwd, timeout_s=timeout_s, on_output=on_output, env=env, escalated=escalated
            )
        except SandboxError as exc:
            self.failed = exc
            self.on_error(exc)
            raise

    async def stop(self) -> None:
        """Stop the real sandbox."""
        await self.inner.stop()

    async def alive(self) -> bool:
        """False once a command saw the sandbox die, else the real sandbox's answer."""
        return self.failed is None and await self.inner.alive()

    def describe(self) -> str:
        """The real sandbox's description."""
        return self.inner.describe()

    async def usage(self) -> ResourceUsage | None:
        """The real sandbox's meters; None while it starts or after it failed."""
        if self.failed is not None or (self.starting is not None and not self.starting.done()):
            return None
        return await self.inner.usage()


class SetupLog:
    """Shows a repository setup script's run as a command item (only if it actually runs)."""

    def __init__(self, task_id: str, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self.emit = emit
        self.item_id = f"{task_id}-setup-{next(_setup_ids)}"
        self.started = False

    def output(self, stream: Stream, data: bytes) -> None:
        """Forward a chunk of the script's output (starting the item on the first one)."""
        if not self.started:
            self.started = True
            self.emit(ITEM_STARTED, {"item": self._item("in_progress", None)})
        text = data.decode("utf-8", errors="replace")
        self.emit(OUTPUT_DELTA, {"item_id": self.item_id, "stream": stream, "text": text})

    def finish(self, *, failed: bool) -> None:
        """Complete the item when the script ran."""
        if self.started:
            self.emit(ITEM_COMPLETED, {"item": self._item("failed" if failed else "completed", int(failed))})

    def _item(self, status: str, exit_code: int | None) -> dict[str, Any]:
        return {
            "id": self.item_id,
            "type": ITEM_COMMAND,
            "command": "repository setup script",
            "aggregated_output": "",
            "exit_code": exit_code,
            "status": status,
        }
