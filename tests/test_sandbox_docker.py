"""DockerSandbox against the real engine: streaming, limits, isolation, kills, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from codex_tui.boundary.identity import KEEPER_ID, sandbox_ids
from codex_tui.sandbox.base import SandboxError, SandboxLimits, SandboxSpec, Stream
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.docker_reap import sweep_stale_containers
from codex_tui.sandbox.engine import LABEL, LABEL_OWNER_PID, LABEL_OWNER_START, LABEL_TASK
from codex_tui.sandbox.factory import SandboxRequest, create_sandbox

pytestmark = pytest.mark.docker


class Output:
    """Collects on_output chunks with their arrival times."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Stream, bytes, float]] = []

    def __call__(self, stream: Stream, data: bytes) -> None:
        self.chunks.append((stream, data, time.monotonic()))

    def text(self, stream: Stream | None = None) -> str:
        return b"".join(d for s, d, _ in self.chunks if stream in (None, s)).decode()


async def run(sandbox: DockerSandbox, script: str, **kwargs: object) -> tuple[int, str]:
    out = Output()
    result = await sandbox.exec(["sh", "-c", script], on_output=out, **kwargs)  # type: ignore[arg-type]
    return result.exit_code, out.text()


def bridge_gateway(client: docker.DockerClient) -> str:
    config = client.api.inspect_network("bridge")["IPAM"]["Config"]
    return str(config[0].get("Gateway") or "172.17.0.1")


CONNECT = """
import socket, sys, errno
s = socket.socket(); s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
"""


