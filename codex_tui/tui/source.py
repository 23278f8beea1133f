"""What the TUI needs from the task manager (events in, operations out), and a rollout replayer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from codex_tui.protocol import OP_GET_DIFF, OP_MCP_STATUS, TASK_CREATED, TASK_STATUS, Event, Op, OpResult
from codex_tui.tasks.store import iter_rollout

EventCallback = Callable[[Event], None]
REPLAY_NO_MCP = "MCP servers are not available in a replay"


class TaskSource(Protocol):
    """The task manager as the TUI sees it: only events and operations, never its objects."""

    async def start(self) -> None:
        """Get ready to accept operations."""
        ...

    async def close(self) -> None:
        """Stop tasks and flush what must be saved."""
        ...

    async def submit(self, op: Op) -> OpResult:
        """Carry out one operation."""
        ...

    def subscribe(self, callback: EventCallback, *, replay: bool = True) -> Callable[[], None]:
        """Receive every event (after the stored ones when `replay`); returns unsubscribe."""
        ...

    def tasks(self) -> list[dict[str, Any]]:
        """Plain summaries of the tasks not archived."""
        ...


class RolloutReplay:
    """A read-only source that replays saved events (and saved patches) as if they were live."""

    def __init__(self, events: list[Event], patches: dict[str, str] | None = None) -> None:
        self.events = list(events)
        self.patches = dict(patches or {})

    @classmethod
    def from_files(cls, paths: list[Path]) -> RolloutReplay:
        """Read rollout files (one task each, JSON lines), oldest task first; bad lines are skipped."""
        per_task: list[list[Event]] = []
        for path in paths:
            events = list(iter_rollout(path))
            if events:
                per_task.append(sorted(events, key=lambda e: e.seq))
        per_task.sort(key=lambda evs: evs[0].ts)
        return cls([e for evs in per_task for e in evs])

    @classmethod
    def from_session(cls, path: Path) -> RolloutReplay:
        """Read a saved session: `{"events": [...], "patches": {task_id: patch}}`."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        events = [Event.from_json(json.dumps(e)) for e in raw.get("events", [])]
        return cls(events, {str(k): str(v) for k, v in (raw.get("patches") or {}).items()})

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to stop."""

    async def submit(self, op: Op) -> OpResult:
        """Only the saved diffs can be read; a replay cannot change anything."""
        if op.type == OP_GET_DIFF and op.task_id in self.patches:
            return OpResult(True, "saved diff", {"patch": self.patches[op.task_id]})
        if op.type == OP_MCP_STATUS:
            return OpResult(False, REPLAY_NO_MCP)
        return OpResult(False, "this is a read-only replay of saved rollouts")

    def subscribe(self, callback: EventCallback, *, replay: bool = True) -> Callable[[], None]:
        """Deliver every stored event soon after this returns."""
        cancelled = False

        async def deliver() -> None:
            for event in self.events if replay else []:
                if cancelled:
                    return
                callback(event)

        asyncio.get_running_loop().create_task(deliver())

        def unsubscribe() -> None:
            nonlocal cancelled
            cancelled = True

        return unsubscribe

    def tasks(self) -> list[dict[str, Any]]:
        """Summaries built from the replayed events."""
        out: dict[str, dict[str, Any]] = {}
        for event in self.events:
            if event.type == TASK_CREATED:
                out[event.task_id] = {"id": event.task_id, "title": event.data.get("title", ""), "status": ""}
            elif event.type == TASK_STATUS and event.task_id in out:
                out[event.task_id]["status"] = event.data.get("status", "")
        return list(out.values())
