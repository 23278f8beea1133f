"""Faults from outside the container, through the task manager with a real Docker engine.

The engine "stops" by way of a unix-socket proxy in front of the machine's dockerd: the task's
DOCKER_HOST points at the proxy, and cutting it removes the socket and drops every open connection
(the running `docker exec` stream included), which is all the app can see of an engine going away.
The real engine keeps running for the other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.sandbox.engine import LABEL_OWNER_PID, LABEL_TASK, EngineLost, forget_client
from codex_tui.scripted import ScriptedServer
from tests.conftest import run_git
from tests.conftest_docker import MakeDockerSandbox
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

ENGINE_SOCKET = "/var/run/docker.sock"


class EngineProxy:
    """Forwards connections on `path` to the engine's socket until `cut()`; `start()` restores it."""

    def __init__(self, path: Path, target: str = ENGINE_SOCKET) -> None:
        self.path = path
        self.target = target
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def docker_host(self) -> str:
        """The DOCKER_HOST value that reaches the engine through this proxy."""
        return f"unix://{self.path}"

    def start(self) -> None:
        """Listen on `path` and forward connections from a background thread."""
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """The engine is gone: stop listening, remove the socket, drop every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            dropped, self._open = list(self._open), set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        with self._lock:  # both directions over (or cut): release the pair
            if src in self._open and dst in self._open and _closed_both_ways(src):
                self._open.difference_update((src, dst))
                src.close()
                dst.close()


def _closed_both_ways(sock: socket.socket) -> bool:
    """True when the peer has closed its side (a non-blocking peek reads end of file)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture
def engine_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine: docker.DockerClient
) -> Iterator[EngineProxy]:
    """A proxy to the real engine, set as DOCKER_HOST for the test; cut and forgotten afterwards.

    Containers this process made during the test and left behind (a failed test may leave some
    while the proxy is cut) are removed through the real socket.
    """
    mine = {"label": f"{LABEL_OWNER_PID}={os.getpid()}"}
    before = {c["Id"] for c in docker_engine.api.containers(all=True, filters=mine)}
    proxy = EngineProxy(tmp_path / "engine.sock")
    proxy.start()
    monkeypatch.setenv("DOCKER_HOST", proxy.docker_host)
    try:
        yield proxy
    finally:
        forget_client()  # the shared client for the proxy's address
        proxy.cut()
        for container in docker_engine.api.containers(all=True, filters=mine):
            if container["Id"] not in before:
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    docker_engine.api.remove_container(container["Id"], force=True)


def task_containers(client: docker.DockerClient, task_id: str) -> list[str]:
    """Ids of the containers (running or not) labelled with the task."""
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": f"{LABEL_TASK}={task_id}"})]


async def test_engine_stopping_mid_command_fails_the_task_clearly_and_loses_nothing(
    git_repo: Path,
    isolated_home: Path,
    docker_engine: docker.DockerClient,
    sandbox_image: str,
    engine_proxy: EngineProxy,
) -> None:
    stranded = scenario(
        "stranded",
        {
            "tool_calls": [
                patch_call(add_file_patch("kept.txt", "written before the engine stopped")),
                shell_call("sh", "-c", "echo started; exec sleep 30", timeout_ms=60_000),
            ]
        },
        {"delay_ms": 500, "tool_calls": [shell_call("cat", "kept.txt")]},
        {"text": "resumed on the engine that came back"},
    )
    async with ScriptedServer([stranded]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "work in docker", model="scripted:stranded")
            await log.until(lambda e: e.type == p.OUTPUT_DELTA and "started" in e.data["text"])
            [first] = log.of(task_id, p.SANDBOX_INFO)
            engine_proxy.cut()

            assert await manager.wait_for(task_id, timeout=30) == "failed"
            [summary] = manager.tasks()
            message = summary["message"]
            assert f"the Docker engine at {engine_proxy.docker_host} stopped answering" in message
            assert "the checkout is intact" in message and "Traceback" not in message
            assert log.of(task_id, p.ERROR)[-1].data["message"] == message
            [command] = log.items(task_id, p.ITEM_COMMAND)
            assert command["status"] == "failed" and "stopped answering" in command["note"]
            checkout = Path(manager.store.records[task_id].workspace)
            assert (checkout / "kept.txt").read_text() == "written before the engine stopped\n"
            assert run_git(git_repo, "status", "--porcelain") == "", "the user's tree is untouched"

            # A follow-up while the engine is still away fails at once, as clearly.
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "again"}))).ok
            assert await manager.wait_for(task_id, ["failed"], timeout=30) == "failed"
            assert "stopped answering" in manager.tasks()[0]["message"]

            engine_proxy.start()
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "engine is back"}))).ok
            assert await manager.wait_for(task_id, timeout=60) == "ready"
            infos = log.of(task_id, p.SANDBOX_INFO)
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
            assert task_containers(docker_engine, task_id) == [infos[-1].data["container_id"]]
        history = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())

    assert len(infos) == 2 and infos[1].data["container_id"] != first.data["container_id"]
    cat = log.items(task_id, p.ITEM_COMMAND)[-1]
    assert cat["command"] == "cat kept.txt" and cat["exit_code"] == 0
    assert "written before the engine stopped" in cat["aggregated_output"]
    assert log.items(task_id, p.ITEM_AGENT_MESSAGE)[-1]["text"] == "resumed on the engine that came back"
    assert [f["path"] for f in files] == ["kept.txt"]
    user_texts = [c["text"] for i in history if i.get("role") == "user" for c in i["content"] if "text" in c]
    assert user_texts[0] == "work in docker" and any(i["type"] == "tool_call" for i in history)
    assert user_texts[-1] == "again\n\nengine is back", "the message sent while the engine was away is kept"
    assert_rollout_holds(cfg, task_id, log)
    assert task_containers(docker_engine, task_id) == [], "no container is left behind"


