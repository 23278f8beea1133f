"""Docker sandbox latency against the real engine, with budgets.

    .venv/bin/python bench/bench_sandbox.py [--runs 10] [--exec-runs 30] [--setup-seconds 20]

Measures:
- ready: DockerSandbox.start() until a command can run (container created and running), median of N;
  also the first `true` right after it.
- eight: 8 sandboxes started at once, time until all are ready.
- exec overhead: DockerSandbox.exec(["true"]) vs a bare `docker exec <id> true` subprocess in the
  same container, interleaved, medians and their ratio.
- cached env: ensure_env_image + start with a `sleep N` setup script, cold vs cached.

Writes bench/results/sandbox.json: each measure with its budget and pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.engine import shared_client
from codex_tui.sandbox.image import DEFAULT_IMAGE, ensure_default_image, ensure_env_image

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox.json"
BUDGET_READY_S = 0.6
BUDGET_EIGHT_S = 2.5
BUDGET_EXEC_RATIO = 1.2
BUDGET_CACHE_SPEEDUP = 10.0


def sandbox(workspace: Path, name: str, image: str = DEFAULT_IMAGE) -> DockerSandbox:
    """An unstarted sandbox on the bench workspace."""
    return DockerSandbox(SandboxSpec(task_id=f"bench-{name}", workspace=workspace, image=image))


async def measure_ready(workspace: Path, runs: int) -> dict[str, Any]:
    """Median time from start() to a running container, and to the end of a first `true`."""
    ready: list[float] = []
    first_command: list[float] = []
    for i in range(runs):
        box = sandbox(workspace, f"ready-{i}")
        started = time.perf_counter()
        await box.start()
        ready.append(time.perf_counter() - started)
        await box.exec(["true"])
        first_command.append(time.perf_counter() - started)
        await box.stop()
    median = statistics.median(ready)
    return {
        "runs": runs,
        "median_s": round(median, 4),
        "max_s": round(max(ready), 4),
        "median_with_first_command_s": round(statistics.median(first_command), 4),
        "budget_s": BUDGET_READY_S,
        "pass": median <= BUDGET_READY_S,
    }


async def measure_eight(workspace: Path) -> dict[str, Any]:
    """Eight sandboxes started together: time until every one is ready."""
    boxes = [sandbox(workspace, f"eight-{i}") for i in range(8)]
    started = time.perf_counter()
    await asyncio.gather(*(box.start() for box in boxes))
    all_ready = time.perf_counter() - started
    await asyncio.gather(*(box.exec(["true"]) for box in boxes))
    with_command = time.perf_counter() - started
    await asyncio.gather(*(box.stop() for box in boxes))
    return {
        "all_ready_s": round(all_ready, 4),
        "all_ran_first_command_s": round(with_command, 4),
        "budget_s": BUDGET_EIGHT_S,
        "pass": all_ready <= BUDGET_EIGHT_S,
    }


async def measure_exec_overhead(workspace: Path, runs: int) -> dict[str, Any]:
    """DockerSandbox.exec vs a bare `docker exec` of the same command in the same container."""
    box = sandbox(workspace, "exec")
    await box.start()
    ours: list[float] = []
    bare: list[float] = []
    try:
        for _ in range(3):
            await box.exec(["true"])
        for _ in range(runs):
            started = time.perf_counter()
            result = await box.exec(["true"])
            ours.append(time.perf_counter() - started)
            assert result.exit_code == 0
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec("docker", "exec", str(box.container_id), "true")
            await proc.wait()
            bare.append(time.perf_counter() - started)
    finally:
        await box.stop()
    ratio = statistics.median(ours) / statistics.median(bare)
    return {
        "runs": runs,
        "sandbox_exec_median_ms": round(statistics.median(ours) * 1000, 1),
        "docker_exec_cli_median_ms": round(statistics.median(bare) * 1000, 1),
        "ratio": round(ratio, 3),
        "budget_ratio": BUDGET_EXEC_RATIO,
        "pass": ratio <= BUDGET_EXEC_RATIO,
    }


async def measure_cached_env(workspace: Path, setup_seconds: int) -> dict[str, Any]:
    """ensure_env_image + start: a cold setup (sleep N) against the cached image."""
    repo = workspace / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "requirements.txt").write_text("bench==1\n")
    script = f"# bench {uuid.uuid4().hex}\nsleep {setup_seconds}\necho ready > /opt/bench-marker\n"
    timings: list[float] = []
    tag = ""
    for _ in range(2):
        started = time.perf_counter()
        tag = await ensure_env_image(DEFAULT_IMAGE, repo, script)
        box = sandbox(workspace, "env", image=tag)
        await box.start()
        timings.append(time.perf_counter() - started)
        await box.stop()
    await asyncio.to_thread(_remove_image, tag)
    speedup = timings[0] / timings[1]
    return {
        "setup_seconds": setup_seconds,
        "cold_s": round(timings[0], 3),
        "cached_s": round(timings[1], 4),
        "speedup": round(speedup, 1),
        "budget_speedup": BUDGET_CACHE_SPEEDUP,
        "pass": speedup >= BUDGET_CACHE_SPEEDUP,
    }


def _remove_image(tag: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        shared_client().images.remove(tag, force=True)


def engine_version() -> str:
    """The engine's version string for the record."""
    return str(shared_client().version().get("Version", "?"))


async def main(runs: int, exec_runs: int, setup_seconds: int) -> dict[str, Any]:
    """Run every measure and return the results document."""
    await ensure_default_image()
    with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
        workspace = Path(tmp)
        results: dict[str, Any] = {"engine": engine_version(), "image": DEFAULT_IMAGE}
        results["ready"] = await measure_ready(workspace, runs)
        results["eight_at_once"] = await measure_eight(workspace)
        results["exec_overhead"] = await measure_exec_overhead(workspace, exec_runs)
        results["cached_env"] = await measure_cached_env(workspace, setup_seconds)
    results["pass"] = all(v["pass"] for v in results.values() if isinstance(v, dict))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--exec-runs", type=int, default=30)
    parser.add_argument("--setup-seconds", type=int, default=20)
    args = parser.parse_args()
    document = asyncio.run(main(args.runs, args.exec_runs, args.setup_seconds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    raise SystemExit(0 if document["pass"] else 1)
