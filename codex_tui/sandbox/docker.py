"""The Docker backend: one long-lived container per task, commands run in it with `docker exec`.

Lifetime: the container's main process is `sleep <ttl>` under docker-init, with auto_remove. A heartbeat
would need either an exec every few seconds (cost and log noise for every task) or a host file bind
mounted in, touched by a timer; instead a crash of the app is covered twice: the next start-up
sweeps containers whose owner process is gone (`docker_reap.sweep_stale_containers`), and if the app never
starts again the container expires by itself after the TTL and removes itself.

Escalation: a container started with network "none" cannot be attached to a network later, so an
escalated command runs in a sibling ephemeral container (same image, mounts, user and hardening;
network on, workspace writable) that is removed when the command ends.

Hardening: every capability dropped, `no-new-privileges`, Docker's default seccomp profile, a
read-only root filesystem with size-limited tmpfs for /tmp and HOME, ulimits, a capped container
log. Nobody is root inside: the main process runs as KEEPER_ID and commands as `sandbox_ids()`
(never 0, also when the host user is root). Because they differ, the exec wrapper can end a
command with `kill -KILL -1` (a shell builtin: no free pid needed; the kernel signals every process
of the command's uid in the container's pid namespace in one pass) and so leaves nothing behind
that could hold pids, memory or the output stream, while the container itself survives. That
cleanup would also end a concurrent command, so one sandbox runs its commands one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
import uuid
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from codex_tui.boundary.identity import KEEPER_ID
from codex_tui.sandbox.base import ExecResult, OutputCallback, ResourceUsage, SandboxError, SandboxSpec
from codex_tui.sandbox.docker_hardening import (
    CAPPED_LOG,
    HOME,
    HOME_SIZE_MB,
    KEEPER_USER,
    LIMITS,
    TMP_SIZE_MB,
    command_ids,
)
from codex_tui.sandbox.docker_kill import (
    group_in_container,
    kill_uid_in_container,
    signal_group,
    wait_group_gone,
)
from codex_tui.sandbox.docker_reap import reap_orphans, remove_container, remove_quietly
from codex_tui.sandbox.docker_stream import ChunkRelay, pump_in_thread, stream_exec
from codex_tui.sandbox.docker_sync import WorkspaceCopy, copies_workspace, engine_is_local
from codex_tui.sandbox.egress import Egress
from codex_tui.sandbox.engine import (
    LABEL_TASK,
    ClientFactory,
    engine_location,
    get_client,
    in_thread,
    owner_labels,
)
from codex_tui.sandbox.exec_scripts import COMMAND_WRAPPER, KILLED_BY_CLEANUP, KILLER, OOM_PROBE
from codex_tui.sandbox.image import DEFAULT_IMAGE, IMAGE_PATH
from codex_tui.sandbox.local import TIMEOUT_EXIT_CODE, sandbox_env
from codex_tui.sandbox.meters import ContainerMeter

WORKDIR = "/workspace"
DEFAULT_TTL_S = 24 * 3600
KILL_GRACE_S = 0.5
KILL_ATTEMPTS = 10
STOPPING_WAIT_S = 1.0
STREAM_DRAIN_S = 5.0
"""After killing a command, how long to wait for its output stream to close before giving up on it."""

_BASE_ENV = {"PATH": IMAGE_PATH, "HOME": HOME, "LANG": "C.UTF-8", "TERM": "dumb"}


class DockerSandbox:
    """One task's container: created by `start`, commands via `exec`, removed by `stop`."""

    backend = "docker"
    workdir = WORKDIR

    def __init__(
        self,
        spec: SandboxSpec,
        client_factory: ClientFactory | None = None,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        user: str | None = None,
        kill_from_host: bool | None = None,
        egress: Egress | None = None,
    ) -> None:
        self.spec = spec
        self.egress = egress
        """Limited network: the task's internal network and egress proxy, made at start."""
        self.image = spec.image or DEFAULT_IMAGE
        self.uid, self.gid = command_ids(user)
        self.user = f"{self.uid}:{self.gid}"
        """uid:gid of commands; the container's main process runs as KEEPER_ID."""
        self.ttl_s = ttl_s
        # Signal command groups from the host only when the engine shares our pids (a unix socket).
        self.kill_from_host = engine_is_local(engine_location()) if kill_from_host is None else kill_from_host
        self.copy = WorkspaceCopy(spec, self.uid, self.gid) if copies_workspace(spec.docker_sync) else None
        """The checkout copied in and back as data (remote engine) instead of bind-mounted."""
        self.meter = ContainerMeter(spec.workspace)
        self.container_id: str | None = None
        self._client_factory = client_factory
        self._client: docker.DockerClient | None = None
        self._stopped = False
        self._oom_kills = 0
        self._start_lock = asyncio.Lock()
        self._exec_lock = asyncio.Lock()
        self._ulimits = LIMITS

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create and start the container; returns as soon as a command can run in it."""
        async with self._start_lock:
            if self.container_id is not None:
                return
            client = await get_client(self._client_factory)
            self._client = client
            await reap_orphans(client)
            if self.egress is not None:
                self.egress.ttl_s = self.ttl_s
                await self.egress.start(client)
            try:
                container_id = await in_thread(self._create, client, f"sleep {self.ttl_s}", False)
            except BaseException:
                if self.egress is not None:
                    await asyncio.shield(self.egress.stop())
                raise
            if self._stopped:
                await remove_container(client, container_id)
                if self.egress is not None:
                    await self.egress.stop()
                raise SandboxError(f"the sandbox for task {self.spec.task_id} was stopped while starting")
            self.container_id = container_id
            if self.copy is not None:
                try:
                    await self.copy.copy_in(client, container_id)
                except BaseException:
                    await asyncio.shield(self.stop())
                    raise

    async def stop(self) -> None:
        """Remove the container (killing what runs in it); safe to call twice, never raises.

        When the engine is unreachable the container is removed as soon as it answers again.
        """
        self._stopped = True
        container_id, self.container_id = self.container_id, None
        client = self._client
        if container_id is not None and client is not None and await remove_container(client, container_id):
            await reap_orphans(client)
        if self.egress is not None:
            await self.egress.stop()

    async def alive(self) -> bool:
        """Is the container still running? One inspect; False when it was removed, stopped or expired.

        Raises SandboxError (EngineLost) when the engine does not answer.
        """
        if self.container_id is None or self._client is None:
            return False
        return await in_thread(self._running, self._client, self.container_id)

    def _running(self, client: docker.DockerClient, container_id: str) -> bool:
        try:
            state = client.api.inspect_container(container_id)["State"]
        except NotFound:
            return False
        except DockerException as exc:
            raise SandboxError(
                f"cannot inspect the sandbox container for task {self.spec.task_id}: {_explain(exc)}"
            ) from None
        return bool(state.get("Running"))

    def describe(self) -> str:
        """One line: image, container, network, workspace access, limits."""
        limits = self.spec.limits
        network = "network on" if self.spec.network else "network off"
        if self.egress is not None and not self.spec.network:
            network = self.egress.describe()
        workspace = "workspace read-only" if self.spec.read_only else "workspace writable"
        if self.copy is not None:
            workspace = self.copy.describe()
        short = (self.container_id or "not started")[:12]
        return (
            f"docker: {self.image} (container {short}); {network}, {workspace} at {WORKDIR}, "
            f"{limits.cpus:g} CPUs / {limits.memory_mb} MB / {limits.pids} pids, uid {self.user} "
            "(never root), no capabilities, read-only root, no secrets, no docker socket"
        )

    def _create(self, client: docker.DockerClient, command: str | list[str], escalated: bool) -> str:
        kwargs = self._container_kwargs(client, escalated)
        try:
            created = self._create_clamping_cpus(client, command, kwargs)
            try:
                client.api.start(created["Id"])
            except APIError as exc:
                remove_quietly(client, created["Id"])
                if "rlimit" not in _explain(exc):
                    raise
                # The engine's own open-files limit is below NOFILE_HARD (raising it needs a
                # capability the container does not have): inherit the engine's limit instead.
                self._ulimits = [u for u in LIMITS if u.name != "nofile"]
                kwargs["host_config"]["Ulimits"] = self._ulimits
                created = self._create_clamping_cpus(client, command, kwargs)
                client.api.start(created["Id"])
        except ImageNotFound:
            raise self._image_missing() from None
        except DockerException as exc:
            raise SandboxError(
                f"could not start the sandbox container for task {self.spec.task_id}: {_explain(exc)}"
            ) from None
        return str(created["Id"])

    def _image_missing(self) -> SandboxError:
        hint = "" if self.image == DEFAULT_IMAGE else f" or build/pull {self.image}"
        return SandboxError(f"sandbox image {self.image} not found: run `codex-tui sandbox build`{hint}")

    def _create_clamping_cpus(
        self, client: docker.DockerClient, command: str | list[str], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            return dict(client.api.create_container(command=command, **kwargs))
        except APIError as exc:
            match = re.search(r"only (\d+) CPUs available", _explain(exc))
            if not match:
                raise
        cpus = int(match.group(1))
        kwargs["host_config"]["NanoCpus"] = cpus * 10**9
        return dict(client.api.create_container(command=command, **kwargs))

    def _container_kwargs(self, client: docker.DockerClient, escalated: bool) -> dict[str, Any]:
        """The container's settings; the escalated sibling differs only in network, workspace and user.

        The workspace bind keeps the flags of the host mount it comes from: `nosuid,nodev` when
        the checkout is its own filesystem (sandbox/disk.py). A read-only bind is remounted by
        the runtime without them; nothing can be written there from inside then.
        """
        spec, limits = self.spec, self.spec.limits
        read_only = spec.read_only and not escalated
        binds = {str(spec.workspace): {"bind": WORKDIR, "mode": "ro" if read_only else "rw"}}
        for mount in spec.extra_ro_mounts:
            binds[str(mount)] = {"bind": str(mount), "mode": "ro"}
        copied: dict[str, Any] = {}
        if self.copy is not None:  # the volumes of the copy; a sibling shares the task container's
            binds = {}
            copied = {"volumes_from": [self.container_id]} if escalated else {"mounts": self.copy.mounts()}
        memory = f"{limits.memory_mb}m"
        host_config = client.api.create_host_config(
            **copied,
            binds=binds,
            network_mode="bridge" if (spec.network or escalated) else self._quiet_network(),
            dns=self._proxy_dns(escalated),
            nano_cpus=int(limits.cpus * 10**9),
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=limits.pids,
            read_only=True,
            tmpfs=self._tmpfs(),
            ulimits=self._ulimits,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            log_config=CAPPED_LOG,
            auto_remove=not escalated,
            init=True,
        )
        labels = {**owner_labels(), LABEL_TASK: spec.task_id}
        if escalated:
            labels["codex-tui.escalated"] = "1"
        return {
            "image": self.image,
            # The sibling's main process is the command's wrapper; a task container's is `sleep`,
            # run by another uid than commands so that their cleanup cannot stop it.
            "user": self.user if escalated else f"{KEEPER_ID}:{KEEPER_ID}",
            "working_dir": WORKDIR,
            "environment": sandbox_env(_BASE_ENV, spec.env, self._proxy_env(escalated)),
            "labels": labels,
            "host_config": host_config,
            "stdin_open": False,
            "tty": False,
        }

    def _limited(self, escalated: bool) -> bool:
        """Does this container reach out only through the egress proxy?"""
        return self.egress is not None and not (self.spec.network or escalated)

    def _quiet_network(self) -> str:
        """No network, or (limited) only the task's internal network where the proxy listens."""
        return self.egress.network if self.egress is not None else "none"

    def _proxy_dns(self, escalated: bool) -> list[str] | None:
        """Limited: the proxy's address as DNS server (it answers none), so the task resolves nothing."""
        return [self.egress.proxy_ip] if self.egress is not None and self._limited(escalated) else None

    def _proxy_env(self, escalated: bool) -> dict[str, str]:
        """HTTP(S)_PROXY and NO_PROXY when limited (the only way out); nothing otherwise."""
        return self.egress.env() if self.egress is not None and self._limited(escalated) else {}

    def _tmpfs(self) -> dict[str, str]:
        """/tmp for everyone (exec kept: build tools run things from it) and HOME for the command's uid."""
        flags = "rw,exec,nosuid,nodev"
        return {
            "/tmp": f"{flags},size={TMP_SIZE_MB}m,mode=1777",
            HOME: f"{flags},size={HOME_SIZE_MB}m,mode=700,uid={self.uid},gid={self.gid}",
        }

    # --- exec ----------------------------------------------------------------------------------

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
        """Run argv in the container, streaming output; timeout or cancellation kills it inside.

        Commands run one at a time (the wrapper's cleanup ends every process of their uid).
        """
        started = time.monotonic()
        if not argv:
            return ExecResult(exit_code=127, duration_s=0.0, note="empty command")
        escalate = escalated and (self.spec.read_only or not self.spec.network)
        if escalate and self.copy is None:
            return await self._exec_escalated(argv, cwd, timeout_s, on_output, env, started)
        async with self._exec_lock:
            if self.copy is None:
                return await self._exec_one(argv, cwd, timeout_s, on_output, env, started)
            await self._ensure_container()
            run = self._exec_escalated if escalate else self._exec_one
            back = escalate or not self.spec.read_only
            return await self.copy.around(
                lambda: run(argv, cwd, timeout_s, on_output, env, started), pull=back
            )

    async def usage(self) -> ResourceUsage | None:
        """CPU and memory of the container (docker stats, in a thread) and the checkout's disk use."""
        return await self.meter.sample(self._client, self.container_id)

    async def _ensure_container(self) -> None:
        if self.container_id is None:
            if self._stopped:
                raise SandboxError(f"the sandbox for task {self.spec.task_id} was stopped")
            await self.start()

    async def _exec_one(
        self,
        argv: list[str],
        cwd: str | None,
        timeout_s: float,
        on_output: OutputCallback | None,
        env: dict[str, str] | None,
        started: float,
    ) -> ExecResult:
        await self._ensure_container()
        assert self._client is not None and self.container_id is not None
        pidfile = f"/tmp/.codex-exec-{uuid.uuid4().hex[:12]}.pid"
        wrapped = ["sh", "-c", COMMAND_WRAPPER, "sh", pidfile, _container_path(cwd), *argv]
        exec_id = await in_thread(self._exec_create, wrapped, env, self.user)
        relay = ChunkRelay(asyncio.get_running_loop(), on_output)
        stream_done = stream_exec(self._client, exec_id, relay)
        killed = False
        try:
            await asyncio.wait_for(asyncio.shield(stream_done), timeout=max(timeout_s, 0.0))
        except TimeoutError:
            killed = True
            await self._kill_exec(exec_id, pidfile, stream_done)
        except asyncio.CancelledError:
            await asyncio.shield(self._kill_exec(exec_id, pidfile, stream_done))
            raise
        finally:
            relay.close()
        return await self._finish(exec_id, started, timeout_s, killed, stream_done)

    def _exec_create(self, cmd: list[str], env: dict[str, str] | None, user: str) -> str:
        assert self._client is not None
        try:
            created = self._client.api.exec_create(
                self.container_id,
                cmd,
                user=user,
                workdir=WORKDIR,
                environment=sandbox_env(_BASE_ENV, self.spec.env, self._proxy_env(False), env),
            )
        except DockerException as exc:
            raise self._container_gone(exc) from None
        return str(created["Id"])

    async def _kill_exec(self, exec_id: str, pidfile: str, stream_done: asyncio.Future[None]) -> None:
        """Kill the command's process group: TERM, then KILL after a short grace; then every
        process of the command's uid left in the container (escaped with setsid, say).

        When the engine runs on this machine the signals come from the host (the group's pid from
        exec_inspect, checked to be in this container's cgroup): that needs no free pid inside, so
        it also stops a fork bomb that fills the pids limit. Otherwise a small exec does it inside.
        """
        assert self._client is not None
        container_id = self.container_id or ""
        with contextlib.suppress(DockerException, SandboxError):
            info = await in_thread(self._client.api.exec_inspect, exec_id)
            pid = int(info.get("Pid") or 0) if self.kill_from_host else 0
            if pid and await asyncio.to_thread(group_in_container, pid, container_id):
                signal_group(pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stream_done), KILL_GRACE_S)
                signal_group(pid, signal.SIGKILL)
                await asyncio.to_thread(kill_uid_in_container, container_id, self.uid)
                await wait_group_gone(pid, STREAM_DRAIN_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stream_done), STREAM_DRAIN_S)
                if stream_done.done():
                    return
        await self._kill_inside(pidfile)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(stream_done), STREAM_DRAIN_S)

    async def _kill_inside(self, pidfile: str) -> None:
        """Signal from an exec in the container, as the command's uid; retried while pids are full."""
        assert self._client is not None
        steps = str(int(KILL_GRACE_S / 0.05))
        killer = ["sh", "-c", KILLER, pidfile, steps]
        for _ in range(KILL_ATTEMPTS):
            try:
                kill_id = await in_thread(self._exec_create, killer, None, self.user)
                await in_thread(self._client.api.exec_start, kill_id)
                code = (await in_thread(self._client.api.exec_inspect, kill_id)).get("ExitCode")
                if code in (0, KILLED_BY_CLEANUP):
                    return
            except (SandboxError, DockerException):
                return
            await asyncio.sleep(0.1)

    async def _finish(
        self,
        exec_id: str,
        started: float,
        timeout_s: float,
        killed: bool,
        stream_done: asyncio.Future[None],
    ) -> ExecResult:
        assert self._client is not None
        stream_error = stream_done.exception() if stream_done.done() else None
        try:
            info = await in_thread(self._client.api.exec_inspect, exec_id)
        except DockerException as exc:
            raise self._container_gone(exc) from None
        duration = time.monotonic() - started
        if killed:
            note = f"timed out after {timeout_s:g} s"
            return ExecResult(TIMEOUT_EXIT_CODE, duration, timed_out=True, note=note)
        code = info.get("ExitCode")
        if stream_error is not None or code is None or info.get("Running") or code >= 128:
            await in_thread(self._check_alive, stream_error)
        if code is None:
            raise SandboxError(f"lost the command's status in the sandbox for task {self.spec.task_id}")
        if code == 137 and await self._oom_happened():
            note = f"killed: out of memory (limit {self.spec.limits.memory_mb} MB)"
            return ExecResult(code, duration, oom_killed=True, note=note)
        return ExecResult(int(code), duration)

    def _raise_if_stopping(self) -> None:
        """A SIGKILLed command whose container may be going down: wait briefly for the engine to say."""
        assert self._client is not None
        try:
            self._client.api.wait(self.container_id, timeout=STOPPING_WAIT_S)
        except NotFound:
            pass
        except Exception:  # still running when the wait timed out
            return
        raise SandboxError(f"the sandbox container for task {self.spec.task_id} stopped (killed)")

    def _check_alive(self, stream_error: BaseException | None) -> None:
        """Raise SandboxError when the container stopped or vanished under a command."""
        assert self._client is not None
        try:
            state = self._client.api.inspect_container(self.container_id)["State"]
        except NotFound:
            raise SandboxError(
                f"the sandbox container for task {self.spec.task_id} stopped (it was removed)"
            ) from None
        except DockerException as exc:
            raise SandboxError(f"the sandbox for task {self.spec.task_id} is unreachable: {exc}") from None
        if not state.get("Running"):
            detail = f"exit code {state.get('ExitCode')}"
            if state.get("OOMKilled"):
                detail += ", out of memory"
            raise SandboxError(f"the sandbox container for task {self.spec.task_id} stopped ({detail})")
        if stream_error is not None:
            raise SandboxError(
                f"lost the output stream of a command in task {self.spec.task_id}: {stream_error}"
            )

    async def _oom_happened(self) -> bool:
        """Was a command that died of SIGKILL (exit 137) killed by the kernel's OOM killer?

        Reads the cgroup's oom_kill counter; when it cannot (the probe does not run), first makes
        sure the container itself is not going down, then assumes OOM (137 and not killed by us).
        """
        assert self._client is not None
        output = b""
        with contextlib.suppress(SandboxError, DockerException):
            probe = await in_thread(self._exec_create, ["sh", "-c", OOM_PROBE], None, KEEPER_USER)
            output = await in_thread(self._client.api.exec_start, probe) or b""
        match = re.search(rb"oom_kill (\d+)", output)
        if match is None:
            await in_thread(self._raise_if_stopping)
            return True
        count = int(match.group(1))
        increased = count > self._oom_kills
        self._oom_kills = count
        return increased

    def _container_gone(self, exc: DockerException) -> SandboxError:
        if isinstance(exc, NotFound) or "is not running" in str(exc):
            return SandboxError(
                f"the sandbox container for task {self.spec.task_id} stopped ({_explain(exc)})"
            )
        return SandboxError(
            f"docker exec failed in the sandbox for task {self.spec.task_id}: {_explain(exc)}"
        )

    # --- escalated commands --------------------------------------------------------------------

    async def _exec_escalated(
        self,
        argv: list[str],
        cwd: str | None,
        timeout_s: float,
        on_output: OutputCallback | None,
        env: dict[str, str] | None,
        started: float,
    ) -> ExecResult:
        """Run one command in a sibling container with network on and the workspace writable."""
        client = self._client or await get_client(self._client_factory)
        self._client = client
        container_id = await in_thread(self._create_sibling, client, argv, cwd, env)
        relay = ChunkRelay(asyncio.get_running_loop(), on_output)
        try:
            stream = await in_thread(
                client.api.attach, container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True
            )
            stream_done = pump_in_thread(lambda: stream, relay)
            await in_thread(client.api.start, container_id)
            try:
                result = await asyncio.wait_for(in_thread(client.api.wait, container_id), max(timeout_s, 0.0))
            except TimeoutError:
                await remove_container(client, container_id)
                note = f"timed out after {timeout_s:g} s"
                return ExecResult(TIMEOUT_EXIT_CODE, time.monotonic() - started, timed_out=True, note=note)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stream_done), STREAM_DRAIN_S)
            code = int(result.get("StatusCode", 1))
            return ExecResult(code, time.monotonic() - started)
        except DockerException as exc:
            raise SandboxError(f"the escalated command could not run: {_explain(exc)}") from None
        finally:
            relay.close()
            await asyncio.shield(remove_container(client, container_id))

    def _create_sibling(
        self, client: docker.DockerClient, argv: list[str], cwd: str | None, env: dict[str, str] | None
    ) -> str:
        kwargs = self._container_kwargs(client, escalated=True)
        kwargs["environment"] = sandbox_env(_BASE_ENV, self.spec.env, env)
        command = ["sh", "-c", COMMAND_WRAPPER, "sh", "/dev/null", _container_path(cwd), *argv]
        try:
            created = self._create_clamping_cpus(client, command, kwargs)
        except ImageNotFound:
            raise self._image_missing() from None
        except DockerException as exc:
            raise SandboxError(
                f"could not start the escalated command's container: {_explain(exc)}"
            ) from None
        return str(created["Id"])


def _container_path(cwd: str | None) -> str:
    if not cwd:
        return WORKDIR
    return cwd if cwd.startswith("/") else f"{WORKDIR}/{cwd}"


def _explain(exc: BaseException) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
