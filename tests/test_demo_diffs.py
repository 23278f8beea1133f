"""The demo's task diffs hold only the tasks' real changes: never the caches their test runs leave."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.demo import DEMO_PROMPTS, prepare_demo
from tests.test_tasks_support import EventLog

CACHE_MARKERS = ("__pycache__", ".pyc")


def cache_paths(paths: list[str]) -> list[str]:
    """The paths that are Python bytecode caches."""
    return [path for path in paths if any(marker in path for marker in CACHE_MARKERS)]


async def test_demo_task_diffs_never_list_pycache_even_after_the_sandbox_ran_the_tests(
    isolated_home: Path,
) -> None:
    await check_demo_diffs(isolated_home, "local")


@pytest.mark.docker
async def test_demo_task_diffs_in_docker_sandboxes_never_list_pycache(
    isolated_home: Path, sandbox_image: str
) -> None:
    await check_demo_diffs(isolated_home, "docker")


async def check_demo_diffs(isolated_home: Path, backend: str) -> None:
    """Run every demo prompt (approving what asks), then check each task's diff for caches."""
    from codex_tui.tasks.manager import TaskManager

    demo = await asyncio.to_thread(prepare_demo, Config(home=isolated_home))
    manager = TaskManager(demo.config, repo=demo.repo, sandbox_backend=backend)
    log = EventLog()
    try:
        await manager.start()
        manager.subscribe(log, replay=False)
        every: list[str] = []
        for prompt in DEMO_PROMPTS:
            result = await manager.submit(prompt.op())
            assert result.ok, result.message
            every += result.data["task_ids"]
        waiting = asyncio.gather(*(manager.wait_for(t, timeout=120) for t in every))
        while not waiting.done():
            requests = [e for e in log.events if e.type == p.APPROVAL_REQUESTED]
            for request in requests:
                decision = {"request_id": request.data["request_id"], "decision": "approve"}
                await manager.submit(p.Op(p.OP_APPROVE, request.task_id, decision))
                log.events.remove(request)
            await asyncio.sleep(0.2)
        assert set(await waiting) == {"ready"}
        made_caches = False
        for task_id in every:
            checkout = demo.config.data_dir / "worktrees" / task_id
            made_caches = made_caches or any(checkout.rglob("*.pyc"))
            diff = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data
            listed = [str(f["path"]) for f in diff["files"]]
            assert listed, f"task {task_id} changed nothing"
            assert cache_paths(listed) == [], f"task {task_id} diff lists caches: {listed}"
            assert "__pycache__" not in diff["patch"] and ".pyc" not in diff["patch"]
        assert made_caches, "no task ran the tests: the check above proved nothing"
    finally:
        await manager.close()
        await asyncio.to_thread(demo.close)