async def test_apply_with_a_conflicting_user_edit_after_a_docker_task_changes_nothing(
    git_repo: Path, isolated_home: Path, docker_engine: docker.DockerClient, sandbox_image: str
) -> None:
    edits = scenario(
        "edits",
        {
            "tool_calls": [
                shell_call(
                    "sh", "-c", "sed -i 's/return a + b/return b + a/' calc.py && echo notes > notes.txt"
                )
            ]
        },
        {"text": "edited in the container"},
    )
    async with ScriptedServer([edits]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "edit calc", model="scripted:edits")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
            assert log.of(task_id, p.SANDBOX_INFO)[0].data["backend"] == "docker"
            (git_repo / "calc.py").write_text("def add(a, b):\n    return a + b + 0  # mine\n")
            before = _tree(git_repo)

            dry = await manager.submit(p.Op(p.OP_APPLY, task_id, {"dry_run": True}))
            applied = await manager.submit(p.Op(p.OP_APPLY, task_id, {"branch": False}))
            for report in (dry, applied):
                assert not report.ok and report.data["conflicts"] == ["calc.py"], report.message
                assert "calc.py (you and the task changed the same lines)" in report.message
            assert dry.data["applied"] == ["notes.txt"] and applied.message.endswith("nothing was changed")
            assert _tree(git_repo) == before, "nothing is half-applied"
            assert manager.tasks()[0]["status"] == "ready"

            run_git(git_repo, "checkout", "--", "calc.py")  # the user drops their edit
            again = await manager.submit(p.Op(p.OP_APPLY, task_id, {"branch": False}))
            assert (again.ok, again.message) == (True, "applied 2 file(s)")
            twice = await manager.submit(p.Op(p.OP_APPLY, task_id, {"branch": False}))
            assert (twice.ok, twice.message) == (True, "already applied")
    assert (git_repo / "calc.py").read_text() == "def add(a, b):\n    return b + a\n"
    assert (git_repo / "notes.txt").read_text() == "notes\n"
    assert (git_repo / "notes.txt").stat().st_uid == os.getuid()


def _tree(repo: Path) -> dict[str, str]:
    """Every file of the working tree (outside .git) and its text."""
    return {
        str(path.relative_to(repo)): path.read_text()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }


async def test_sandbox_names_the_lost_engine_and_removes_its_container_when_it_is_back(
    engine_proxy: EngineProxy,  # first: set up before the sandboxes, torn down after them
    make_docker_sandbox: MakeDockerSandbox,
    docker_engine: docker.DockerClient,
) -> None:
    sandbox = make_docker_sandbox(task_id="lost-engine")
    await sandbox.start()
    container_id = sandbox.container_id
    out: list[bytes] = []
    running = asyncio.create_task(
        sandbox.exec(["sh", "-c", "echo up; sleep 30"], timeout_s=60, on_output=lambda _s, b: out.append(b))
    )
    while b"up" not in b"".join(out):
        await asyncio.sleep(0.02)
    engine_proxy.cut()

    with pytest.raises(EngineLost) as lost:
        await running
    assert str(lost.value) == (
        f"the Docker engine at {engine_proxy.docker_host} stopped answering "
        "(Connection aborted: No such file or directory); "
        "start it again (`sudo systemctl start docker`, or `sudo dockerd &`)"
    )
    await sandbox.stop()  # does not raise: the container is remembered for later
    assert docker_engine.api.inspect_container(container_id)["State"]["Running"]

    engine_proxy.start()
    later = make_docker_sandbox(task_id="lost-engine-later")
    await later.start()
    with pytest.raises(docker.errors.NotFound):
        docker_engine.api.inspect_container(container_id)
    await later.stop()
