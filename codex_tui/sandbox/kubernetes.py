"""The Kubernetes backend: one pod per task, commands through the exec API, the workspace as data.

`sandbox.backend = "kubernetes"` with a `[sandbox.kubernetes]` table (kubeconfig, context,
namespace, image, node_selector…). The pod is described in `k8s_pod.py`, exec and the client
choice in `k8s_exec.py`, the workspace copies in `sync.py`.

Workspace: the checkout stays on the host (`worktrees/<id>`: diff, checkpoints, undo and apply read
it there). At start it is copied into the pod as one tar stream (with the object folders it
borrows, at the same absolute paths, so git works inside). Before each command, files the host
changed since the last sync (apply_patch, undo) are pushed; after each command the pod's manifest is
compared with the last one and the changed files come back as a tar stream, checked member by
member (`sync.apply_pull`: the copy back is the sandbox boundary). In read-only mode nothing is
copied back.

Commands: one at a time per pod, each through the same wrapper as the Docker backend (runs the
command as a child, then `kill -KILL -1` ends whatever it left). Exec cannot switch uid in
Kubernetes, so the pod's main process shares the commands' uid; it survives because it is PID 1 of
the pod's pid namespace, which `kill -1` skips (see `k8s_pod.KEEPER`). A timeout or a cancelled
exec runs the Docker backend's killer in a second exec.

Escalated commands run in a sibling pod with the network on (same hardening), which copies the
workspace in and back like any task pod; the task's own pod gets the changes by the next push.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import IO, Final, TypeVar

from codex_tui.boundary.identity import sandbox_ids
from codex_tui.config import KubernetesSettings
from codex_tui.sandbox import k8s_pod
from codex_tui.sandbox.base import ExecResult, OutputCallback, ResourceUsage, SandboxError, SandboxSpec
from codex_tui.sandbox.docker_stream import ChunkRelay
from codex_tui.sandbox.exec_scripts import COMMAND_WRAPPER, KILLED_BY_CLEANUP, KILLER, OOM_PROBE
from codex_tui.sandbox.image import DEFAULT_IMAGE
from codex_tui.sandbox.k8s_exec import STDOUT, Captured, ExecStatus, PodExec, capture
from codex_tui.sandbox.local import TIMEOUT_EXIT_CODE, sandbox_env
from codex_tui.sandbox.meters import DiskMeter
from codex_tui.sandbox.sync import (
    POD_MANIFEST,
    Manifest,
    PullLimits,
    SyncError,
    SyncState,
    all_paths,
    diff_manifests,
    nul_list,
    parse_pod_manifest,
    pull_changes,
    scan_host,
    write_tar,
)

T = TypeVar("T")
WORKDIR: Final = k8s_pod.WORKDIR
KILL_GRACE_S: Final = 0.5
STREAM_DRAIN_S: Final = 5.0
MANIFEST_MAX: Final = 64 << 20
SPOOL_MEMORY: Final = 8 << 20
_PUSH = (
    'cd "$1" || exit 1; if [ "$2" = rm ]; then head -c "$3" | xargs -0 -r rm -rf --; '
    'else head -c "$3" | tar -x -p -f -; fi || exit 1; [ "$4" = manifest ] || exit 0; '
) + POD_MANIFEST
"""Host -> pod: deletions (a NUL list for `rm`) or a tar, read as exactly N bytes from stdin (a
1.20 server cannot close stdin); then the new manifest when asked."""
_PULL = (
    'cd /workspace || exit 1; head -c "$1" | '
    "tar -c -f - --format=gnu --null --no-recursion --hard-dereference -T -"
)
"""Pod -> host: a tar of the listed paths (hard links stored as files)."""
_LIST = "cd /workspace || exit 1; " + POD_MANIFEST
_POD_WRAPPER = COMMAND_WRAPPER.replace('[ "$p" != /proc/$$ ]', '[ "$p" != /proc/$$ ] && [ "$p" != /proc/1 ]')
"""The Docker backend's wrapper, except that its wait for leftovers skips PID 1 (the pod's keeper
has the commands' uid here)."""
assert _POD_WRAPPER != COMMAND_WRAPPER

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="codex-k8s")
"""API calls run here (the loop's default executor has 6 workers on 2 cores)."""
_swept: set[tuple[str, str, str]] = set()


