"""LocalSandbox with real subprocesses, plain and (when installed) inside bubblewrap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.config import Config
from codex_tui.sandbox.base import SandboxError, SandboxSpec, Stream
from codex_tui.sandbox.factory import SandboxRequest, create_sandbox, spec_from_config, startup_sweep
from codex_tui.sandbox.local import LocalSandbox, bwrap_path, is_secret_name, sandbox_env

BWRAP = bwrap_path() is not None
KINDS = ["plain", pytest.param("bwrap", marks=pytest.mark.skipif(not BWRAP, reason="bubblewrap not usable"))]


class Output:
    """Collects on_output chunks with their arrival times."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Stream, bytes, float]] = []

    def __call__(self, stream: Stream, data: bytes) -> None:
        self.chunks.append((stream, data, time.monotonic()))

    def text(self, stream: Stream | None = None) -> str:
        return b"".join(d for s, d, _ in self.chunks if stream in (None, s)).decode()


def make(workspace: Path, kind: str, **fields: object) -> LocalSandbox:
    spec = SandboxSpec(task_id="local", workspace=workspace, **fields)  # type: ignore[arg-type]
    return LocalSandbox(spec, use_bwrap=kind == "bwrap")


def running(marker: str) -> bool:
    """Is a process whose command line contains `marker` still alive on this machine?"""
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


async def run(sandbox: LocalSandbox, script: str, **kwargs: object) -> tuple[int, str]:
    out = Output()
    result = await sandbox.exec(["sh", "-c", script], on_output=out, **kwargs)  # type: ignore[arg-type]
    return result.exit_code, out.text()


@pytest.mark.parametrize("kind", KINDS)
async def test_output_streams_chunk_by_chunk_while_the_command_runs(tmp_path: Path, kind: str) -> None:
    sandbox = make(tmp_path, kind)
    await sandbox.start()
    out = Output()
    result = await sandbox.exec(["sh", "-c", "echo one; sleep 0.5; echo two >&2; echo three"], on_output=out)
    ended = time.monotonic()
    assert result.exit_code == 0
    assert out.text("stdout") == "one\nthree\n" and out.text("stderr") == "two\n"
    assert ended - out.chunks[0][2] > 0.4, "the first line should arrive before the command ends"


@pytest.mark.parametrize("kind", KINDS)
async def test_exit_codes_and_cwd_relative_to_the_workspace(tmp_path: Path, kind: str) -> None:
    (tmp_path / "sub").mkdir()
    sandbox = make(tmp_path, kind)
    await sandbox.start()
    assert (await sandbox.exec(["sh", "-c", "exit 9"])).exit_code == 9
    assert await run(sandbox, "pwd", cwd="sub") == (0, f"{tmp_path / 'sub'}\n")
    assert (await sandbox.exec(["sh", "-c", "kill -9 $$"])).exit_code == 137


