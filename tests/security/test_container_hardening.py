"""Container hardening, tried as an attacker inside a task's sandbox would, against the real engine.

Each test runs hostile commands the way a model or a repository's test script could: fork bombs
left in the background, processes that escape with setsid and ignore TERM, `kill -KILL -1`, setuid
binaries, writes past the disk limit, writes to the image. The sandbox must contain them and stay
usable; nothing may run as root, in the task container, its escalated sibling or on the local backend.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from codex_tui.boundary.identity import KEEPER_ID, needs_chown, sandbox_ids
from codex_tui.sandbox.base import ExecResult, SandboxError, SandboxLimits, SandboxSpec
from codex_tui.sandbox.disk import DiskQuota, provision, release
from codex_tui.sandbox.docker import HOME, DockerSandbox
from codex_tui.sandbox.engine import LABEL_TASK
from codex_tui.sandbox.env_image import ensure_env_image
from codex_tui.sandbox.local import LocalSandbox, bwrap_path

pytestmark = pytest.mark.docker

UID, GID = sandbox_ids()
ZERO_CAPS = "0000000000000000"


@dataclass
class Ran:
    """A command's result and everything it printed."""

    result: ExecResult
    output: str

    @property
    def code(self) -> int:
        """The command's exit code."""
        return self.result.exit_code


async def sh(sandbox: DockerSandbox | LocalSandbox, script: str, **kwargs: object) -> Ran:
    """Run a shell script as the attacker and keep its output."""
    chunks: list[bytes] = []
    result = await sandbox.exec(
        ["sh", "-c", script],
        on_output=lambda _s, data: chunks.append(data),
        **kwargs,  # type: ignore[arg-type]
    )
    return Ran(result, b"".join(chunks).decode(errors="replace"))


async def processes(sandbox: DockerSandbox) -> list[str]:
    """`uid pid args` of every process in the container, seen from outside (`docker top`).

    From outside, so that no new command (whose wrapper first ends what earlier ones left) runs.
    """
    client = docker.from_env()
    try:
        top = await asyncio.to_thread(client.api.top, sandbox.container_id, ps_args="-o uid,pid,args")
    finally:
        client.close()
    return [" ".join(str(field) for field in row) for row in top["Processes"]]


def status_field(text: str, name: str) -> str:
    """One field of /proc/<pid>/status."""
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {text!r}")


@pytest.fixture
async def limited_checkout(tmp_path: Path) -> AsyncIterator[tuple[Path, DiskQuota]]:
    """An empty checkout with its own 64 MB filesystem (as root), released after the test."""
    checkout, state = tmp_path / "checkout", tmp_path / "state"
    quota = await provision(checkout, state, 64, owner=sandbox_ids())
    try:
        yield checkout, quota
    finally:
        await release(checkout, state)


# --- what `docker inspect` and the container itself show ----------------------------------------


async def test_task_container_is_hardened_as_docker_inspect_shows(
    make_docker_sandbox, docker_engine: docker.DockerClient, limited_checkout: tuple[Path, DiskQuota]
) -> None:
    checkout, quota = limited_checkout
    limits = SandboxLimits(cpus=1.0, memory_mb=512, pids=100)
    sandbox = make_docker_sandbox(workspace=checkout, limits=limits)
    await sandbox.start()
    info = docker_engine.api.inspect_container(sandbox.container_id)
    host, config = info["HostConfig"], info["Config"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert not [opt for opt in host["SecurityOpt"] if opt.startswith("seccomp")], "default seccomp kept"
    assert not host["Privileged"] and host["ReadonlyRootfs"] is True
    assert config["User"] == f"{KEEPER_ID}:{KEEPER_ID}"
    assert (host["Memory"], host["MemorySwap"]) == (512 * 2**20, 512 * 2**20)
    assert (host["PidsLimit"], host["NanoCpus"]) == (100, 10**9)
    assert set(host["Tmpfs"]) == {"/tmp", HOME}
    for options in host["Tmpfs"].values():
        assert {"nosuid", "nodev"} <= set(options.split(",")) and "size=" in options
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}["core"] == (0, 0)
    assert "nofile" in {u["Name"] for u in host["Ulimits"]}
    assert host["LogConfig"]["Config"]["max-size"]
    ran = await sh(sandbox, "id -u; id -g; cat /proc/self/status; grep ' /workspace ' /proc/self/mountinfo")
    assert ran.code == 0, ran.output
    uid, gid = ran.output.splitlines()[:2]
    assert (int(uid), int(gid)) == (UID, GID) and UID != 0
    assert status_field(ran.output, "CapEff") == status_field(ran.output, "CapBnd") == ZERO_CAPS
    assert status_field(ran.output, "NoNewPrivs") == "1" and status_field(ran.output, "Seccomp") == "2"
    workspace_mount = ran.output.strip().splitlines()[-1]
    if os.geteuid() == 0:
        assert quota.mounted, quota.describe()
    if quota.mounted:
        flags = set(workspace_mount.split()[5].split(","))
        assert {"nosuid", "nodev"} <= flags, workspace_mount