async def test_output_streams_chunk_by_chunk_while_the_command_runs(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    out = Output()
    script = "echo first; sleep 0.6; echo second >&2; sleep 0.3; echo third"
    result = await sandbox.exec(["sh", "-c", script], on_output=out)
    ended = time.monotonic()
    assert result.exit_code == 0
    assert out.text("stdout") == "first\nthird\n"
    assert out.text("stderr") == "second\n"
    first_arrival = out.chunks[0][2]
    assert ended - first_arrival > 0.5, "the first line should arrive long before the command ends"
    assert len(out.chunks) >= 3


async def test_exit_codes_are_returned_as_is(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    assert (await sandbox.exec(["sh", "-c", "exit 7"])).exit_code == 7
    assert (await sandbox.exec(["false"])).exit_code == 1
    missing = Output()
    assert (await sandbox.exec(["no-such-program"], on_output=missing)).exit_code == 127
    assert "not found" in missing.text()


async def test_commands_run_in_the_workspace_and_cwd_is_relative_to_it(
    make_docker_sandbox, sandbox_workspace: Path
) -> None:
    (sandbox_workspace / "sub").mkdir()
    (sandbox_workspace / "sub" / "hello.txt").write_text("hi from the host\n")
    sandbox = make_docker_sandbox()
    await sandbox.start()
    assert await run(sandbox, "pwd; cat hello.txt", cwd="sub") == (0, "/workspace/sub\nhi from the host\n")
    code, text = await run(sandbox, "pwd", cwd="/does/not/exist")
    assert code != 0 and "can't cd" in text


@pytest.mark.parametrize("kill_from_host", [True, False], ids=["host-signal", "exec-inside"])
async def test_timeout_returns_124_and_kills_the_process_inside(make_docker_sandbox, kill_from_host) -> None:
    sandbox = make_docker_sandbox(kill_from_host=kill_from_host)
    await sandbox.start()
    started = time.monotonic()
    result = await sandbox.exec(["sh", "-c", "sleep 41 & sleep 42"], timeout_s=0.5)
    assert result.exit_code == 124 and result.timed_out
    assert time.monotonic() - started < 5
    code, ps = await run(sandbox, "ps -eo args")
    assert code == 0 and "sleep 41" not in ps and "sleep 42" not in ps


async def test_cancelling_exec_kills_the_command_inside(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    out = Output()
    running = asyncio.create_task(
        sandbox.exec(["sh", "-c", "echo up; sleep 43"], timeout_s=60, on_output=out)
    )
    while "up" not in out.text():
        await asyncio.sleep(0.02)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    code, ps = await run(sandbox, "ps -eo args")
    assert code == 0 and "sleep 43" not in ps


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP port listening on every address of this host (its loopback included)."""
    with socket.create_server(("0.0.0.0", 0)) as server:
        yield int(server.getsockname()[1])


async def test_network_is_off_unless_full_access(
    make_docker_sandbox, docker_engine, host_listener: int
) -> None:
    gateway = bridge_gateway(docker_engine)
    sandbox = make_docker_sandbox(mode="auto")
    await sandbox.start()
    for target, expected in (
        (gateway, "ENETUNREACH"),
        ("1.1.1.1", "ENETUNREACH"),
        ("127.0.0.1", "ECONNREFUSED"),
    ):
        _code, text = await run(sandbox, f"python3 -c '{CONNECT}' {target} {host_listener}")
        assert text.strip() == expected, f"{target}: {text}"
    open_sandbox = make_docker_sandbox(mode="full-access")
    await open_sandbox.start()
    _code, text = await run(open_sandbox, f"python3 -c '{CONNECT}' {gateway} {host_listener}")
    assert text.strip() == "connected", "with the network on, the same host port is reachable"


async def test_read_only_mode_refuses_writes_to_workspace_and_root(
    make_docker_sandbox, sandbox_workspace: Path
) -> None:
    (sandbox_workspace / "keep.txt").write_text("original\n")
    sandbox = make_docker_sandbox(mode="read-only")
    await sandbox.start()
    code, text = await run(sandbox, "echo changed > /workspace/keep.txt")
    assert code != 0 and "Read-only file system" in text
    code, text = await run(sandbox, "touch /etc/owned")
    assert code != 0 and "Read-only file system" in text
    assert await run(sandbox, "echo scratch > /tmp/x && cat /tmp/x && cat keep.txt") == (
        0,
        "scratch\noriginal\n",
    )
    assert (sandbox_workspace / "keep.txt").read_text() == "original\n"


async def test_escalated_command_gets_network_and_a_writable_workspace(
    make_docker_sandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_docker_sandbox(mode="read-only")
    await sandbox.start()
    code, text = await run(sandbox, "ls /sys/class/net")
    assert text.split() == ["lo"]
    (sandbox_workspace / "sub").mkdir()
    os.chown(sandbox_workspace / "sub", *sandbox_ids())
    code, text = await run(sandbox, "ls /sys/class/net; echo made > esc.txt", escalated=True, cwd="sub")
    assert code == 0, text
    assert [name for name in text.split() if name != "lo"], "expected a non-loopback interface"
    assert (sandbox_workspace / "sub" / "esc.txt").read_text() == "made\n"
    assert (await sandbox.exec(["sh", "-c", "exit 5"], escalated=True)).exit_code == 5
    timed = await sandbox.exec(["sleep", "30"], escalated=True, timeout_s=0.5)
    assert timed.exit_code == 124 and timed.timed_out


async def test_fork_bomb_is_stopped_by_the_pids_limit_and_the_sandbox_survives(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox(limits=SandboxLimits(pids=64))
    await sandbox.start()
    out = Output()
    started = time.monotonic()
    result = await sandbox.exec(["bash", "-c", ":(){ :|: ; };:"], timeout_s=1, on_output=out)
    assert result.exit_code == 124
    assert "Resource temporarily unavailable" in out.text()
    assert time.monotonic() - started < 10
    code, text = await run(
        sandbox, "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"
    )
    assert (code, text.strip()) == (0, "64")
    code, text = await run(sandbox, "ps -e --no-headers | wc -l")
    assert code == 0 and int(text) < 10, text


async def test_memory_hog_is_killed_with_an_out_of_memory_note(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox(limits=SandboxLimits(memory_mb=64))
    await sandbox.start()
    result = await sandbox.exec(["python3", "-c", "x = bytearray(512 * 1024 * 1024); print(len(x))"])
    assert result.oom_killed and result.exit_code == 137
    assert result.note == "killed: out of memory (limit 64 MB)"
    plain = await sandbox.exec(["sh", "-c", "kill -9 $$"])
    assert plain.exit_code == 137 and not plain.oom_killed
    assert (await sandbox.exec(["true"])).exit_code == 0


async def test_environment_has_no_api_keys_even_when_the_host_has_them(
    make_docker_sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-host-secret")
    sandbox = make_docker_sandbox(env={"PROJECT_FLAG": "1", "LEAKY_SECRET": "nope"})
    await sandbox.start()
    code, text = await run(sandbox, "env", env={"ANTHROPIC_API_KEY": "also-no", "EXTRA": "yes"})
    assert code == 0
    assert "host-secret" not in text and "OPENAI_API_KEY" not in text and "also-no" not in text
    assert "LEAKY_SECRET" not in text
    assert "PROJECT_FLAG=1" in text and "EXTRA=yes" in text and "HOME=/home/sandbox" in text
    code, text = await run(sandbox, "ls -l /var/run/docker.sock /run/docker.sock 2>&1")
    assert "No such file" in text


async def test_files_created_in_the_workspace_belong_to_the_sandbox_uid(
    make_docker_sandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    assert (await sandbox.exec(["touch", "mine.txt"])).exit_code == 0
    stat = (sandbox_workspace / "mine.txt").stat()
    assert (stat.st_uid, stat.st_gid) == sandbox_ids()
    if os.getuid() != 0:
        assert sandbox_ids() == (os.getuid(), os.getgid()), "a non-root user's sandbox runs as them"


async def test_sandbox_runs_commands_as_the_configured_uid(
    make_docker_sandbox, sandbox_workspace: Path
) -> None:
    sandbox_workspace.chmod(0o777)
    sandbox = make_docker_sandbox(user="4321:4321")
    await sandbox.start()
    assert await run(sandbox, "id -u; touch theirs.txt") == (0, "4321\n")
    assert (sandbox_workspace / "theirs.txt").stat().st_uid == 4321


async def test_container_killed_from_outside_mid_command_raises_sandbox_error(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox(task_id="killed-task")
    await sandbox.start()
    out = Output()
    running = asyncio.create_task(
        sandbox.exec(["sh", "-c", "echo up; sleep 44"], timeout_s=30, on_output=out)
    )
    while "up" not in out.text():
        await asyncio.sleep(0.02)
    await asyncio.to_thread(
        subprocess.run, ["docker", "kill", str(sandbox.container_id)], capture_output=True
    )
    with pytest.raises(SandboxError, match="the sandbox container for task killed-task stopped"):
        await running
    with pytest.raises(SandboxError, match="stopped"):
        await sandbox.exec(["true"])


async def test_stop_removes_the_container_and_is_safe_twice(make_docker_sandbox, docker_engine) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    container_id = sandbox.container_id
    await sandbox.stop()
    await sandbox.stop()
    with pytest.raises(docker.errors.NotFound):
        docker_engine.api.inspect_container(container_id)


async def test_container_is_labelled_and_limited(make_docker_sandbox, docker_engine) -> None:
    sandbox = make_docker_sandbox(
        task_id="labels-task", limits=SandboxLimits(cpus=1.5, memory_mb=300, pids=99)
    )
    await sandbox.start()
    info = docker_engine.api.inspect_container(sandbox.container_id)
    labels, host = info["Config"]["Labels"], info["HostConfig"]
    assert labels[LABEL] == "1" and labels[LABEL_TASK] == "labels-task"
    assert labels[LABEL_OWNER_PID] == str(os.getpid())
    assert host["NetworkMode"] == "none" and host["AutoRemove"] is True
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 99
    assert host["Memory"] == host["MemorySwap"] == 300 * 1024 * 1024
    assert info["Config"]["User"] == f"{KEEPER_ID}:{KEEPER_ID}", "the main process is the keeper"
    assert sandbox.user == "{}:{}".format(*sandbox_ids())
    assert "no secrets" in sandbox.describe() and "network off" in sandbox.describe()


async def test_container_expires_and_removes_itself_after_its_ttl(
    docker_engine, sandbox_image: str, sandbox_workspace: Path
) -> None:
    spec = SandboxSpec(task_id="ttl-task", workspace=sandbox_workspace, image=sandbox_image)
    sandbox = DockerSandbox(spec, ttl_s=1)
    await sandbox.start()
    container_id = sandbox.container_id
    try:
        assert docker_engine.api.inspect_container(container_id)["Config"]["Cmd"] == ["sleep", "1"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                await asyncio.to_thread(docker_engine.api.inspect_container, container_id)
            except docker.errors.NotFound:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the container outlived its TTL")
    finally:
        await sandbox.stop()


async def test_sweep_removes_containers_whose_owner_is_gone(docker_engine, sandbox_image: str) -> None:
    gone_pid = _a_dead_pid()
    labels = {LABEL: "1", LABEL_TASK: "stale", LABEL_OWNER_PID: str(gone_pid), LABEL_OWNER_START: "1"}
    stale = docker_engine.containers.run(
        sandbox_image, "sleep 300", detach=True, labels=labels, network_mode="none"
    )
    mine_labels = {**labels, LABEL_OWNER_PID: str(os.getpid()), LABEL_OWNER_START: ""}
    mine = docker_engine.containers.run(
        sandbox_image, "sleep 300", detach=True, labels=mine_labels, network_mode="none"
    )
    try:
        removed = await sweep_stale_containers()
        assert stale.id in removed and mine.id not in removed
        with pytest.raises(docker.errors.NotFound):
            docker_engine.api.inspect_container(stale.id)
        assert docker_engine.api.inspect_container(mine.id)["State"]["Running"]
    finally:
        for container in (stale, mine):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def _a_dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_unreachable_engine_gives_a_clear_sandbox_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    sandbox = DockerSandbox(SandboxSpec(task_id="nowhere", workspace=tmp_path))
    with pytest.raises(SandboxError) as info:
        await sandbox.start()
    message = str(info.value)
    assert "Docker engine not reachable at unix:///nonexistent" in message
    assert "--sandbox-backend local" in message
    assert "Traceback" not in message


async def test_missing_image_gives_a_clear_sandbox_error(docker_engine, tmp_path: Path) -> None:
    sandbox = DockerSandbox(
        SandboxSpec(task_id="noimage", workspace=tmp_path, image="codex-tui-nope:missing")
    )
    with pytest.raises(SandboxError, match=r"sandbox image codex-tui-nope:missing not found"):
        await sandbox.start()


async def test_eight_sandboxes_start_concurrently(make_docker_sandbox) -> None:
    sandboxes = [make_docker_sandbox() for _ in range(8)]
    await asyncio.gather(*(sandbox.start() for sandbox in sandboxes))
    results = await asyncio.gather(*(sandbox.exec(["echo", "ready"]) for sandbox in sandboxes))
    assert [result.exit_code for result in results] == [0] * 8
    assert len({sandbox.container_id for sandbox in sandboxes}) == 8


async def test_factory_gives_docker_with_the_repository_setup_image(
    sandbox_image: str, sandbox_workspace: Path, tmp_path: Path, docker_engine
) -> None:
    repo = tmp_path / "repo"
    (repo / ".codex-tui").mkdir(parents=True)
    (repo / ".codex-tui" / "setup.sh").write_text(f"# {uuid.uuid4().hex}\necho prepared > /opt/prepared\n")
    spec = SandboxSpec(task_id="factory", workspace=sandbox_workspace, image=sandbox_image)
    log: list[bytes] = []
    sandbox, note = await create_sandbox(
        spec, SandboxRequest(backend="auto", repo=repo, on_output=lambda _s, data: log.append(data))
    )
    try:
        assert isinstance(sandbox, DockerSandbox) and note == ""
        assert sandbox.image.startswith("codex-tui-env:")
        await sandbox.start()
        assert await run(sandbox, "cat /opt/prepared") == (0, "prepared\n")
        assert b"running the setup script" in b"".join(log)
    finally:
        await sandbox.stop()
        docker_engine.images.remove(sandbox.image, force=True)
