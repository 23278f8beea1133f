"""A model stream that completes, is closed or is cancelled leaves no generator for the GC to finish.

An async generator left suspended in a reference cycle is finalised whenever the garbage collector
runs, possibly after its event loop has closed ("Exception ignored in <async_generator …>"). Every
way a stream can end must finish the whole chain (ours, the SDK's and httpx's) while the loop runs.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import AsyncGeneratorType
from typing import Any

import pytest

from codex_tui.models.base import ModelRequest, TextDelta, ToolSpec
from codex_tui.models.scripted_testing import scripted_client
from codex_tui.scripted import ScriptedServer
from tests.test_agent_harness import agent_harness

WIRES = ["responses", "chat"]
SLOW_TURN = {"text": "word " * 400, "chunk_chars": 5, "chunk_delay_ms": 2}


class GeneratorTracker:
    """Remembers every async generator first iterated while it is installed."""

    def __init__(self) -> None:
        self.seen: list[weakref.ref[AsyncGeneratorType[Any, Any]]] = []

    def suspended(self) -> list[str]:
        """Generators still alive with a frame: not finished, waiting for someone (or the GC)."""
        alive = [ref() for ref in self.seen]
        return [g.ag_code.co_qualname for g in alive if g is not None and g.ag_frame is not None]

    async def settle(self) -> list[str]:
        """Let the loop run the finalisers it already scheduled, then list what is still suspended."""
        for _ in range(50):
            if not self.suspended():
                break
            await asyncio.sleep(0)
        return self.suspended()


@contextmanager
def tracked_generators() -> Iterator[GeneratorTracker]:
    """Install a first-iteration hook on top of the running loop's own hooks."""
    tracker = GeneratorTracker()
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def remember(agen: AsyncGeneratorType[Any, Any]) -> None:
        tracker.seen.append(weakref.ref(agen))
        if firstiter is not None:
            firstiter(agen)

    sys.set_asyncgen_hooks(firstiter=remember, finalizer=finalizer)
    try:
        yield tracker
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)


def request() -> ModelRequest:
    history = [{"type": "message", "role": "user", "content": [{"type": "text", "text": "talk"}]}]
    shell = ToolSpec("shell", "Run a command", {"type": "object", "properties": {}})
    return ModelRequest(model="scripted:s", instructions="Be brief.", history=history, tools=[shell])


@pytest.mark.parametrize("wire", WIRES)
async def test_completed_stream_finishes_every_generator(wire: str) -> None:
    async with ScriptedServer([{"name": "s", "turns": [SLOW_TURN]}]) as srv:
        client = scripted_client(srv.base_url, wire)
        with tracked_generators() as tracker:
            events = [event async for event in client.stream(request())]
            assert tracker.seen and await tracker.settle() == []
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == SLOW_TURN["text"]


@pytest.mark.parametrize("wire", WIRES)
async def test_stream_closed_by_its_consumer_finishes_every_generator(wire: str) -> None:
    async with ScriptedServer([{"name": "s", "turns": [SLOW_TURN]}]) as srv:
        client = scripted_client(srv.base_url, wire)
        with tracked_generators() as tracker:
            stream = client.stream(request())
            assert isinstance(await anext(aiter(stream)), TextDelta)
            await stream.aclose()  # type: ignore[attr-defined]
            assert await tracker.settle() == []


@pytest.mark.parametrize("wire", WIRES)
async def test_cancelled_stream_finishes_every_generator(wire: str) -> None:
    async with ScriptedServer([{"name": "s", "turns": [SLOW_TURN]}]) as srv:
        client = scripted_client(srv.base_url, wire)
        first = asyncio.Event()

        async def consume() -> None:
            async for _event in client.stream(request()):
                first.set()

        with tracked_generators() as tracker:
            reader = asyncio.create_task(consume())
            await first.wait()
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            assert await tracker.settle() == []


@pytest.mark.parametrize("wire", WIRES)
async def test_interrupting_the_agent_mid_answer_finishes_every_generator(git_repo: Path, wire: str) -> None:
    scenario = {"name": "slow", "turns": [SLOW_TURN, {"text": "next"}]}
    async with agent_harness(git_repo, [scenario], wire=wire) as h:
        with tracked_generators() as tracker:
            turn = asyncio.create_task(h.agent.run_turn("talk"))
            await h.wait_for("message.delta")
            h.agent.interrupt()
            assert (await turn).status == "interrupted"
            assert await tracker.settle() == []
        assert (await h.agent.run_turn("go on")).status == "completed"
