"""Per-task resource meters: sampled off the event loop, published as transient events, shown in the TUI."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from codex_tui import protocol as p
from codex_tui.sandbox import meters
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.sandbox.meters import CpuMeter, DiskMeter, docker_memory
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.usage_sampler import UsageSampler
from codex_tui.tui.state import AppState
from codex_tui.tui.usage_meter import usage_text
from codex_tui.tui.widgets.status_bar import StatusInfo, status_content
from tests.conftest_docker import MakeDockerSandbox
from tests.test_tasks_support import scenario, scripted_config, shell_call, started_manager, submit


def test_cpu_percent_is_cpu_time_over_wall_time_between_two_samples() -> None:
    meter = CpuMeter()
    assert meter.update(10.0, now=100.0) is None, "one sample says nothing yet"
    assert meter.update(11.5, now=101.0) == 150.0, "1.5 CPU seconds in 1 s: one and a half CPUs"
    assert meter.update(0.2, now=102.0) == 0.0, "a new command's tree started from zero: never negative"


def test_memory_leaves_out_the_reclaimable_file_cache_as_docker_stats_does() -> None:
    stats = {"memory_stats": {"usage": 300, "limit": 1000, "stats": {"inactive_file": 100}}}
    assert docker_memory(stats) == (200, 1000)
    assert docker_memory({}) == (None, None)


def test_usage_event_data_round_trips_and_malformed_fields_are_unknown() -> None:
    usage = p.ResourceUsage(12.5, 100, 2000, 30)
    assert p.ResourceUsage.from_data(usage.to_data()) == usage
    forged = {"cpu_percent": "lots", "memory_bytes": -1, "memory_limit_bytes": True, "disk_bytes": 7}
    assert p.ResourceUsage.from_data(forged) == p.ResourceUsage(disk_bytes=7)


def test_selected_task_usage_shows_in_the_status_bar() -> None:
    state = AppState()
    state.apply(p.Event(p.TASK_CREATED, "t1", 1, {"title": "x"}))
    state.apply(p.Event(p.TASK_STATUS, "t1", 2, {"status": "running"}))
    usage = p.ResourceUsage(42.0, 140 << 20, 2 << 30, 35 << 20)
    assert state.apply(p.Event(p.SANDBOX_USAGE, "t1", -1, usage.to_data())) is not None
    task = state.tasks["t1"]
    assert task.usage == usage and task.last_seq == 2
    text = usage_text(task.usage)
    assert text == "cpu 42% · mem 140M/2.0G · disk 35M"
    info = StatusInfo(model="m", mode="auto", context_left=None, tokens=0, running=1, queued=0, usage=text)
    assert text in status_content(info).plain
    state.apply(p.Event(p.TASK_STATUS, "t1", 3, {"status": "ready"}))
    assert task.usage is None, "a finished task has no live meters"


def test_a_usage_event_for_an_unknown_task_creates_nothing() -> None:
    state = AppState()
    assert state.apply(p.Event(p.SANDBOX_USAGE, "ghost", -1, {"cpu_percent": 1})) is None
    assert state.tasks == {}


async def test_checkout_disk_walk_runs_in_a_thread_at_most_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10_000)
    threads: list[bool] = []
    real = meters.usage_bytes

    def walk(root: Path, *, max_entries: int | None = None) -> int:
        threads.append(threading.current_thread() is threading.main_thread())
        return real(root, max_entries=max_entries)

    monkeypatch.setattr(meters, "usage_bytes", walk)
    disk = DiskMeter(tmp_path, every_s=3600)
    first = await disk.bytes()
    assert first is not None and first >= 10_000
    assert await disk.bytes() == first
    assert threads == [False], "one walk, off the event loop's thread"


async def test_local_sandbox_meters_its_running_command_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[bool] = []
    real = meters.process_tree_usage

    def tree(leaders: list[int]) -> tuple[float, int]:
        threads.append(threading.current_thread() is threading.main_thread())
        return real(leaders)

    monkeypatch.setattr(meters, "process_tree_usage", tree)
    sandbox = LocalSandbox(SandboxSpec(task_id="meter", workspace=tmp_path), use_bwrap=False)
    await sandbox.start()
    running = asyncio.create_task(sandbox.exec(["sleep", "5"], timeout_s=10))
    try:
        while not sandbox._groups:  # the command has started
            await asyncio.sleep(0.01)
        usage = await sandbox.usage()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert usage is not None and usage.memory_bytes and usage.disk_bytes is not None
    assert threads == [False]


async def test_sampler_publishes_each_reading_and_skips_a_sandbox_still_being_sampled() -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    release = asyncio.Event()

    class Slow:
        async def usage(self) -> p.ResourceUsage | None:
            await release.wait()
            return p.ResourceUsage(cpu_percent=5.0)

    class Broken:
        async def usage(self) -> p.ResourceUsage | None:
            raise RuntimeError("meter broke")

    sampler = UsageSampler(
        lambda: {"slow": Slow(), "broken": Broken()}, lambda t, d: published.append((t, d))
    )
    first = sampler.sample_now()
    assert [t.get_name() for t in sampler.sample_now()] == [], "both still in flight"
    release.set()
    await asyncio.gather(*first)
    assert published == [("slow", p.ResourceUsage(cpu_percent=5.0).to_data())]
    await sampler.stop()


async def test_manager_publishes_usage_of_a_running_task_and_never_stores_it(
    git_repo: Path, isolated_home: Path
) -> None:
    script = scenario("busy", {"tool_calls": [shell_call("sleep", "3", timeout_ms=20_000)]}, {"text": "done"})
    async with ScriptedServer([script]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, sandbox_backend="local")
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "sleep a bit", model="scripted:busy")
            await log.until(lambda e: e.type == p.ITEM_STARTED and e.data["item"].get("command") == "sleep 3")
            for _ in range(1000):  # until `sleep` itself runs (the item starts just before it)
                if any(e.data.get("memory_bytes") for e in log.of(task_id, p.SANDBOX_USAGE)):
                    break
                await asyncio.gather(*manager.usage_sampler.sample_now())
                await asyncio.sleep(0.01)
            usage_events = log.of(task_id, p.SANDBOX_USAGE)
            assert await manager.wait_for(task_id, timeout=60) == "ready"
            stored = await manager.task_events(task_id)
    assert usage_events and all(e.seq == -1 for e in usage_events)
    reading = p.ResourceUsage.from_data(usage_events[-1].data)
    assert reading.memory_limit_bytes is None, "the local backend has no memory limit"
    assert reading.memory_bytes and reading.disk_bytes
    assert not [e for e in stored if e.type == p.SANDBOX_USAGE], "usage is transient"
    rollout = (cfg.data_dir / "rollouts" / f"{task_id}.jsonl").read_text()
    assert p.SANDBOX_USAGE not in rollout


@pytest.mark.docker
async def test_a_busy_container_shows_cpu_and_memory_read_off_the_loop(
    make_docker_sandbox: MakeDockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    assert sandbox._client is not None
    real_stats = sandbox._client.api.stats
    on_loop_thread: list[bool] = []

    def stats(*args: Any, **kwargs: Any) -> Any:
        on_loop_thread.append(threading.current_thread() is threading.main_thread())
        return real_stats(*args, **kwargs)

    monkeypatch.setattr(sandbox._client.api, "stats", stats)
    assert await sandbox.usage() is not None  # the first reading starts the CPU meter
    go = asyncio.Event()
    busy = asyncio.create_task(
        sandbox.exec(
            ["sh", "-c", "echo go; while :; do :; done"], timeout_s=20, on_output=lambda _s, _d: go.set()
        )
    )
    try:
        await go.wait()
        await sandbox.usage()
        await asyncio.sleep(0.5)
        usage = await sandbox.usage()
    finally:
        busy.cancel()
        await asyncio.gather(busy, return_exceptions=True)
    assert usage is not None
    assert usage.cpu_percent is not None and usage.cpu_percent > 0
    assert usage.memory_bytes and usage.memory_limit_bytes == sandbox.spec.limits.memory_mb << 20
    assert usage.disk_bytes is not None
    assert on_loop_thread and not any(on_loop_thread), "docker stats never runs on the event loop's thread"
