"""The Sandbox protocol: where a task's commands run. Backends: `local.py`, `docker.py`, `kubernetes.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from codex_tui.config import KubernetesSettings
from codex_tui.protocol import ResourceUsage as ResourceUsage

Stream = Literal["stdout", "stderr"]
OutputCallback = Callable[[Stream, bytes], None]
"""Called from the event loop thread with each chunk as it arrives (never one call per byte)."""


@dataclass(slots=True)
class SandboxLimits:
    """Resource limits for one task's sandbox."""

    cpus: float = 2.0
    memory_mb: int = 2048
    pids: int = 512
    disk_mb: int = 0
    """Bound on a workspace copied as data (the Kubernetes backend's pod volume and copy back); 0: none."""


@dataclass(slots=True)
class SandboxSpec:
    """What a backend needs to start one task's sandbox."""

    task_id: str
    workspace: Path
    """Host path of the task's checkout (mounted at `Sandbox.workdir`)."""
    mode: Literal["read-only", "auto", "full-access"] = "auto"
    image: str | None = None
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    extra_ro_mounts: list[Path] = field(default_factory=list)
    """Host paths the checkout needs at the same absolute path (e.g. git alternates)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for commands; never secrets."""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    """Where task pods run (the Kubernetes backend only)."""

    docker_sync: Literal["auto", "mount", "copy"] = "auto"
    """Docker: bind-mount the checkout, or copy it in and back as data (auto: copy unless the engine
    is on this machine's unix socket)."""

    network_access: Literal["off", "limited", "on"] = "off"
    """The agent phase's internet ([environment] network_access); "limited" goes through the
    egress proxy (docker backend), full access always has the network on."""

    @property
    def network(self) -> bool:
        """Direct network: full access, or network_access = "on"."""
        return self.mode == "full-access" or self.network_access == "on"

    @property
    def read_only(self) -> bool:
        """Read-only mode mounts the workspace read-only."""
        return self.mode == "read-only"


@dataclass(slots=True)
class ExecResult:
    """How a command ended. `exit_code` is 124 on timeout; output itself goes to the callback."""

    exit_code: int
    duration_s: float
    timed_out: bool = False
    oom_killed: bool = False
    note: str = ""
    """A human explanation when something unusual happened (OOM, container died…)."""


class SandboxError(Exception):
    """The sandbox itself failed (engine unreachable, container died); not a command's failure."""


class Sandbox(Protocol):
    """A place to run one task's commands. Cancelling `exec` kills the command inside."""

    backend: str
    workdir: str
    """Path of the workspace as commands see it ("/workspace" in Docker, the host path locally)."""

    async def start(self) -> None:
        """Create/boot the sandbox; raises SandboxError with a clear message on failure."""
        ...

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
        """Run argv (cwd defaults to workdir), streaming output; timeout kills it (exit 124).

        `escalated` (only after the user approved it) runs the command with the network on and
        the workspace writable, whatever the sandbox's mode.
        """
        ...

    async def stop(self) -> None:
        """Tear the sandbox down; safe to call twice."""
        ...

    async def alive(self) -> bool:
        """False when the started sandbox is gone (removed, stopped, expired); one cheap check.

        Raises SandboxError when that cannot be told (e.g. the Docker engine does not answer).
        """
        ...

    def describe(self) -> str:
        """One line for the user: backend, image, and what is (not) isolated."""
        ...

    async def usage(self) -> ResourceUsage | None:
        """CPU, memory and disk the sandbox uses now (None, or None fields, where unknown); never
        blocks the event loop and never raises."""
        ...
