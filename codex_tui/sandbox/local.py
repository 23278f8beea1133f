"""The local backend: commands run as subprocesses in the task's checkout, inside bubblewrap if present."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.sandbox.base import (
    ExecResult,
    OutputCallback,
    ResourceUsage,
    SandboxError,
    SandboxSpec,
    Stream,
)
from codex_tui.sandbox.meters import ProcessMeter

TIMEOUT_EXIT_CODE = 124
KILL_GRACE_S = 0.5
"""SIGTERM first, SIGKILL this long after: lets a command clean up, but never for long."""
DRAIN_AFTER_EXIT_S = 0.25
"""After the command exits, a background child may still hold its stdout; stop reading after this."""
GROUP_EXIT_LIMIT_S = 2.0
"""After SIGKILL, how long to wait for every process of the group to be gone (they are, in practice)."""
GROUP_POLL_S = 0.01
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
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {
        "PATH": reachable_path(path) if needs_chown() else path,
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
    }


def reachable_path(path: str) -> str:
    """PATH without the folders an unprivileged uid cannot enter (e.g. tools installed under /root):
    commands of a root host run as such a uid, and a shim they cannot run hides the system's tool."""
    kept = [folder for folder in path.split(os.pathsep) if folder and _world_reachable(folder)]
    return os.pathsep.join(kept) or "/usr/local/bin:/usr/bin:/bin"