async def test_missing_program_is_exit_127_with_a_note(tmp_path: Path) -> None:
    sandbox = make(tmp_path, "plain")
    await sandbox.start()
    out = Output()
    result = await sandbox.exec(["no-such-program-here"], on_output=out)
    assert result.exit_code == 127
    assert "no-such-program-here" in result.note and "no-such-program-here" in out.text("stderr")
    assert (await sandbox.exec([])).note == "empty command"


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_returns_124_and_kills_the_whole_process_group(tmp_path: Path, kind: str) -> None:
    marker = f"sleep 61.{uuid.uuid4().int % 10**6}"
    sandbox = make(tmp_path, kind)
    await sandbox.start()
    started = time.monotonic()
    result = await sandbox.exec(["sh", "-c", f"{marker} & {marker}"], timeout_s=0.5)
    assert result.exit_code == 124 and result.timed_out and "timed out" in result.note
    assert time.monotonic() - started < 3
    assert not running(marker)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_exec_kills_the_command(tmp_path: Path, kind: str) -> None:
    marker = f"sleep 62.{uuid.uuid4().int % 10**6}"
    sandbox = make(tmp_path, kind)
    await sandbox.start()
    out = Output()
    task = asyncio.create_task(sandbox.exec(["sh", "-c", f"echo up; {marker}"], timeout_s=30, on_output=out))
    while "up" not in out.text():
        await asyncio.sleep(0.02)
    assert running(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not running(marker)


async def test_cancelling_while_the_command_starts_leaves_no_process(tmp_path: Path) -> None:
    """A cancel landing at any point of process start-up kills the command at once."""
    sandbox = make(tmp_path, "plain")
    await sandbox.start()
    markers = []
    for ticks in range(8):
        marker = f"sleep 63.{uuid.uuid4().int % 10**6}"
        markers.append(marker)
        task = asyncio.create_task(sandbox.exec(["sh", "-c", marker], timeout_s=30))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        # The cancel must end the command, not wait for its 63 s sleep to finish.
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done, f"cancelled after {ticks} ticks, exec still waits for the command"
        with pytest.raises(asyncio.CancelledError):
            task.result()
    await asyncio.sleep(0.1)
    assert [m for m in markers if running(m)] == []


async def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    sandbox = make(tmp_path, "plain")
    await sandbox.start()
    started = time.monotonic()
    result = await sandbox.exec(["sh", "-c", "trap '' TERM; sleep 63; sleep 63"], timeout_s=0.3)
    assert result.exit_code == 124
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("kind", KINDS)
async def test_environment_is_clean_and_never_carries_secrets(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    monkeypatch.setenv("GH_TOKEN", "ghp-host-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-host-secret")
    monkeypatch.setenv("SOME_HOST_VARIABLE", "host-only")
    sandbox = make(tmp_path, kind, env={"PROJECT_FLAG": "1", "DEPLOY_TOKEN": "no"})
    await sandbox.start()
    code, text = await run(sandbox, "env", env={"OPENROUTER_API_KEY": "no", "EXTRA": "yes"})
    assert code == 0
    assert "host-secret" not in text and "SOME_HOST_VARIABLE" not in text
    assert "DEPLOY_TOKEN" not in text and "OPENROUTER_API_KEY" not in text
    assert "PROJECT_FLAG=1" in text and "EXTRA=yes" in text and "TERM=dumb" in text
    assert "PATH=" in text and "HOME=" in text


def test_secret_names_are_recognised() -> None:
    for name in ("OPENAI_API_KEY", "GITHUB_TOKEN", "my_secret", "DB_PASSWORD", "APIKEY", "DOCKER_HOST"):
        assert is_secret_name(name), name
    for name in ("PATH", "HOME", "LANG", "PYTHONPATH", "CI"):
        assert not is_secret_name(name), name
    assert sandbox_env({"PATH": "/bin"}, {"X_TOKEN": "t"}, None, {"A": "1"}) == {"PATH": "/bin", "A": "1"}


async def test_plain_backend_says_it_does_not_isolate(tmp_path: Path) -> None:
    sandbox = make(tmp_path, "plain", mode="read-only")
    await sandbox.start()
    assert not sandbox.isolated
    who = "you" if os.getuid() else f"uid {sandbox_ids()[0]} (not root)"
    assert sandbox.describe().startswith(f"local: no isolation — commands run as {who} on this machine")
    assert "read-only mode is not enforced" in sandbox.describe()


async def test_missing_checkout_is_a_clear_error(tmp_path: Path) -> None:
    sandbox = make(tmp_path / "gone", "plain")
    with pytest.raises(SandboxError, match="does not exist"):
        await sandbox.start()


async def test_stop_kills_background_processes_left_by_commands(tmp_path: Path) -> None:
    marker = f"sleep 64.{uuid.uuid4().int % 10**6}"
    sandbox = make(tmp_path, "plain")
    await sandbox.start()
    result = await sandbox.exec(["sh", "-c", f"{marker} > /dev/null 2>&1 &"], timeout_s=5)
    assert result.exit_code == 0
    assert running(marker)
    await sandbox.stop()
    await sandbox.stop()
    await asyncio.sleep(0.05)
    assert not running(marker)


CONNECT = (
    "import socket, errno\ns = socket.socket(); s.settimeout(2)\n"
    "try:\n    s.connect(('1.1.1.1', 53)); print('connected')\n"
    "except OSError as e:\n    print(errno.errorcode.get(e.errno, str(e)))\n"
)


@pytest.mark.skipif(not BWRAP, reason="bubblewrap not usable")
async def test_bwrap_has_no_network_unless_full_access_or_escalated(tmp_path: Path) -> None:
    sandbox = make(tmp_path, "bwrap")
    await sandbox.start()
    assert sandbox.isolated and "network off" in sandbox.describe()
    assert await interfaces(sandbox) == ["lo"]
    _code, text = await run(sandbox, f'python3 -c "{CONNECT}"')
    assert text.strip() == "ENETUNREACH"
    assert await interfaces(sandbox, escalated=True) != ["lo"], "escalated commands get the network"
    open_sandbox = make(tmp_path, "bwrap", mode="full-access")
    await open_sandbox.start()
    assert await interfaces(open_sandbox) != ["lo"]


async def interfaces(sandbox: LocalSandbox, escalated: bool = False) -> list[str]:
    """Network interfaces the sandbox's network namespace has (from its own /proc)."""
    _code, text = await run(sandbox, "tail -n +3 /proc/net/dev | cut -d: -f1", escalated=escalated)
    return sorted(name.strip() for name in text.split())


@pytest.mark.skipif(not BWRAP, reason="bubblewrap not usable")
async def test_bwrap_read_only_mode_refuses_writes_and_root_is_read_only(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("original\n")
    if needs_chown():  # writable by the sandbox's uid but for the read-only mode
        for path in (tmp_path, tmp_path / "keep.txt"):
            os.chown(path, *sandbox_ids())
    sandbox = make(tmp_path, "bwrap", mode="read-only")
    await sandbox.start()
    code, text = await run(sandbox, "echo changed > keep.txt")
    assert code != 0 and "Read-only file system" in text
    code, text = await run(sandbox, "touch /etc/codex-owned")
    assert code != 0 and "Read-only file system" in text
    assert await run(sandbox, "echo scratch > /tmp/x && cat /tmp/x") == (0, "scratch\n")
    assert (tmp_path / "keep.txt").read_text() == "original\n"
    writable = make(tmp_path, "bwrap")
    await writable.start()
    assert (await writable.exec(["sh", "-c", "echo new > made.txt"])).exit_code == 0
    assert (tmp_path / "made.txt").read_text() == "new\n"
    code, text = await run(writable, "touch /etc/codex-owned")
    assert code != 0 and not Path("/etc/codex-owned").exists()


async def test_auto_backend_falls_back_to_local_with_a_note_when_docker_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    spec = spec_from_config(Config(sandbox_memory_mb=512, sandbox_pids=77), "t-auto", tmp_path, "read-only")
    assert (spec.mode, spec.limits.memory_mb, spec.limits.pids) == ("read-only", 512, 77)
    sandbox, note = await create_sandbox(spec, SandboxRequest(backend="auto"))
    assert isinstance(sandbox, LocalSandbox)
    assert "Docker engine not reachable" in note and "local backend" in note
    assert await startup_sweep() == []
    with pytest.raises(SandboxError, match="unknown sandbox backend 'podman'"):
        await create_sandbox(spec, SandboxRequest(backend="podman"))
