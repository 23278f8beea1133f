"""Tasks in real Docker containers: a container killed mid-command, and resuming in a new one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.sandbox.engine import LABEL, LABEL_OWNER_PID, LABEL_OWNER_START, LABEL_TASK
from codex_tui.scripted import ScriptedServer
from tests.test_tasks_support import (
    add_file_patch,
    assert_rollout_holds,
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
    assert_rollout_holds(cfg, task_id, log)
    left = docker_engine.api.containers(all=True, filters={"id": infos[1].data["container_id"]})
    assert left == [], "closing the manager removes the task's container"


async def test_follow_up_after_the_idle_container_vanished_runs_in_a_new_one_without_failing(
    git_repo: Path, isolated_home: Path, docker_engine: docker.DockerClient, sandbox_image: str
) -> None:
    turns = scenario(
        "three-turns",
        {"tool_calls": [patch_call(add_file_patch("kept.txt", "kept"))]},
        {"text": "first turn done"},
        {"tool_calls": [shell_call("cat", "kept.txt")]},
        {"text": "second turn done"},
        {"text": "third turn done"},
    )
    async with ScriptedServer([turns]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "add a file", model="scripted:three-turns")
            assert await manager.wait_for(task_id, timeout=60) == "ready"
            [first] = log.of(task_id, p.SANDBOX_INFO)
            docker_engine.api.remove_container(first.data["container_id"], force=True)
            follow_up = p.Op(p.OP_USER_MESSAGE, task_id, {"text": "now read it"})
            assert (await manager.submit(follow_up)).ok
            assert await manager.wait_for(task_id, timeout=60) == "ready", manager.tasks()[0]["message"]
            last_request = json.dumps(srv.model_requests()[-1].body)
            infos = log.of(task_id, p.SANDBOX_INFO)
            new_id = infos[-1].data["container_id"]
            assert docker_engine.api.inspect_container(new_id)["State"]["Running"]
            again = p.Op(p.OP_USER_MESSAGE, task_id, {"text": "once more"})
            assert (await manager.submit(again)).ok
            assert await manager.wait_for(task_id, timeout=60) == "ready"
            assert len(log.of(task_id, p.SANDBOX_INFO)) == 2, "a live container is kept"
    assert len(infos) == 2 and new_id != first.data["container_id"]
    notes = [e.data["message"] for e in log.of(task_id, p.NOTE)]
    assert "the sandbox container was gone; started a new one" in notes
    assert "failed" not in log.statuses(task_id)
    [cat] = log.items(task_id, p.ITEM_COMMAND)
    assert cat["command"] == "cat kept.txt" and cat["exit_code"] == 0 and "kept" in cat["aggregated_output"]
    answers = [m["text"] for m in log.items(task_id, p.ITEM_AGENT_MESSAGE)]
    assert answers == ["first turn done", "second turn done", "third turn done"]
    assert "add a file" in last_request and "first turn done" in last_request, "the history is kept"
    assert_rollout_holds(cfg, task_id, log)


@pytest.fixture
def env_images(docker_engine: docker.DockerClient) -> Iterator[list[str]]:
    """Setup images a test made; removed afterwards."""
    tags: list[str] = []
    yield tags
    for tag in set(tags):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_engine.images.remove(tag, force=True)


async def test_setup_script_streams_to_the_task_log_runs_once_and_has_network(
    git_repo: Path, isolated_home: Path, sandbox_image: str, env_images: list[str]
) -> None:
    (git_repo / ".codex-tui").mkdir()
    (git_repo / ".codex-tui" / "setup.sh").write_text(
        f"# {uuid.uuid4().hex}\necho preparing-the-env\nls /sys/class/net > /opt/setup-net\n"
    )
    reads = scenario("reads", {"tool_calls": [shell_call("cat", "/opt/setup-net")]}, {"text": "read it"})
    async with ScriptedServer([reads]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [first] = await submit(manager, "first task", model="scripted:reads")
            assert await manager.wait_for(first, timeout=60) == "ready", manager.tasks()[0]["message"]
            [second] = await submit(manager, "second task", model="scripted:reads")
            assert await manager.wait_for(second, timeout=60) == "ready"
    images = [log.of(t, p.SANDBOX_INFO)[0].data["image"] for t in (first, second)]
    env_images.extend(images)
    assert images[0] == images[1] and images[0].startswith("codex-tui-env:")
    [setup] = log.items(first, p.ITEM_COMMAND)[:1]
    assert setup["command"] == "repository setup script" and setup["status"] == "completed"
    streamed = "".join(
        e.data["text"] for e in log.of(first, p.OUTPUT_DELTA) if e.data["item_id"] == setup["id"]
    )
    assert "preparing-the-env" in streamed
    assert [i["command"] for i in log.items(second, p.ITEM_COMMAND)] == ["cat /opt/setup-net"], "cached"
    for task_id in (first, second):
        cat = log.items(task_id, p.ITEM_COMMAND)[-1]
        assert cat["exit_code"] == 0 and "eth0" in cat["aggregated_output"], "setup ran with the network on"


async def test_failing_setup_fails_the_task_with_its_log(
    git_repo: Path, isolated_home: Path, sandbox_image: str, docker_engine: docker.DockerClient
) -> None:
    script = f"# {uuid.uuid4().hex}\necho fetching-deps\necho 'E: no such package: flux' >&2\nexit 3\n"
    async with ScriptedServer([scenario("never", {"text": "unreachable"})]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image, setup=script
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "needs setup", model="scripted:never")
            assert await manager.wait_for(task_id, timeout=60) == "failed"
            message = manager.tasks()[0]["message"]
    assert message.startswith("sandbox setup failed: the setup script failed (exit 3)")
    assert "fetching-deps" in message and "E: no such package: flux" in message
    [setup] = log.items(task_id, p.ITEM_COMMAND)
    assert setup["command"] == "repository setup script" and setup["status"] == "failed"
    assert srv.model_requests() == [], "the model is not called when the environment cannot be made"
    assert docker_engine.api.containers(all=True, filters={"label": f"codex-tui.task={task_id}"}) == []


async def test_prune_removes_a_finished_docker_tasks_container_and_checkout(
    git_repo: Path, isolated_home: Path, sandbox_image: str, docker_engine: docker.DockerClient
) -> None:
    async with ScriptedServer([scenario("quick", {"text": "done"})]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "quick one", model="scripted:quick")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
            container_id = log.of(task_id, p.SANDBOX_INFO)[0].data["container_id"]
            checkout = Path(manager.store.records[task_id].workspace)
            assert docker_engine.api.inspect_container(container_id)["State"]["Running"]
            assert (await manager.prune())["checkouts"] == 1
            with pytest.raises(docker.errors.NotFound):
                docker_engine.api.inspect_container(container_id)
            assert not checkout.exists()
            assert [e.type for e in await manager.task_events(task_id)][:1] == [p.TASK_CREATED]


async def test_start_up_sweeps_containers_left_by_a_crashed_app(
    git_repo: Path, isolated_home: Path, sandbox_image: str, docker_engine: docker.DockerClient
) -> None:
    crashed = subprocess.Popen(["true"])
    crashed.wait()
    labels = {LABEL: "1", LABEL_TASK: "t-crashed", LABEL_OWNER_PID: str(crashed.pid), LABEL_OWNER_START: "1"}
    stale = docker_engine.containers.run(
        sandbox_image, "sleep 300", detach=True, labels=labels, network_mode="none"
    )
    try:
        async with ScriptedServer([]) as srv:
            cfg = scripted_config(
                isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
            )
            async with started_manager(cfg, git_repo):
                with pytest.raises(docker.errors.NotFound):
                    docker_engine.api.inspect_container(stale.id)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            stale.remove(force=True)
