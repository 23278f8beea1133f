"""Agent-loop overhead: wall time per turn minus the time spent inside the model client.

Runs the real scripted server (zero delays) and a local sandbox, and drives one agent through N
turns of (update_plan tool call -> final answer). The server runs in its own thread and the model
client is wrapped by a stopwatch that counts only the time spent inside its stream (request,
server, SSE parsing), so what is left is the agent's own work: building requests, batching
deltas, running update_plan, bookkeeping, events.

    .venv/bin/python bench/bench_agent.py [--turns 60] [--wire responses|chat]

Writes bench/results/agent.json: {median_ms, p95_ms, budget_ms: 5, pass, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from codex_tui.agent.loop import Agent, AgentSettings
from codex_tui.models.base import ModelClient, ModelEvent, ModelRequest
from codex_tui.models.scripted_testing import scripted_client
from codex_tui.protocol import ApprovalDecision
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.scripted import ScriptedServer

BUDGET_MS = 5.0
RESULTS = Path(__file__).resolve().parent / "results" / "agent.json"
PLAN = {"plan": [{"step": "Look around", "status": "in_progress"}, {"step": "Answer", "status": "pending"}]}


class StopwatchClient:
    """Wraps a real model client and adds up the time spent inside its stream."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield the inner client's events, timing only the waits for them."""
        self.calls += 1
        events = aiter(self.inner.stream(request))
        while True:
            started = time.perf_counter()
            try:
                event = await anext(events)
            except StopAsyncIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield event


def scenario(turns: int) -> dict[str, Any]:
    """Per user turn: an update_plan call, then a short final answer."""
    script: list[dict[str, Any]] = []
    for i in range(turns):
        script.append({"reasoning": "Planning.", "tool_calls": [{"name": "update_plan", "arguments": PLAN}]})
        script.append({"text": f"Done with request {i}: nothing else to change.", "chunk_chars": 4})
    return {"name": "bench", "turns": script}


async def approve(_request: dict[str, Any]) -> ApprovalDecision:
    """Never asked in this bench."""
    return "approve"


async def measure(turns: int, warmup: int, wire: str) -> dict[str, Any]:
    """Run warmup + turns turns and return overhead statistics in milliseconds."""
    total = warmup + turns
    events: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        server = ScriptedServer([scenario(total)]).start_in_thread()
        try:
            client = StopwatchClient(scripted_client(server.base_url, wire))
            sandbox = LocalSandbox(SandboxSpec(task_id="bench", workspace=workspace), use_bwrap=False)
            await sandbox.start()
            agent = Agent(
                task_id="bench",
                client=client,
                sandbox=sandbox,
                workspace=workspace,
                settings=AgentSettings(model="scripted:bench"),
                emit=lambda kind, data: events.append((kind, data)),
                request_approval=approve,
            )
            per_turn: list[float] = []
            per_call: list[float] = []
            for i in range(total):
                client_before, calls_before = client.seconds, client.calls
                started = time.perf_counter()
                result = await agent.run_turn(f"request {i}")
                wall = time.perf_counter() - started
                if result.status != "completed":
                    raise SystemExit(f"turn {i} did not complete: {result.error}")
                overhead_ms = (wall - (client.seconds - client_before)) * 1000
                if i >= warmup:
                    per_turn.append(overhead_ms)
                    per_call.append(overhead_ms / (client.calls - calls_before))
            await sandbox.stop()
        finally:
            server.stop()
    per_turn.sort()
    median = statistics.median(per_turn)
    p95 = per_turn[min(len(per_turn) - 1, int(len(per_turn) * 0.95))]
    return {
        "bench": "agent loop overhead per turn (update_plan call + final answer; model time excluded)",
        "wire": wire,
        "turns": turns,
        "model_calls_per_turn": 2,
        "median_ms": round(median, 3),
        "p95_ms": round(p95, 3),
        "per_model_call_median_ms": round(statistics.median(per_call), 3),
        "budget_ms": BUDGET_MS,
        "pass": median < BUDGET_MS,
        "events": len(events),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print and write the results; exit 1 when over budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--wire", choices=("responses", "chat"), default="responses")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.turns, args.warmup, args.wire))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
