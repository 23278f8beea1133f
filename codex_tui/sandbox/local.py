"""The local backend: commands run as subprocesses in the task's checkout, inside bubblewrap if present."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from codex_tui.sandbox.base import ExecResult, OutputCallback, SandboxError, SandboxSpec, Stream

TIMEOUT_EXIT_CODE = 124
KILL_GRACE_S = 0.5
"""SIGTERM first, SIGKILL this long after: lets a command clean up, but never for long."""
DRAIN_AFTER_EXIT_S = 0.25
"""After the command exits, a background child may still hold its stdout; stop reading after this."""
READ_CHUNK = 65536

_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Environment names that must never reach a sandbox (API keys, tokens, secrets, passwords)."""
    return bool(_SECRET_NAME.search(name)) or name == "DOCKER_HOST"


def sandbox_env(base: Mapping[str, str], *extra: Mapping[str, str] | None) -> dict[str, str]:
    """`base` plus each mapping in `extra`, with every secret-looking name dropped."""
    env: dict[str, str] = {}
    for mapping in (base, *extra):
        for name, value in (mapping or {}).items():
            if not is_secret_name(name):
                env[name] = value
    return env


def host_basics() -> dict[str, str]:
    """The only host variables a local command inherits: PATH, HOME, LANG (TERM is always dumb)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
    }


def exit_code_of(returncode: int) -> int:
    """Shell convention: a command killed by signal N exits with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


_bwrap_usable: dict[str, bool] = {}