def _world_reachable(folder: str) -> bool:
    current = os.path.abspath(folder)
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if not st.st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def exit_code_of(returncode: int) -> int:
    """Shell convention: a command killed by signal N exits with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def command_identity() -> dict[str, Any]:
    """Subprocess arguments that run a command as `sandbox_ids()`: never as root, also when we are root."""
    if not needs_chown():
        return {}
    uid, gid = sandbox_ids()
    return {"user": uid, "group": gid, "extra_groups": []}


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
            ok = ok and (not needs_chown() or shutil.which("setpriv") is not None)
        except (OSError, subprocess.SubprocessError):
            ok = False
        _bwrap_usable[path] = ok
    return path if _bwrap_usable[path] else None


def as_sandbox_uid(argv: list[str]) -> list[str]:
    """argv run by setpriv as `sandbox_ids()`, with no groups and no capabilities.

    When codex-tui runs as root, bubblewrap runs as root too (it must reach the checkout, often
    under root's 0700 home) and the command drops to the sandbox uid inside it.
    """
    uid, gid = sandbox_ids()
    setpriv = shutil.which("setpriv") or "setpriv"
    drop = ["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", *drop, "--", *argv]


def reachable_args(paths: list[str], tmpfs_roots: tuple[str, ...] = ("/tmp",)) -> list[str]:
    """bwrap arguments that let the sandbox uid reach each path bound at the same place.

    The first ancestor it could not enter (root's home, a 0700 temp folder) is replaced by an
    empty tmpfs, which also hides the rest of it; the folders leading to the path are recreated
    there (as in /tmp) with mode 0755.
    """
    uid, gid = sandbox_ids()
    roots = set(tmpfs_roots)
    made: set[str] = set()
    args: list[str] = []
    for path in paths:
        hidden = False
        for ancestor in list(reversed(Path(path).parents))[1:]:
            name = str(ancestor)
            if hidden and name not in made:
                args += ["--perms", "0755", "--dir", name]
                made.add(name)
            elif not hidden and name not in roots and not _enterable(ancestor, uid, gid):
                args += ["--perms", "0755", "--tmpfs", name]
                roots.add(name)
            hidden = hidden or name in roots
    return args


def _enterable(folder: Path, uid: int, gid: int) -> bool:
    try:
        info = folder.stat()
    except OSError:
        return True  # bwrap reports a missing path itself
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _who() -> str:
    """Who commands run as: "you", or the unprivileged uid when codex-tui runs as root."""
    return f"uid {sandbox_ids()[0]} (not root)" if needs_chown() else "you"


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
        self._meter = ProcessMeter(spec.workspace)

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
                f"local: no isolation — commands run as {_who()} on this machine with network and "
                "write access to everything that user can write"
                + (" (read-only mode is not enforced)" if self.spec.read_only else "")
            )
        network = "network on" if self.spec.network else "network off"
        workspace = "workspace read-only" if self.spec.read_only else "workspace writable"
        return (
            f"local (bubblewrap): read-only root, {workspace}, {network}, private /tmp; "
            f"runs as {_who()}, no CPU/memory limits"
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
                **(command_identity() if self._bwrap is None else {}),
            )
        )
        try:
            # Shielded: a cancellation that lands while the process is being started must not
            # lose its handle (the command would run on unseen); it is killed below instead.
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            await _run_to_end(_kill_spawned(spawn))
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

    async def usage(self) -> ResourceUsage | None:
        """CPU and memory of the running commands' process trees (psutil) and the checkout's disk use."""
        return await self._meter.sample(list(self._groups))

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
        if needs_chown():  # root's HOME is not the sandbox uid's
            basics["HOME"] = "/tmp"
        if self._bwrap is None:
            return argv, cwd, sandbox_env(basics, self.spec.env, env)
        basics["HOME"] = "/tmp"
        args = [self._bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--tmpfs", "/tmp"]
        workspace = str(self.spec.workspace)
        if needs_chown():
            args += reachable_args([workspace, *map(str, self.spec.extra_ro_mounts)])
            argv = as_sandbox_uid(argv)
        writable = escalated or not self.spec.read_only
        args += ["--bind" if writable else "--ro-bind", workspace, workspace]
        for mount in self.spec.extra_ro_mounts:
            args += ["--ro-bind", str(mount), str(mount)]
        if not (self.spec.network or escalated):
            args.append("--unshare-net")
        # No --new-session: its setsid() would take bubblewrap's pid-1 process out of the process
        # group that a kill signals, and until its set-up ends that process is not bound to its
        # parent either, so a cancel landing then left it and the command running. The outer bwrap
        # already leads a session of its own (start_new_session) with no terminal to reach.
        args += ["--unshare-pid", "--die-with-parent", "--chdir", cwd, "--", *argv]
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
                await _run_to_end(_kill_group(proc))
            except asyncio.CancelledError:
                await _run_to_end(_kill_group(proc))
                raise
            await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT_S)
        finally:
            _close_pipes(proc)  # readers still waiting (a background child holds a pipe) get EOF
            await asyncio.wait(readers, timeout=DRAIN_AFTER_EXIT_S)
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
    """SIGTERM the command's process group, SIGKILL it after a short grace; returns once all are gone."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        await _group_exit(proc.pid, KILL_GRACE_S)
    finally:  # also when cancelled: nothing of the command may outlive this
        _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()
    await _group_exit(proc.pid, GROUP_EXIT_LIMIT_S, signal.SIGKILL)


async def _group_exit(pgid: int, limit_s: float, resend: signal.Signals | None = None) -> None:
    """Wait until no process of the group is left (at most `limit_s`), signalling late joiners again."""
    deadline = time.monotonic() + limit_s
    while _group_running(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(GROUP_POLL_S)
        if resend is not None:
            _signal_group(pgid, resend)


def _group_running(pgid: int) -> bool:
    """Does a process of the group still run? Zombies do not count.

    bubblewrap's pid-1 process, orphaned when the outer bwrap dies first, stays a zombie in the
    group until init reaps it, which can take a second.
    """
    if not _group_alive(pgid):
        return False
    if not os.path.isdir("/proc"):
        return True
    group = str(pgid)
    with os.scandir("/proc") as entries:
        for entry in entries:
            fields = _stat_fields(entry.name) if entry.name.isdigit() else []  # state, ppid, pgrp…
            if len(fields) > 2 and fields[2] == group and fields[0] != "Z":
                return True
    return False


def _stat_fields(pid: str) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat_file:
            return stat_file.read().rsplit(")", 1)[-1].split()
    except OSError:
        return []


async def _run_to_end(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end even when the caller is cancelled meanwhile; that cancel is raised after."""
    job = asyncio.ensure_future(work)
    cancelled = False
    while not job.done():
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            if job.cancelled():
                raise
            cancelled = True
    job.result()
    if cancelled:
        raise asyncio.CancelledError


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close the command's pipes now, on a running loop.

    A pipe a background child still holds would otherwise be closed by the garbage collector,
    perhaps after the event loop has closed, which prints "Event loop is closed" tracebacks.
    """
    transport = getattr(proc, "_transport", None)
    if isinstance(transport, asyncio.SubprocessTransport):
        transport.close()


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
    await _group_exit(proc.pid, GROUP_EXIT_LIMIT_S, signal.SIGKILL)
    _close_pipes(proc)