async def test_nothing_outside_the_workspace_tmp_and_home_is_writable(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    for target in ("/etc/passwd", "/usr/bin/git", "/planted", "/var/tmp/x", "/root/x"):
        ran = await sh(sandbox, f"echo pwned >> {target}")
        assert ran.code != 0, f"{target} was writable"
    ran = await sh(
        sandbox, 'echo ok > /tmp/t && echo ok > "$HOME/h" && cat /tmp/t "$HOME/h" && stat -c "%u %a" "$HOME"'
    )
    assert (ran.code, ran.output) == (0, f"ok\nok\n{UID} 700\n")


async def test_home_tmpfs_is_size_limited(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    ran = await sh(
        sandbox, 'head -c 400M /dev/zero > "$HOME/fill"; echo "exit $?"; rm -f "$HOME/fill"', timeout_s=60
    )
    assert "No space left on device" in ran.output and "exit 1" in ran.output, ran.output


# --- processes left behind ----------------------------------------------------------------------


async def test_backgrounded_fork_bomb_does_not_wedge_the_next_command(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox(limits=SandboxLimits(pids=64))
    await sandbox.start()
    bombs = [
        "bash -c ':(){ :|:& };:' &",
        "setsid bash -c ':(){ :|:& };:' > /dev/null 2>&1 &",
    ]
    for bomb in bombs:
        started = time.monotonic()
        await sh(sandbox, bomb, timeout_s=5)
        left = await processes(sandbox)
        assert [line.split()[0] for line in left] == [str(KEEPER_ID)] * 2, f"after {bomb!r}: {left}"
        ran = await sh(sandbox, "echo still here", timeout_s=5)
        assert (ran.code, ran.output) == (0, "still here\n"), f"after {bomb!r}: {ran.output}"
        assert time.monotonic() - started < 8


async def test_processes_left_in_the_background_are_gone_when_the_command_returns(
    make_docker_sandbox,
) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    started = time.monotonic()
    ran = await sh(
        sandbox,
        "sleep 1001 & nohup sleep 1002 >/dev/null 2>&1 & setsid sleep 1003 & "
        "(trap '' TERM HUP; exec sleep 1004) & echo launched",
        timeout_s=30,
    )
    assert (ran.code, ran.output) == (0, "launched\n")
    assert time.monotonic() - started < 5, "a background child holding the output must not hold the command"
    left = await processes(sandbox)
    assert [line.split()[0] for line in left] == [str(KEEPER_ID)] * 2, left  # docker-init and sleep


@pytest.mark.parametrize("kill_from_host", [True, False], ids=["host-signal", "exec-inside"])
async def test_timeout_leaves_nothing_even_when_the_command_ignores_term_and_escapes(
    make_docker_sandbox, kill_from_host: bool
) -> None:
    sandbox = make_docker_sandbox(kill_from_host=kill_from_host)
    await sandbox.start()
    script = "trap '' TERM; setsid sh -c \"trap '' TERM; sleep 1011\" & sleep 1012 & sleep 1013"
    ran = await sh(sandbox, script, timeout_s=0.5)
    assert ran.result.timed_out and ran.code == 124
    left = await processes(sandbox)
    assert not [line for line in left if "sleep 101" in line], left


async def test_cancelled_command_leaves_nothing(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    running = asyncio.create_task(sh(sandbox, "setsid sleep 1021 & echo up; sleep 1022", timeout_s=60))
    await asyncio.sleep(1.0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    left = await processes(sandbox)
    assert not [line for line in left if "sleep 102" in line], left


async def test_main_process_survives_kill_minus_one_from_a_command(
    make_docker_sandbox, docker_engine: docker.DockerClient
) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    ran = await sh(sandbox, "kill -KILL -1; kill -KILL 1; kill -TERM 1; pkill -9 sleep; echo tried")
    assert "tried" in ran.output
    assert await sandbox.alive()
    assert docker_engine.api.inspect_container(sandbox.container_id)["State"]["Running"]
    assert (await sh(sandbox, "echo next")).output == "next\n"


async def test_two_overlapping_commands_both_finish(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    first, second = await asyncio.gather(
        sh(sandbox, "sleep 0.5; echo first"), sh(sandbox, "sleep 0.2; echo second")
    )
    assert (first.code, first.output, second.code, second.output) == (0, "first\n", 0, "second\n")


# --- no root, no privilege ----------------------------------------------------------------------


async def test_setuid_binaries_and_escalation_give_no_privilege(
    make_docker_sandbox,
    docker_engine: docker.DockerClient,
    sandbox_image: str,
    limited_checkout: tuple[Path, DiskQuota],
) -> None:
    checkout, _quota = limited_checkout
    planted = checkout / "suid-id"
    planted.write_bytes(_file_from_image(docker_engine, sandbox_image, "/usr/bin/id"))
    os.chmod(planted, 0o4755)  # root-owned setuid when the tests run as root: the worst case
    sandbox = make_docker_sandbox(workspace=checkout)
    await sandbox.start()
    attempts = {
        "planted setuid binary": "./suid-id -u",
        "su": "su -c 'id -u' root < /dev/null",
        "mount": "mount -t tmpfs none /tmp && echo mounted",
        "setuid syscall": "python3 -c 'import os; os.setuid(0); print(0)'",
        "chown to root": "touch mine && chown 0:0 mine && echo chowned",
        "device node": "mknod /tmp/disk b 7 0 && echo made",
    }
    for name, script in attempts.items():
        ran = await sh(sandbox, script)
        assert "mounted" not in ran.output and "chowned" not in ran.output and "made" not in ran.output
        assert ran.output.strip() != "0", f"{name}: {ran.output}"
    assert (await sh(sandbox, "./suid-id -u")).output.strip() == str(UID)


def _file_from_image(client: docker.DockerClient, image: str, path: str) -> bytes:
    container = client.containers.create(image, "true")
    try:
        bits, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as archive:
            member = archive.extractfile(os.path.basename(path))
            assert member is not None
            return member.read()
    finally:
        container.remove(force=True)


async def test_commands_never_run_as_root_even_when_the_host_is_root(make_docker_sandbox) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    ran = await sh(sandbox, "id -u; id -G; grep -h '^Uid' /proc/1/status /proc/self/status")
    lines = ran.output.splitlines()
    assert int(lines[0]) == UID != 0 and "0" not in lines[1].split()
    assert lines[2].split()[1] == str(KEEPER_ID) and lines[3].split()[1] == str(UID)
    with pytest.raises(SandboxError, match="neither root"):
        make_docker_sandbox(user="0:0")
    with pytest.raises(SandboxError, match="neither root"):
        make_docker_sandbox(user=f"{KEEPER_ID}")


async def test_escalated_sibling_container_is_hardened_the_same_way(
    make_docker_sandbox, docker_engine: docker.DockerClient, sandbox_workspace: Path
) -> None:
    sandbox = make_docker_sandbox(mode="read-only", limits=SandboxLimits(memory_mb=384, pids=77))
    await sandbox.start()
    marker = uuid.uuid4().hex
    running = asyncio.create_task(
        sh(
            sandbox,
            f"echo {marker}; echo uid=$(id -u); cat /proc/self/status; touch /etc/x; sleep 100 & sleep 2",
            escalated=True,
            timeout_s=30,
        )
    )
    sibling = await _wait_for_sibling(docker_engine, sandbox.spec.task_id)
    host, config = sibling["HostConfig"], sibling["Config"]
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and config["User"] == f"{UID}:{GID}"
    assert (host["Memory"], host["PidsLimit"]) == (384 * 2**20, 77)
    assert set(host["Tmpfs"]) == {"/tmp", HOME} and host["LogConfig"]["Config"]["max-size"]
    ran = await running
    assert ran.code == 0 and marker in ran.output
    assert f"uid={UID}" in ran.output.splitlines(), ran.output[:300]
    assert status_field(ran.output, "CapEff") == ZERO_CAPS and status_field(ran.output, "NoNewPrivs") == "1"
    assert "Read-only file system" in ran.output


async def _wait_for_sibling(client: docker.DockerClient, task_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = client.api.containers(filters={"label": ["codex-tui.escalated=1", f"{LABEL_TASK}={task_id}"]})
        if found:
            return dict(client.api.inspect_container(found[0]["Id"]))
        await asyncio.sleep(0.05)
    raise AssertionError("the escalated command's container never appeared")


async def test_local_backend_never_runs_commands_as_root(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    if needs_chown():
        os.chown(checkout, UID, GID)
    secret = tmp_path / "root-only.txt"
    secret.write_text("ROOT-SECRET\n")
    secret.chmod(0o600)
    kinds = [False] + ([True] if bwrap_path() else [])
    for use_bwrap in kinds:
        sandbox = LocalSandbox(SandboxSpec(task_id="local-root", workspace=checkout), use_bwrap=use_bwrap)
        await sandbox.start()
        ran = await sh(sandbox, f"id -u; id -G; touch made-{use_bwrap}; cat {secret}")
        lines = ran.output.splitlines()
        assert int(lines[0]) == UID and "0" not in lines[1].split(), ran.output
        assert (checkout / f"made-{use_bwrap}").stat().st_uid == UID
        if needs_chown():
            assert "ROOT-SECRET" not in ran.output, f"bwrap={use_bwrap} read a root-only host file"
        await sandbox.stop()


# --- storage ------------------------------------------------------------------------------------


async def test_writing_past_the_disk_limit_fails_inside_and_spares_the_host(
    make_docker_sandbox, limited_checkout: tuple[Path, DiskQuota]
) -> None:
    checkout, quota = limited_checkout
    if not quota.mounted:
        pytest.skip(f"no own filesystem here ({quota.note}); the watchdog is tested in test_sandbox_disk")
    sandbox = make_docker_sandbox(workspace=checkout)
    await sandbox.start()
    free_before = shutil.disk_usage(checkout.parent).free
    ran = await sh(sandbox, "dd if=/dev/zero of=big bs=1M count=5120 2>&1; echo exit $?", timeout_s=120)
    assert "No space left on device" in ran.output and "exit 1" in ran.output, ran.output
    assert quota.image is not None
    allocated = quota.image.stat().st_blocks * 512
    assert allocated < 80 * 2**20, f"the image holds {allocated} bytes for a 64 MB limit"
    assert free_before - shutil.disk_usage(checkout.parent).free < 200 * 2**20
    assert (await sh(sandbox, "rm big && echo ok > after.txt && cat after.txt")).output == "ok\n"


async def test_setup_container_runs_with_the_task_limits(
    sandbox_image: str, docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = (
        f"# {uuid.uuid4().hex}\n"
        "{ cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; } > /opt/pids\n"
        "{ cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; }"
        " > /opt/memory\n"
        "grep NoNewPrivs /proc/self/status > /opt/nnp\n"
    )
    tag = await ensure_env_image(sandbox_image, repo, script, limits=SandboxLimits(memory_mb=320, pids=91))
    try:
        container = docker_engine.containers.run(tag, "cat /opt/pids /opt/memory /opt/nnp", remove=True)
        pids, memory, nnp = container.decode().splitlines()
        assert (pids, int(memory), nnp.split()[-1]) == ("91", 320 * 2**20, "1")
    finally:
        docker_engine.images.remove(tag, force=True)
