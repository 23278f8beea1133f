"""Tasks in real Docker containers: a container killed mid-command, and resuming in a new one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.models.scripted import ScriptedServer
from tests.test_tasks_support import (
    add_file_patch,
    patch_call,
    scenario,
    scripted_config,
    shell_call,
    started_manager,
    submit,
)

pytestmark = pytest.mark.docker


async def test_killed_container_fails_the_task_and_a_follow_up_resumes_in_a_new_one(
    git_repo: Path, isolated_home: Path, docker_engine: docker.DockerClient, sandbox_image: str
) -> None:
    doomed = scenario(
        "doomed",
        {
            "tool_calls": [
                patch_call(add_file_patch("kept.txt", "kept")),
                shell_call("sleep", "30", timeout_ms=60_000),
            ]
        },
        {"delay_ms": 500, "tool_calls": [shell_call("cat", "kept.txt")]},
        {"text": "resumed in a new container"},
    )
    async with ScriptedServer([doomed]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "sleep in docker", model="scripted:doomed")
            await log.until(
                lambda e: e.type == p.ITEM_STARTED and e.data["item"].get("command") == "sleep 30"
            )
            await asyncio.sleep(0.5)  # let `sleep` really run: the kill must land mid-command
            [info] = log.of(task_id, p.SANDBOX_INFO)
            assert info.data["backend"] == "docker"
            docker_engine.api.kill(info.data["container_id"])
            assert await manager.wait_for(task_id, timeout=30) == "failed"
            [summary] = manager.tasks()
            assert summary["message"].startswith("the sandbox failed")
            assert [c["command"] for c in log.items(task_id, p.ITEM_COMMAND)] == ["sleep 30"]
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "try again"}))).ok
            assert await manager.wait_for(task_id, timeout=60) == "ready"
            infos = log.of(task_id, p.SANDBOX_INFO)
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
    assert len(infos) == 2 and infos[0].data["container_id"] != infos[1].data["container_id"]
    [_sleep, cat] = log.items(task_id, p.ITEM_COMMAND)
    assert cat["command"] == "cat kept.txt" and cat["exit_code"] == 0 and "kept" in cat["aggregated_output"]
    assert log.items(task_id, p.ITEM_AGENT_MESSAGE)[-1]["text"] == "resumed in a new container"
    assert [f["path"] for f in files] == ["kept.txt"]
    left = docker_engine.api.containers(all=True, filters={"id": infos[1].data["container_id"]})
    assert left == [], "closing the manager removes the task's container"
