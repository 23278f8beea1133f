"""Helpers for the task manager tests: a config on the scripted server, scenarios, an event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from codex_tui import protocol as p
from codex_tui.config import Config, ModelProvider
from codex_tui.tasks.manager import TaskManager

PROVIDER = "scripted"


def scripted_config(home: Path, base_url: str, **overrides: Any) -> Config:
    """A config whose provider is the scripted server (no key), local sandbox, no retries."""
    provider = ModelProvider(PROVIDER, base_url, None, "responses", False)
    settings: dict[str, Any] = {
        "home": home,
        "model": "scripted:default",
        "model_provider": PROVIDER,
        "model_providers": {PROVIDER: provider},
        "sandbox_backend": "local",
        "request_max_retries": 0,
        "max_parallel_tasks": 4,
    }
    settings.update(overrides)
    return Config(**settings)


def add_file_patch(path: str, *lines: str) -> str:
    """An apply_patch envelope that adds one file."""
    body = "".join(f"+{line}\n" for line in lines)
    return f"*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\n"


def shell_call(*argv: str, **extra: Any) -> dict[str, Any]:
    """A scripted `shell` tool call."""
    return {"name": "shell", "arguments": {"command": list(argv), **extra}}


def patch_call(text: str) -> dict[str, Any]:
    """A scripted `apply_patch` tool call."""
    return {"name": "apply_patch", "input": text}


def scenario(name: str, *turns: dict[str, Any]) -> dict[str, Any]:
    """A scenario picked by the model name `scripted:<name>`."""
    return {"name": name, "turns": list(turns)}


def adds_file(name: str, path: str, *, delay_ms: float = 0, final: str = "done") -> dict[str, Any]:
    """A two-response scenario: add `path` (after `delay_ms`), then answer `final`."""
    return scenario(
        name,
        {"delay_ms": delay_ms, "tool_calls": [patch_call(add_file_patch(path, f"made by {name}"))]},
        {"text": final},
    )


class EventLog:
    """Collects every event a manager emits; a subscriber callback."""

    def __init__(self) -> None:
        self.events: list[p.Event] = []

    def __call__(self, event: p.Event) -> None:
        """Record one event."""
        self.events.append(event)

    def of(self, task_id: str, type_: str | None = None) -> list[p.Event]:
        """Events of a task (of one type)."""
        return [e for e in self.events if e.task_id == task_id and (type_ is None or e.type == type_)]

    def statuses(self, task_id: str) -> list[str]:
        """The statuses a task went through, in order."""
        return [str(e.data["status"]) for e in self.of(task_id, p.TASK_STATUS)]

    def items(self, task_id: str, kind: str, type_: str = p.ITEM_COMPLETED) -> list[dict[str, Any]]:
        """Items of one kind (agent_message, command_execution, …) from item events."""
        return [e.data["item"] for e in self.of(task_id, type_) if e.data["item"].get("type") == kind]

    async def until(self, predicate: Callable[[p.Event], bool], timeout: float = 20.0) -> p.Event:
        """Wait for the first event (already seen or coming) that matches."""
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("no matching event")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def started_manager(
    config: Config, repo: Path, **kwargs: Any
) -> AsyncIterator[tuple[TaskManager, EventLog]]:
    """A started TaskManager with an EventLog subscribed (live events only); closed afterwards."""
    manager = TaskManager(config, repo=repo, **kwargs)
    await manager.start()
    log = EventLog()
    manager.subscribe(log, replay=False)
    try:
        yield manager, log
    finally:
        await manager.close()


async def submit(manager: TaskManager, prompt: str, **data: Any) -> list[str]:
    """Submit a task and return its ids (asserting the submission was accepted)."""
    result = await manager.submit(p.Op(p.OP_SUBMIT, data={"prompt": prompt, **data}))
    assert result.ok, result.message
    return list(result.data["task_ids"])


def assert_rollout_holds(cfg: Config, task_id: str, log: EventLog) -> None:
    """Every event the front end saw is in the task's rollout file, in order, nothing missing."""
    rollout = cfg.data_dir / "rollouts" / f"{task_id}.jsonl"
    stored = [p.Event.from_json(line) for line in rollout.read_text().splitlines()]
    seen = [e for e in log.of(task_id) if e.seq >= 0]  # transient events (sandbox.usage) are never stored
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert [(e.seq, e.type, e.data) for e in stored] == [(e.seq, e.type, e.data) for e in seen]
