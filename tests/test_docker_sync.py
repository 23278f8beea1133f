"""A remote Docker engine: the checkout is copied into the container and back as data, never mounted.

The engine is the local one reached over TCP through a small unix→tcp forwarder the test starts (and
kills by pid), so `DOCKER_HOST=tcp://127.0.0.1:PORT` looks remote to codex-tui.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.sandbox import env_image
from codex_tui.sandbox.base import SandboxLimits, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.docker_sync import copies_workspace, engine_is_local, put_tree
from codex_tui.sandbox.engine import forget_client
from codex_tui.sandbox.factory import SandboxRequest, create_sandbox
from codex_tui.scripted import ScriptedServer
from tests.test_sandbox_docker import Output
from tests.test_tasks_support import scenario, scripted_config, shell_call, started_manager, submit

FORWARDER = r"""
import asyncio, sys

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()

async def handle(reader, writer):
    engine_reader, engine_writer = await asyncio.open_unix_connection(sys.argv[1])
    await asyncio.gather(pipe(reader, engine_writer), pipe(engine_reader, writer), return_exceptions=True)
    writer.close()
    engine_writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def test_only_a_unix_socket_counts_as_a_local_engine() -> None:
    assert engine_is_local("unix:///var/run/docker.sock")
    assert not engine_is_local("tcp://127.0.0.1:2375")
    assert not engine_is_local("ssh://builder@example.com")
    assert copies_workspace("auto", "tcp://10.0.0.5:2376")
    assert not copies_workspace("auto", "unix:///var/run/docker.sock")
    assert copies_workspace("copy", "unix:///var/run/docker.sock")
    assert not copies_workspace("mount", "tcp://10.0.0.5:2376")