def bwrap_path() -> str | None:
    """The bubblewrap binary when installed and able to create a sandbox here (probed once)."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    if path not in _bwrap_usable:
        probe = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "--unshare-pid", "true"]
        try:
            ok = subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        _bwrap_usable[path] = ok
    return path if _bwrap_usable[path] else None


class LocalSandbox:
    """Runs commands on this machine in the task's checkout; bubblewrap isolates them when available."""

    backend = "local"

    def __init__(self, spec: SandboxSpec, *, use_bwrap: bool | None = None) -> None:
        self.spec = spec
        self.workdir = str(spec.workspace)
        self._want_bwrap = use_bwrap
        self._bwrap: str | None = None
        self._groups: set[int] = set()
        self._started = False

    async def start(self) -> None:
        """Check the checkout exists and whether bubblewrap can be used."""
        if not await asyncio.to_thread(self.spec.workspace.is_dir):
            raise SandboxError(f"the task's checkout {self.spec.workspace} does not exist")
        if self._want_bwrap is not False:
            self._bwrap = await asyncio.to_thread(bwrap_path)
            if self._want_bwrap and self._bwrap is None:
                raise SandboxError("bubblewrap (bwrap) is not installed or cannot create sandboxes here")
        self._started = True

    @property
    def isolated(self) -> bool:
        """True when commands run inside bubblewrap."""
        return self._bwrap is not None

    def describe(self) -> str:
        """One line for the user: what this backend does and does not isolate."""
        if self._bwrap is None:
            return (
                "local: no isolation — commands run as you on this machine with network and write "
                "access to everything you can write"
                + (" (read-only mode is not enforced)" if self.spec.read_only else "")
            )
        network = "network on" if self.spec.network else "network off"
        workspace = "workspace read-only" if self.spec.read_only else "workspace writable"
        return (
            f"local (bubblewrap): read-only root, {workspace}, {network}, private /tmp; "
            "runs as you, no CPU/memory limits"
        )

    async def exec(
        self,
        argv: list[str],
        *,
        cwd: str | None = None,
        timeout_s: float = 10.0,
        on_output: OutputCallback | None = None,
        env: dict[str, str] | None = None,
        escalated: bool = False,
    ) -> ExecResult:
        """Run argv in its own process group; timeout or cancellation kills the whole group."""
        started = time.monotonic()
        if not argv:
            return ExecResult(exit_code=127, duration_s=0.0, note="empty command")
        if not self._started:
            await self.start()
        workdir = self._resolve_cwd(cwd)
        full_argv, run_cwd, command_env = self._command(argv, workdir, env, escalated)
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *full_argv,
                cwd=run_cwd,
                env=command_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        )
        try:
            # Shielded: a cancellation that lands while the process is being started must not
            # lose its handle (the command would run on unseen); it is killed below instead.
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            await _kill_spawned(spawn)
            raise
        except OSError as exc:
            note = f"cannot run {argv[0]}: {exc.strerror or exc}"
            if on_output is not None:
                on_output("stderr", (note + "\n").encode())
            return ExecResult(exit_code=127, duration_s=time.monotonic() - started, note=note)
        self._groups.add(proc.pid)
        try:
            return await self._wait(proc, started, timeout_s, on_output)
        finally:
            if not _group_alive(proc.pid):
                self._groups.discard(proc.pid)

    async def alive(self) -> bool:
        """Always True: this machine is the sandbox, there is nothing that can disappear."""
        return True

    async def stop(self) -> None:
        """Kill process groups left running by this sandbox's commands (e.g. `server &`); idempotent."""
        for pgid in list(self._groups):
            _signal_group(pgid, signal.SIGKILL)
        self._groups.clear()

    # --- helpers -------------------------------------------------------------------------------

    def _resolve_cwd(self, cwd: str | None) -> str:
        if not cwd:
            return self.workdir
        path = Path(cwd)
        return str(path if path.is_absolute() else Path(self.workdir) / path)

    def _command(
        self, argv: list[str], cwd: str, env: dict[str, str] | None, escalated: bool
    ) -> tuple[list[str], str | None, dict[str, str]]:
        basics = host_basics()
        if self._bwrap is None:
            return argv, cwd, sandbox_env(basics, self.spec.env, env)
        basics["HOME"] = "/tmp"
        args = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        workspace = str(self.spec.workspace)
        writable = escalated or not self.spec.read_only
        args += ["--bind" if writable else "--ro-bind", workspace, workspace]
        for mount in self.spec.extra_ro_mounts:
            args += ["--ro-bind", str(mount), str(mount)]
        if not (self.spec.network or escalated):
            args.append("--unshare-net")
        args += ["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", cwd, "--", *argv]
        return args, None, sandbox_env(basics, self.spec.env, env)

    async def _wait(
        self,
        proc: asyncio.subprocess.Process,
        started: float,
        timeout_s: float,
        on_output: OutputCallback | None,
    ) -> ExecResult:
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_pump(proc.stdout, "stdout", on_output)),
            asyncio.create_task(_pump(proc.stderr, "stderr", on_output)),
        ]
        timed_out = False
        try:
            try:
                await asyncio.wait_for(proc.wait(), timeout=max(timeout_s, 0.0))
            except TimeoutError:
                timed_out = True
                await _kill_group(proc)
            except asyncio.CancelledError:
                await asyncio.shield(_kill_group(proc))
                raise
            await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT_S)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        duration = time.monotonic() - started
        if timed_out:
            note = f"timed out after {timeout_s:g} s"
            return ExecResult(TIMEOUT_EXIT_CODE, duration, timed_out=True, note=note)
        return ExecResult(exit_code_of(proc.returncode or 0), duration)


async def _pump(reader: asyncio.StreamReader, stream: Stream, on_output: OutputCallback | None) -> None:
    """Forward one pipe's chunks as they arrive."""
    while chunk := await reader.read(READ_CHUNK):
        if on_output is not None:
            on_output(stream, chunk)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, then SIGKILL it after a short grace."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _group_alive(pgid: int) -> bool:
    """Does any process of the group still run (a background child of a finished command)?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _kill_spawned(spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
    """Wait for a spawn whose caller was cancelled, then kill the new process group and reap it."""
    try:
        proc = await spawn
    except OSError:
        return
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()
