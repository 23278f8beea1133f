"""Resource meters of a task's sandbox: CPU %, memory and the checkout's disk use, sampled cheaply.

Every sample runs off the event loop: docker stats (one shot, no second sample waited for) in the
docker worker pool, a process tree read with psutil and the checkout walk in threads. CPU % is the
change of the CPU time used between two of our own samples over the wall time between them, as a
percentage of one CPU (`docker stats` shows the same figure). The checkout is walked at most every
`DISK_EVERY_S` seconds, bounded to `DISK_MAX_ENTRIES` entries, with no link followed
(`disk.usage_bytes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import docker
import psutil

from codex_tui.sandbox.base import ResourceUsage, SandboxError
from codex_tui.sandbox.disk import usage_bytes
from codex_tui.sandbox.engine import in_thread

DISK_EVERY_S: Final = 10.0
DISK_MAX_ENTRIES: Final = 200_000


@dataclass(slots=True)
class CpuMeter:
    """Turns cumulative CPU seconds into a percentage of one CPU since the previous reading."""

    _last: tuple[float, float] | None = None

    def update(self, cpu_seconds: float, now: float | None = None) -> float | None:
        """The CPU % since the previous call (None on the first, or when time did not move)."""
        now = time.monotonic() if now is None else now
        last, self._last = self._last, (cpu_seconds, now)
        if last is None or now <= last[1]:
            return None
        return round(max(0.0, cpu_seconds - last[0]) / (now - last[1]) * 100.0, 1)


@dataclass(slots=True)
class DiskMeter:
    """The checkout's bytes on disk, measured in a thread at most every `every_s` seconds."""

    root: Path
    every_s: float = DISK_EVERY_S
    _bytes: int | None = None
    _at: float = field(default=-1e9)
    _running: asyncio.Future[int] | None = None

    async def bytes(self) -> int | None:
        """The latest measurement (a new one when the last is older than `every_s`)."""
        if self._running is None and time.monotonic() - self._at >= self.every_s:
            self._running = asyncio.ensure_future(
                asyncio.to_thread(usage_bytes, self.root, max_entries=DISK_MAX_ENTRIES)
            )
        if self._running is not None:
            try:
                self._bytes = await asyncio.shield(self._running)
            except OSError:
                pass
            finally:
                if self._running.done():
                    self._running = None
                    self._at = time.monotonic()
        return self._bytes


def docker_cpu_seconds(stats: dict[str, Any]) -> float | None:
    """Cumulative CPU seconds of a container from its docker stats (None when absent)."""
    total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    return total / 1e9 if isinstance(total, int | float) else None


def docker_memory(stats: dict[str, Any]) -> tuple[int | None, int | None]:
    """(used, limit) bytes as `docker stats` shows them: usage minus the inactive file cache."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if not isinstance(usage, int):
        return None, None
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    used = max(0, usage - cache) if isinstance(cache, int) and cache < usage else usage
    limit = memory.get("limit")
    return used, limit if isinstance(limit, int) and limit > 0 else None


class ContainerMeter:
    """A Docker task's meters: its container's stats and its checkout's disk use."""

    def __init__(self, workspace: Path) -> None:
        self.cpu = CpuMeter()
        self.disk = DiskMeter(workspace)

    async def sample(
        self, client: docker.DockerClient | None, container_id: str | None
    ) -> ResourceUsage | None:
        """One reading (None before the container exists); never raises."""
        if client is None or container_id is None:
            return None
        stats: dict[str, Any] = {}
        with contextlib.suppress(docker.errors.DockerException, SandboxError):
            stats = await in_thread(client.api.stats, container_id, stream=False, one_shot=True)
        seconds = docker_cpu_seconds(stats)
        memory, limit = docker_memory(stats)
        cpu = self.cpu.update(seconds) if seconds is not None else None
        return ResourceUsage(cpu, memory, limit, await self.disk.bytes())


class ProcessMeter:
    """A local task's meters: the process trees of its running commands (psutil) and its checkout."""

    def __init__(self, workspace: Path) -> None:
        self.cpu = CpuMeter()
        self.disk = DiskMeter(workspace)

    async def sample(self, leaders: list[int]) -> ResourceUsage:
        """One reading of the trees under `leaders` (the commands' process-group leaders)."""
        seconds, memory = await asyncio.to_thread(process_tree_usage, leaders)
        cpu = self.cpu.update(seconds)
        return ResourceUsage(cpu, memory, None, await self.disk.bytes())


def process_tree_usage(leaders: list[int]) -> tuple[float, int]:
    """CPU seconds and resident bytes of the given processes and all their descendants."""
    seconds, memory = 0.0, 0
    for pid in leaders:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:
            with contextlib.suppress(psutil.Error), proc.oneshot():
                times = proc.cpu_times()
                seconds += times.user + times.system
                memory += proc.memory_info().rss
    return seconds, memory