async def in_pool(fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run a blocking Kubernetes call in the backend's thread pool (never on the event loop)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, lambda: fn(*args, **kwargs))


class KubernetesSandbox:
    """One task's pod: created and filled by `start`, commands via `exec`, deleted by `stop`."""

    backend = "kubernetes"
    workdir = WORKDIR

    def __init__(self, spec: SandboxSpec, *, ttl_s: int = k8s_pod.DEFAULT_TTL_S) -> None:
        self.spec = spec
        self.settings: KubernetesSettings = spec.kubernetes
        self.image = spec.image or self.settings.image or DEFAULT_IMAGE
        self.uid, self.gid = sandbox_ids()
        self.ttl_s = ttl_s
        self.pod: str | None = None
        self.container_id: str | None = None
        """The pod's name (what the task shows as its sandbox's id)."""
        self.pull_script = _PULL
        """The pod-side command of a copy back (a test replaces it to play a compromised pod)."""
        self._stopped = False
        self._sync = SyncState()
        self._oom_kills = 0
        self._start_lock = asyncio.Lock()
        self._exec_lock = asyncio.Lock()
        limit = spec.limits.disk_mb << 20 if spec.limits.disk_mb else PullLimits().max_bytes
        self.pull_limits = PullLimits(max_bytes=limit)
        self._disk = DiskMeter(spec.workspace)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the pod, wait until it runs, copy the workspace in; the sandbox is then ready."""
        async with self._start_lock:
            if self.pod is not None:
                return
            name = k8s_pod.pod_name(self.spec.task_id)
            manifest = k8s_pod.pod_manifest(self.spec, name, self.image, self.ttl_s)
            host_scan = asyncio.ensure_future(in_pool(scan_host, self.spec.workspace))
            await asyncio.gather(self._sweep_once(), in_pool(k8s_pod.ensure_network_policy, self.settings))
            await in_pool(k8s_pod.create_pod, self.settings, manifest)
            self.pod = self.container_id = name
            try:
                await in_pool(k8s_pod.wait_running, self.settings, name)
                if self._stopped:
                    raise SandboxError(f"the sandbox for task {self.spec.task_id} was stopped while starting")
                await self._copy_in(await host_scan)
            except BaseException:
                host_scan.cancel()
                await asyncio.shield(self._delete())
                raise

    async def _sweep_once(self) -> None:
        """Delete pods left by crashed codex-tui processes (once per process and cluster)."""
        key = (self.settings.kubeconfig, self.settings.context, self.settings.namespace)
        if key in _swept:
            return
        _swept.add(key)
        await in_pool(k8s_pod.sweep_stale_pods, self.settings)

    async def stop(self) -> None:
        """Delete the pod (killing what runs in it); safe to call twice, never raises."""
        self._stopped = True
        with contextlib.suppress(SandboxError):
            await self._delete()

    async def _delete(self) -> None:
        name, self.pod, self.container_id = self.pod, None, None
        if name is not None:
            await in_pool(k8s_pod.delete_pod, self.settings, name)

    async def alive(self) -> bool:
        """Is the pod's container still running? One read; SandboxError when the API does not answer."""
        if self.pod is None:
            return False
        return await in_pool(k8s_pod.pod_state, self.settings, self.pod) == "running"

    async def usage(self) -> ResourceUsage | None:
        """The checkout's disk use on the host (pod CPU and memory need a metrics server: unknown)."""
        return ResourceUsage(disk_bytes=await self._disk.bytes())

    def describe(self) -> str:
        """One line: image, pod, network, workspace access, limits."""
        limits = self.spec.limits
        network = "network on" if self.spec.network else "network off (deny-all NetworkPolicy)"
        workspace = (
            "workspace copied in, never back (read-only)"
            if self.spec.read_only
            else "workspace copied in and back as data"
        )
        return (
            f"kubernetes: {self.image} (pod {self.pod or 'not started'} in {self.settings.namespace}); "
            f"{network}, {workspace} at {WORKDIR}, {limits.cpus:g} CPUs / {limits.memory_mb} MB, "
            f"uid {self.uid}:{self.gid} (never root), no capabilities, read-only root, no service account"
        )

    # --- workspace copies ----------------------------------------------------------------------

    async def _copy_in(self, host: Manifest) -> None:
        """The borrowed object folders, then the checkout; records both sides' manifests."""
        for borrowed in self.spec.extra_ro_mounts:
            objects = await in_pool(scan_host, borrowed)
            await self._send_tar(borrowed, str(borrowed), all_paths(objects), manifest=False)
        self._sync.box = await self._send_tar(self.spec.workspace, WORKDIR, all_paths(host), manifest=True)
        self._sync.host = host

    async def _send_tar(self, root: Path, dest: str, paths: list[str], *, manifest: bool) -> Manifest:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed below
        try:
            size = await in_pool(write_tar, root, paths, spool)
            spool.seek(0)
            argv = ["sh", "-c", _PUSH, "sh", dest, "tar", str(size), "manifest" if manifest else "-"]
            out = await self._capture(argv, stdin=spool, max_stdout=MANIFEST_MAX)
        finally:
            spool.close()
        return self._manifest_from(out, "copy the workspace into the sandbox")

    async def _push(self) -> None:
        """Send what the host changed since the last sync (apply_patch, undo) to the pod."""
        host = await in_pool(scan_host, self.spec.workspace)
        changes = diff_manifests(self._sync.host, host)
        if not changes:
            return
        if changes.delete:
            listed = nul_list(changes.delete)
            argv = [
                "sh",
                "-c",
                _PUSH,
                "sh",
                WORKDIR,
                "rm",
                str(len(listed)),
                "-" if changes.copy else "manifest",
            ]
            out = await self._capture(argv, stdin=listed, max_stdout=MANIFEST_MAX)
            if not changes.copy:
                self._sync.box = self._manifest_from(out, "delete files in the sandbox")
        if changes.copy:
            self._sync.box = await self._send_tar(self.spec.workspace, WORKDIR, changes.copy, manifest=True)
        self._sync.host = host

    async def _pull(self) -> str:
        """Copy what the last command changed back to the host checkout; a note of what was refused."""

        async def list_pod() -> bytes:
            listing = await self._capture(["sh", "-c", _LIST], max_stdout=MANIFEST_MAX)
            return self._ok(listing, "list the workspace").read()

        async def fetch(files: list[str], cap: int) -> tuple[IO[bytes], bool]:
            listed = nul_list(files)
            argv = ["sh", "-c", self.pull_script, "sh", str(len(listed))]
            out = await self._capture(argv, stdin=listed, max_stdout=cap)
            return out.stdout, out.overflow

        return await pull_changes(self._sync, self.spec.workspace, self.pull_limits, list_pod, fetch, in_pool)

    def _manifest_from(self, out: Captured, what: str) -> Manifest:
        try:
            manifest, _ = parse_pod_manifest(self._ok(out, what).read())
        except SyncError as exc:
            raise SandboxError(f"could not {what}: {exc}") from None
        return manifest

    def _ok(self, out: Captured, what: str) -> IO[bytes]:
        if out.status.exit_code == 0 and not out.overflow:
            return out.stdout
        detail = out.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [out.status.reason]
        code = out.status.exit_code
        raise SandboxError(
            f"could not {what} for task {self.spec.task_id}"
            + (f" (exit {code})" if code is not None else "")
            + (f": {detail[0]}" if detail and detail[0] else "")
        )

    async def _capture(
        self, argv: list[str], *, stdin: bytes | IO[bytes] | None = None, max_stdout: int
    ) -> Captured:
        pod = self._require_pod()
        out = await in_pool(capture, self.settings, pod, argv, stdin=stdin, max_stdout=max_stdout)
        if out.status.exit_code is None and not out.overflow:
            await self._raise_if_gone(out.status.reason)
        return out

    def _require_pod(self) -> str:
        if self.pod is None:
            raise SandboxError(f"the sandbox pod for task {self.spec.task_id} is not running")
        return self.pod

    async def _raise_if_gone(self, reason: str) -> None:
        state = await in_pool(k8s_pod.pod_state, self.settings, self._require_pod())
        if state != "running":
            raise SandboxError(f"the sandbox pod for task {self.spec.task_id} stopped ({state})")
        if reason:
            raise SandboxError(
                f"lost a command's stream in the sandbox for task {self.spec.task_id}: {reason}"
            )

    # --- commands ------------------------------------------------------------------------------

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
        """Run argv in the pod (cwd defaults to /workspace), streaming output; then copy changes back."""
        if not argv:
            raise ValueError("empty command")
        if escalated:
            return await self._exec_escalated(argv, cwd, timeout_s, on_output, env)
        async with self._exec_lock:
            await self._push()
            started = time.monotonic()
            try:
                result = await self._run(argv, cwd, timeout_s, on_output, env, started)
            except asyncio.CancelledError:
                if not self.spec.read_only:  # what the interrupted command changed still comes back
                    with contextlib.suppress(SandboxError):
                        await self._pull()
                raise
            if not self.spec.read_only:
                note = await self._pull()
                if note:
                    result.note = f"{result.note}; {note}" if result.note else note
            return result

    async def _run(
        self,
        argv: list[str],
        cwd: str | None,
        timeout_s: float,
        on_output: OutputCallback | None,
        env: dict[str, str] | None,
        started: float,
    ) -> ExecResult:
        pod = self._require_pod()
        pidfile = f"/tmp/.codex-cmd-{uuid.uuid4().hex}"
        variables = sandbox_env(k8s_pod.base_env(), self.spec.env, env)
        command = [
            "env", "-i", *(f"{k}={v}" for k, v in variables.items()),
            "sh", "-c", _POD_WRAPPER, "sh", pidfile, _pod_path(cwd), *argv,
        ]  # fmt: skip
        relay = ChunkRelay(asyncio.get_running_loop(), on_output)
        runner = await in_pool(PodExec, self.settings, pod, command, stdin=False)
        done = _pump(runner, relay)
        try:
            status = await asyncio.wait_for(asyncio.shield(done), max(timeout_s, 0.0))
        except TimeoutError:
            await self._kill(pidfile, runner, done)
            note = f"timed out after {timeout_s:g} s"
            return ExecResult(TIMEOUT_EXIT_CODE, time.monotonic() - started, timed_out=True, note=note)
        except asyncio.CancelledError:
            await asyncio.shield(self._kill(pidfile, runner, done))
            raise
        finally:
            relay.close()
        if status.exit_code is None:
            await self._raise_if_gone(status.reason)
            raise SandboxError(f"lost the command's status in the sandbox for task {self.spec.task_id}")
        duration = time.monotonic() - started
        if status.exit_code == 137:
            await self._raise_if_gone("")
            if await self._oom_happened():
                note = f"killed: out of memory (limit {self.spec.limits.memory_mb} MB)"
                return ExecResult(137, duration, oom_killed=True, note=note)
        return ExecResult(status.exit_code, duration)

    async def _kill(self, pidfile: str, runner: PodExec, done: asyncio.Future[ExecStatus]) -> None:
        """TERM the command's group, KILL after a short grace, then every process of the uid."""
        steps = str(int(KILL_GRACE_S / 0.05))
        with contextlib.suppress(SandboxError):
            for _ in range(10):
                out = await self._capture(["sh", "-c", KILLER, pidfile, steps], max_stdout=65536)
                if out.status.exit_code in (0, KILLED_BY_CLEANUP):
                    break
                await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError, SandboxError):
            await asyncio.wait_for(asyncio.shield(done), STREAM_DRAIN_S)
        runner.close()

    async def _oom_happened(self) -> bool:
        """Did the cgroup's OOM killer end the command (its oom_kill counter grew)?"""
        import re

        with contextlib.suppress(SandboxError):
            out = await self._capture(["sh", "-c", OOM_PROBE], max_stdout=65536)
            match = re.search(rb"oom_kill (\d+)", out.stdout.read())
            if match:
                count = int(match.group(1))
                grew, self._oom_kills = count > self._oom_kills, count
                return grew
        return False

    async def _exec_escalated(
        self,
        argv: list[str],
        cwd: str | None,
        timeout_s: float,
        on_output: OutputCallback | None,
        env: dict[str, str] | None,
    ) -> ExecResult:
        """One command in a sibling pod with the network on; its changes come back to the host."""
        sibling = KubernetesSandbox(
            replace(self.spec, mode="full-access"), ttl_s=max(60, int(timeout_s) + 120)
        )
        async with self._exec_lock:
            try:
                await sibling.start()
                return await sibling.exec(argv, cwd=cwd, timeout_s=timeout_s, on_output=on_output, env=env)
            finally:
                await asyncio.shield(sibling.stop())

    async def sync_to_sandbox(self) -> None:
        """Push host-side changes now (exec does this before every command; for callers that cannot wait)."""
        async with self._exec_lock:
            await self._push()

    async def sync_from_sandbox(self) -> str:
        """Copy the pod's changes back now (exec does this after every command); a note of refusals."""
        async with self._exec_lock:
            return "" if self.spec.read_only else await self._pull()


def _pod_path(cwd: str | None) -> str:
    if not cwd:
        return WORKDIR
    return cwd if cwd.startswith("/") else f"{WORKDIR}/{cwd}"


def _pump(runner: PodExec, relay: ChunkRelay) -> asyncio.Future[ExecStatus]:
    """Read the exec's frames in a dedicated thread, relaying output; the future ends with the exec."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[ExecStatus] = loop.create_future()

    def settle(result: ExecStatus | BaseException) -> None:
        if done.done():
            return
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)

    def run() -> None:
        result: ExecStatus | BaseException
        try:
            result = runner.pump(lambda ch, data: relay.put("stdout" if ch == STDOUT else "stderr", data))
        except Exception as exc:
            result = exc
        loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=run, name="codex-k8s-stream", daemon=True).start()
    done.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
    return done
