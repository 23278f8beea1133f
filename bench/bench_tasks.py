"""Benchmark: 8 scripted tasks at once against 1, local sandbox backend.

Each task streams ~1 s of scripted model output around one short shell command. With the model's
latency dominating, running 8 at once should take barely longer than running 1: the budget is a
wall-time ratio 8-vs-1 below 1.5. Writes bench/results/tasks.json; exits 1 when over budget.

    .venv/bin/python bench/bench_tasks.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codex_tui import protocol as p  # noqa: E402
from codex_tui.config import Config, ModelProvider  # noqa: E402
from codex_tui.models.base import HistoryItem, ModelRequest, ToolSpec  # noqa: E402
from codex_tui.models.scripted_testing import collect_events, scripted_client  # noqa: E402
from codex_tui.tasks.manager import TaskManager  # noqa: E402

BUDGET_RATIO = 1.5
PARALLEL = 8
RESULTS = ROOT / "bench" / "results" / "tasks.json"
CHUNK_CHARS = 10
CHUNK_DELAY_MS = 25
TEXT = "Looking at the repository layout before changing anything at all, then reporting back."


def scenario() -> dict[str, object]:
    """~0.5 s of streamed reasoning + a shell call, then ~0.5 s of streamed answer."""
    pace = {"chunk_chars": CHUNK_CHARS, "chunk_delay_ms": CHUNK_DELAY_MS}
    return {
        "name": "bench",
        "turns": [
            {
                **pace,
                "reasoning": TEXT,
                "tool_calls": [{"name": "shell", "arguments": {"command": ["ls", "-la"]}}],
            },
            {**pace, "text": TEXT},
        ],
    }


def make_repo(path: Path) -> Path:
    """A small committed repository for the tasks to check out."""
    path.mkdir(parents=True)
    for i in range(20):
        (path / f"module_{i}.py").write_text(f"VALUE = {i}\n" * 20)
    git = ["git", "-C", str(path), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return path


async def run_batch(config: Config, repo: Path, count: int) -> float:
    """Wall time from submitting `count` tasks to all of them being ready."""
    manager = TaskManager(config, repo=repo, sandbox_backend="local")
    await manager.start()
    try:
        started = time.perf_counter()
        ids: list[str] = []
        for i in range(count):
            result = await manager.submit(
                p.Op(p.OP_SUBMIT, data={"prompt": f"bench task {i}", "model": "scripted:bench"})
            )
            ids += result.data["task_ids"]
        statuses = await asyncio.gather(*(manager.wait_for(i, timeout=120) for i in ids))
        elapsed = time.perf_counter() - started
    finally:
        await manager.close()
    if statuses != ["ready"] * count:
        raise SystemExit(f"bench tasks did not all finish: {statuses}")
    return elapsed


async def model_only(base_url: str) -> float:
    """The two model calls of one task made directly with the wire client: the floor for a task."""
    shell = ToolSpec("shell", "run a command", {"type": "object", "properties": {}})
    user: HistoryItem = {
        "type": "message",
        "role": "user",
        "content": [{"type": "text", "text": "bench task"}],
    }
    call: HistoryItem = {
        "type": "tool_call",
        "call_id": "c1",
        "name": "shell",
        "arguments": "{}",
        "kind": "function",
    }
    result: HistoryItem = {"type": "tool_result", "call_id": "c1", "output": "ok", "kind": "function"}
    client = scripted_client(base_url)
    started = time.perf_counter()
    for history in ([user], [user, call, result]):
        await collect_events(client, ModelRequest("scripted:bench", "", history, [shell]))
    return time.perf_counter() - started


@contextlib.contextmanager
def model_server(folder: Path) -> Iterator[str]:
    """The scripted server in its own process, like a remote model: yields its base URL."""
    path = folder / "bench.json"
    path.write_text(json.dumps(scenario()))
    argv = [sys.executable, "-m", "codex_tui.scripted", "--scenario", str(path)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+/v1)", line)
        if match is None:
            raise SystemExit(f"the scripted server did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


async def measure(runs: int) -> dict[str, object]:
    """Alternate 1-task and 8-task batches `runs` times; median of each."""
    with tempfile.TemporaryDirectory(prefix="codex-tui-bench-") as tmp, model_server(Path(tmp)) as base_url:
        root = Path(tmp)
        repo = make_repo(root / "repo")
        provider = ModelProvider("bench", base_url, None, "responses", False)
        config = Config(
            home=root / "home",
            model="scripted:bench",
            model_provider="bench",
            model_providers={"bench": provider},
            max_parallel_tasks=PARALLEL,
            request_max_retries=0,
        )
        await run_batch(config, repo, 1)  # warm-up: imports, first clone
        floor = statistics.median([await model_only(base_url) for _ in range(runs)])
        singles: list[float] = []
        batches: list[float] = []
        for _ in range(runs):
            singles.append(await run_batch(config, repo, 1))
            batches.append(await run_batch(config, repo, PARALLEL))
    one, many = statistics.median(singles), statistics.median(batches)
    ratio = many / one
    return {
        "benchmark": "tasks",
        "backend": "local",
        "parallel": PARALLEL,
        "model_only_s": round(floor, 3),
        "app_overhead_1_s": round(one - floor, 3),
        "wall_1_s": round(one, 3),
        "wall_8_s": round(many, 3),
        "runs_1_s": [round(x, 3) for x in singles],
        "runs_8_s": [round(x, 3) for x in batches],
        "ratio": round(ratio, 3),
        "budget_ratio": BUDGET_RATIO,
        "ok": ratio < BUDGET_RATIO,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main() -> int:
    """Run the benchmark, write the results, and exit 1 when over budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(measure(args.runs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