@pytest.fixture
def tcp_engine(docker_engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DOCKER_HOST pointing at the local engine over TCP (a forwarder process, killed by pid after)."""
    socket_path = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
    forwarder = subprocess.Popen(
        [sys.executable, "-c", FORWARDER, socket_path], stdout=subprocess.PIPE, text=True
    )
    try:
        assert forwarder.stdout is not None
        location = f"tcp://127.0.0.1:{int(forwarder.stdout.readline())}"
        monkeypatch.setenv("DOCKER_HOST", location)
        yield location
        forget_client()
    finally:
        forwarder.kill()
        forwarder.wait()


MakeSandbox = Callable[..., DockerSandbox]


@pytest.fixture
async def make_remote_sandbox(
    tcp_engine: str, sandbox_image: str, sandbox_workspace: Path
) -> AsyncIterator[MakeSandbox]:
    """`make(**spec_fields)` -> an unstarted DockerSandbox on the "remote" engine (stopped after)."""
    made: list[DockerSandbox] = []

    def make(**fields: object) -> DockerSandbox:
        fields.setdefault("task_id", f"remote-{os.getpid()}-{len(made)}")
        fields.setdefault("workspace", sandbox_workspace)
        fields.setdefault("image", sandbox_image)
        sandbox = DockerSandbox(SandboxSpec(**fields))  # type: ignore[arg-type]
        made.append(sandbox)
        return sandbox

    yield make
    await asyncio.gather(*(sandbox.stop() for sandbox in made), return_exceptions=True)


async def run(sandbox: DockerSandbox, script: str) -> tuple[int, str, str]:
    """(exit code, output, note) of a shell script in the sandbox."""
    out = Output()
    result = await sandbox.exec(["sh", "-c", script], on_output=out, timeout_s=60)
    return result.exit_code, out.text(), result.note


@pytest.mark.docker
async def test_remote_engine_copies_the_checkout_in_and_the_changes_back(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path, docker_engine: docker.DockerClient
) -> None:
    (sandbox_workspace / "old.txt").write_text("from the host\n")
    (sandbox_workspace / "gone.txt").write_text("deleted inside\n")
    sandbox = make_remote_sandbox()
    assert sandbox.copy is not None and sandbox.kill_from_host is False
    await sandbox.start()
    assert sandbox.container_id is not None
    mounts = docker_engine.api.inspect_container(sandbox.container_id)["Mounts"]
    assert {m["Type"] for m in mounts} == {"volume"}, "nothing of this machine is bind-mounted"

    code, out, note = await run(
        sandbox, "cat old.txt && echo made > new.txt && mkdir -p d/e && echo deep > d/e/f.txt && rm gone.txt"
    )
    assert (code, out, note) == (0, "from the host\n", "")
    assert (sandbox_workspace / "new.txt").read_text() == "made\n"
    assert (sandbox_workspace / "d/e/f.txt").read_text() == "deep\n"
    assert not (sandbox_workspace / "gone.txt").exists()

    (sandbox_workspace / "patched.txt").write_text("written on the host (apply_patch)\n")
    (sandbox_workspace / "new.txt").unlink()
    code, out, _ = await run(sandbox, "cat patched.txt; ls")
    assert code == 0 and out.splitlines() == [
        "written on the host (apply_patch)",
        "d",
        "old.txt",
        "patched.txt",
    ]

    volumes = [m["Name"] for m in mounts]
    await sandbox.stop()
    left = {v["Name"] for v in docker_engine.api.volumes()["Volumes"] or []}
    assert not left & set(volumes), "the copy's volumes go with the container"


@pytest.mark.docker
async def test_hostile_sandbox_files_come_back_as_links_or_not_at_all(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_remote_sandbox(limits=SandboxLimits(disk_mb=5))
    await sandbox.start()
    code, _, note = await run(
        sandbox,
        "ln -s /etc/passwd passwd-link && mkfifo pipe && head -c 20000000 /dev/zero > huge.bin "
        "&& mkdir sub && ln -s /etc sub/etc-link && echo fine > ok.txt",
    )
    assert code == 0
    link = sandbox_workspace / "passwd-link"
    assert link.is_symlink() and os.readlink(link) == "/etc/passwd"
    assert os.readlink(sandbox_workspace / "sub/etc-link") == "/etc"
    assert not (sandbox_workspace / "pipe").exists() and not (sandbox_workspace / "huge.bin").exists()
    assert (sandbox_workspace / "ok.txt").read_text() == "fine\n"
    assert "pipe: a FIFO" in note and "huge.bin: past the workspace size limit (5 MB)" in note

    # The host never writes through a link: the link turned folder inside becomes a folder here.
    code, _, note = await run(sandbox, "rm sub/etc-link && mkdir sub/etc-link && echo x > sub/etc-link/probe")
    assert (code, note) == (0, "")
    assert not Path("/etc/probe").exists()
    assert (sandbox_workspace / "sub/etc-link/probe").read_text() == "x\n"
    assert not (sandbox_workspace / "sub/etc-link").is_symlink()


@pytest.mark.docker
async def test_an_escalated_command_shares_the_copy_and_its_changes_come_back(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_remote_sandbox()
    await sandbox.start()
    result = await sandbox.exec(["sh", "-c", "echo escalated > esc.txt"], escalated=True, timeout_s=60)
    assert result.exit_code == 0
    assert (sandbox_workspace / "esc.txt").read_text() == "escalated\n"
    code, out, _ = await run(sandbox, "cat esc.txt")
    assert (code, out) == (0, "escalated\n")


@pytest.mark.docker
async def test_a_forged_copy_back_stream_cannot_write_outside_the_checkout(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_remote_sandbox()
    await sandbox.start()
    assert sandbox.copy is not None
    # A compromised container answers the copy back with names it was not asked for.
    sandbox.copy.pull_script = (
        "cd /tmp && echo pwned > escape.txt && tar -c -f - -P --transform 's,^,../,' escape.txt"
    )
    code, _, note = await run(sandbox, "echo asked > wanted.txt")
    assert code == 0
    assert not (sandbox_workspace.parent / "escape.txt").exists()
    assert "leaves the workspace" in note


@pytest.mark.docker
async def test_a_task_on_a_remote_engine_shows_the_files_its_command_wrote_in_the_diff(
    tcp_engine: str, git_repo: Path, isolated_home: Path, sandbox_image: str
) -> None:
    script = scenario(
        "remote",
        {"tool_calls": [shell_call("sh", "-c", "echo remote > made-remotely.txt")]},
        {"text": "done"},
    )
    async with ScriptedServer([script]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "write a file", model="scripted:remote")
            assert await manager.wait_for(task_id, timeout=120) == "ready"
            [info] = log.of(task_id, p.SANDBOX_INFO)
            diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    assert "copied in and back as data" in info.data["message"]
    assert [f["path"] for f in diff.data["files"]] == ["made-remotely.txt"]
    assert "+remote" in diff.data["patch"]


@pytest.mark.docker
async def test_repository_setup_script_sees_the_repository_on_a_remote_engine(
    tcp_engine: str,
    sandbox_image: str,
    sandbox_workspace: Path,
    tmp_path: Path,
    docker_engine: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "repo"
    (repo / ".codex-tui").mkdir(parents=True)
    (repo / "requirements.txt").write_text("from the repository\n")
    (repo / ".codex-tui" / "setup.sh").write_text(
        f"# {uuid.uuid4().hex}\ncp /workspace/requirements.txt /opt/prepared\n"
    )
    copied: list[Path] = []

    def spy(api: docker.APIClient, container_id: str, root: Path, dest: str, **kw: Any) -> object:
        copied.append(root)
        return put_tree(api, container_id, root, dest, **kw)

    monkeypatch.setattr(env_image, "put_tree", spy)
    spec = SandboxSpec(task_id="remote-setup", workspace=sandbox_workspace, image=sandbox_image)
    sandbox, _ = await create_sandbox(spec, SandboxRequest(backend="docker", repo=repo))
    assert copied == [repo.resolve()], "the setup container got a copy, not a bind mount"
    try:
        assert isinstance(sandbox, DockerSandbox) and sandbox.copy is not None
        await sandbox.start()
        assert (await run(sandbox, "cat /opt/prepared"))[:2] == (0, "from the repository\n")
    finally:
        await sandbox.stop()
        docker_engine.images.remove(sandbox.image, force=True)


@pytest.mark.docker
async def test_a_read_only_tasks_writes_do_not_come_back_with_a_later_escalated_command(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path
) -> None:
    (sandbox_workspace / "code.py").write_text("honest\n")
    (sandbox_workspace / "keep.txt").write_text("kept\n")
    (sandbox_workspace / "dir").mkdir()
    (sandbox_workspace / "dir" / "inner.txt").write_text("inner\n")
    sandbox = make_remote_sandbox(mode="read-only")
    await sandbox.start()
    # Not escalated, so never copied back: but the copy in the container is writable.
    code, out, _ = await run(
        sandbox,
        "echo evil > code.py && echo planted > planted.txt && rm keep.txt && rm -r dir && ln -s /etc dir "
        "&& mkdir -p new/deep && echo x > new/deep/f && chmod 555 new/deep new",
    )
    assert code == 0, out
    assert not (sandbox_workspace / "planted.txt").exists()
    # The user approves an innocent escalated command: only what it did comes back.
    result = await sandbox.exec(
        ["sh", "-c", "cat code.py keep.txt dir/inner.txt > esc.txt; exit 0"], escalated=True
    )
    assert result.exit_code == 0, result.note
    assert (sandbox_workspace / "code.py").read_text() == "honest\n"
    assert (sandbox_workspace / "keep.txt").read_text() == "kept\n"
    assert (sandbox_workspace / "dir" / "inner.txt").read_text() == "inner\n"
    assert not (sandbox_workspace / "planted.txt").exists() and not (sandbox_workspace / "new").exists()
    assert (sandbox_workspace / "esc.txt").read_text() == "honest\nkept\ninner\n", "it saw the host's files"


@pytest.mark.docker
async def test_long_and_undecodable_names_come_back_through_the_guarded_tar_reader(
    make_remote_sandbox: MakeSandbox, sandbox_workspace: Path
) -> None:
    sandbox = make_remote_sandbox()
    await sandbox.start()
    long_dir = "/".join(["d" * 120] * 3)
    code, out, note = await run(
        sandbox,
        f"mkdir -p {long_dir} && echo deep > {long_dir}/{'f' * 200} "
        f"&& printf 'raw' > \"$(printf 'caf\\351')\" && ln -s {'t' * 3000} long-link",
    )
    assert (code, note) == (0, ""), out
    assert (sandbox_workspace / long_dir / ("f" * 200)).read_text() == "deep\n"
    assert (sandbox_workspace / os.fsdecode(b"caf\xe9")).read_bytes() == b"raw"
    assert os.readlink(sandbox_workspace / "long-link") == "t" * 3000
