"""Docker sandbox latency against the real engine, with budgets.

    .venv/bin/python bench/bench_sandbox.py [--runs 10] [--exec-runs 30] [--setup-seconds 20]

Measures:
- ready: a task's start-up as the task manager does it: the checkout's disk limit (sandbox/disk.py:
  its own filesystem as root), its git checkout (Workspace.create of a repository with uncommitted
  changes) and DockerSandbox.start() until a command can run; median of N, with the parts; also the
  first command right after it.
- eight: 8 task start-ups (checkout + container) at once, time until all are ready.
- exec overhead: DockerSandbox.exec(["true"]) vs a bare `docker exec <id> true` subprocess in the
  same container, interleaved, medians and their ratio (the budget); for reference also the raw
  SDK calls (exec_create + exec_start, no streaming, no kill support) in the same run.
- cached env: ensure_env_image + start with a `sleep N` setup script, cold vs cached.

Writes bench/results/sandbox.json: each measure with its budget and pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.sandbox import disk
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.disk import DiskQuota
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.engine import shared_client
from codex_tui.sandbox.env_image import ensure_env_image
from codex_tui.sandbox.image import DEFAULT_IMAGE, ensure_default_image
from codex_tui.workspace.git import Workspace

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox.json"
BUDGET_READY_S = 0.6
BUDGET_EIGHT_S = 2.5
BUDGET_EXEC_RATIO = 1.2
BUDGET_CACHE_SPEEDUP = 10.0
REPO_FILES = 200
DISK_MB = 10240


def sandbox(
    workspace: Path, name: str, image: str = DEFAULT_IMAGE, mounts: list[Path] | None = None
) -> DockerSandbox:
    """An unstarted sandbox on a workspace (with the checkout's read-only mounts)."""
    spec = SandboxSpec(
        task_id=f"bench-{name}", workspace=workspace, image=image, extra_ro_mounts=mounts or []
    )
    return DockerSandbox(spec)


def sandbox_folder(path: Path) -> Path:
    """An empty folder commands can enter and write: the sandbox's uid gets it when we are root."""
    path.mkdir(parents=True, exist_ok=True)
    if needs_chown():
        os.chown(path, *sandbox_ids())
    return path


def make_repo(path: Path, files: int = REPO_FILES) -> Path:
    """A user repository: `files` committed files, one modified and one untracked."""
    path.mkdir(parents=True)
    for i in range(files):
        target = path / f"pkg{i % 10}" / f"mod{i}.py"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"def f{i}():\n    return {i}\n" * 20)
    git = ["git", "-C", str(path), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    (path / "pkg0" / "mod0.py").write_text("def f0():\n    return 'changed'\n")
    (path / "notes.txt").write_text("untracked\n")
    return path


@dataclass
class Started:
    """One task started for a measure: its disk, checkout and container, and what each part took."""

    quota: DiskQuota
    workspace: Workspace
    box: DockerSandbox
    disk_s: float
    checkout_s: float
    container_s: float

    async def remove(self, root: Path) -> None:
        """Stop the container, release the disk (its files go with it), delete the checkout."""
        await self.box.stop()
        await disk.release(self.workspace.path, root / "disks")
        await self.workspace.remove()


async def start_task(repo: Path, root: Path, name: str) -> Started:
    """Disk limit + checkout + container, as a task starts, each part timed."""
    marks = [time.perf_counter()]
    quota = await disk.provision(root / name, root / "disks", DISK_MB)
    marks.append(time.perf_counter())
    workspace = await Workspace.create(repo, root / name, f"bench-{name}")
    marks.append(time.perf_counter())
    box = sandbox(workspace.path, name, mounts=workspace.extra_ro_mounts)
    await box.start()
    marks.append(time.perf_counter())
    disk_s, checkout_s, container_s = (b - a for a, b in itertools.pairwise(marks))
    return Started(quota, workspace, box, disk_s, checkout_s, container_s)


async def measure_ready(root: Path, runs: int) -> dict[str, Any]:
    """Median time from nothing to checkout made + container running, and to the end of a first `true`."""
    repo = make_repo(root / "ready-repo")
    ready: list[float] = []
    tasks: list[Started] = []
    first_command: list[float] = []
    for i in range(runs):
        started = time.perf_counter()
        task = await start_task(repo, root, f"ready-{i}")
        ready.append(time.perf_counter() - started)
        tasks.append(task)
        assert (await task.box.exec(["git", "status", "--porcelain"])).exit_code == 0
        first_command.append(time.perf_counter() - started)
        await task.remove(root)
    median = statistics.median(ready)
    return {
        "runs": runs,
        "repo": f"{REPO_FILES} committed files, one modified, one untracked",
        "disk": tasks[0].quota.describe(),
        "median_s": round(median, 4),
        "max_s": round(max(ready), 4),
        "median_disk_s": round(statistics.median(t.disk_s for t in tasks), 4),
        "median_checkout_s": round(statistics.median(t.checkout_s for t in tasks), 4),
        "median_container_s": round(statistics.median(t.container_s for t in tasks), 4),
        "median_with_first_command_s": round(statistics.median(first_command), 4),
        "first_command": "git status --porcelain",
        "budget_s": BUDGET_READY_S,
        "pass": median <= BUDGET_READY_S,
    }


async def measure_eight(root: Path) -> dict[str, Any]:
    """Eight task start-ups (checkout + container) together: time until every one is ready."""
    repo = make_repo(root / "eight-repo")
    started = time.perf_counter()
    tasks = await asyncio.gather(*(start_task(repo, root, f"eight-{i}") for i in range(8)))
    all_ready = time.perf_counter() - started
    await asyncio.gather(*(task.box.exec(["true"]) for task in tasks))
    with_command = time.perf_counter() - started
    await asyncio.gather(*(task.remove(root) for task in tasks))
    return {
        "all_ready_s": round(all_ready, 4),
        "all_ran_first_command_s": round(with_command, 4),
        "budget_s": BUDGET_EIGHT_S,
        "pass": all_ready <= BUDGET_EIGHT_S,
    }


async def measure_exec_overhead(workspace: Path, runs: int) -> dict[str, Any]:
    """DockerSandbox.exec vs a bare `docker exec` of the same command in the same container."""
    box = sandbox(sandbox_folder(workspace / "exec"), "exec")
    await box.start()
    ours: list[float] = []
    bare: list[float] = []
    raw: list[float] = []
    api = shared_client().api
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
            started = time.perf_counter()
            await asyncio.to_thread(_raw_exec, api, str(box.container_id))
            raw.append(time.perf_counter() - started)
    finally:
        await box.stop()
    ratio = statistics.median(ours) / statistics.median(bare)
    return {
        "runs": runs,
        "sandbox_exec_median_ms": round(statistics.median(ours) * 1000, 1),
        "docker_exec_cli_median_ms": round(statistics.median(bare) * 1000, 1),
        "raw_sdk_exec_median_ms": round(statistics.median(raw) * 1000, 1),
        "ratio": round(ratio, 3),
        "ratio_to_raw_sdk": round(statistics.median(ours) / statistics.median(raw), 3),
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


def _raw_exec(api: docker.APIClient, container_id: str) -> None:
    """The least the engine needs for one command: create the exec, run it, read its exit code."""
    exec_id = api.exec_create(container_id, ["true"])["Id"]
    api.exec_start(exec_id)
    assert api.exec_inspect(exec_id)["ExitCode"] == 0


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
        try:
            results["ready"] = await measure_ready(workspace, runs)
            results["eight_at_once"] = await measure_eight(workspace)
            results["exec_overhead"] = await measure_exec_overhead(workspace, exec_runs)
            results["cached_env"] = await measure_cached_env(workspace, setup_seconds)
        finally:
            await disk.sweep(workspace, keep=[])
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
