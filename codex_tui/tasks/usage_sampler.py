"""Resource meters of running tasks: every ~2 s each running task's sandbox is sampled and the reading
published as a transient `sandbox.usage` event (to live subscribers only, never to the rollout).

Sampling never blocks the event loop (each sandbox's `usage` works in threads), tasks are sampled
concurrently, and a slow sample is skipped by the next round rather than queued behind it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from codex_tui.protocol import ResourceUsage

log = logging.getLogger(__name__)

SAMPLE_EVERY_S: Final = 2.0
SAMPLE_TIMEOUT_S: Final = 10.0


class Metered(Protocol):
    """What the sampler needs of a sandbox."""

    async def usage(self) -> ResourceUsage | None:
        """The sandbox's current usage, or None when unknown."""
        ...


Targets = Callable[[], dict[str, Metered]]
"""Returns the sandboxes to sample now, by task id."""
Publish = Callable[[str, dict[str, Any]], None]
"""publish(task_id, data): send one reading to the live subscribers."""


class UsageSampler:
    """Samples the running tasks' sandboxes every `interval_s` and publishes each reading."""

    def __init__(self, targets: Targets, publish: Publish, interval_s: float = SAMPLE_EVERY_S) -> None:
        self.targets = targets
        self.publish = publish
        self.interval_s = interval_s
        self._loop_task: asyncio.Task[None] | None = None
        self._busy: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Begin sampling (once)."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="usage-sampler")

    async def stop(self) -> None:
        """Stop sampling and wait for samples in flight to be dropped."""
        tasks = [t for t in (self._loop_task, *self._busy.values()) if t is not None]
        self._loop_task = None
        self._busy.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.sample_now()
            await asyncio.sleep(self.interval_s)

    def sample_now(self) -> list[asyncio.Task[None]]:
        """Start one sample of every target not still being sampled; returns the samples started."""
        started = []
        for task_id, sandbox in self.targets().items():
            if task_id in self._busy:
                continue
            sample = asyncio.create_task(self._sample(task_id, sandbox.usage), name=f"usage-{task_id}")
            self._busy[task_id] = sample
            sample.add_done_callback(functools.partial(self._done, task_id))
            started.append(sample)
        return started

    def _done(self, task_id: str, _sample: asyncio.Task[None]) -> None:
        self._busy.pop(task_id, None)

    async def _sample(self, task_id: str, usage: Callable[[], Awaitable[ResourceUsage | None]]) -> None:
        try:
            reading = await asyncio.wait_for(usage(), SAMPLE_TIMEOUT_S)
        except Exception:  # a meter must never hurt the task (a timeout included)
            log.debug("sampling the sandbox of task %s failed", task_id, exc_info=True)
            return
        if reading is not None:
            self.publish(task_id, reading.to_data())
