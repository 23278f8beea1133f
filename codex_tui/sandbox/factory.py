"""Choosing and building a task's sandbox from the config: docker when the engine answers, else local;
kubernetes only when asked for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codex_tui.config import BACKENDS, Config
from codex_tui.protocol import SandboxMode
from codex_tui.sandbox.base import OutputCallback, Sandbox, SandboxError, SandboxLimits, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.docker_reap import sweep_stale_containers
from codex_tui.sandbox.egress import Egress, RequestCallback, sweep_stale_networks
from codex_tui.sandbox.engine import ClientFactory, engine_reachable, get_client, in_thread
from codex_tui.sandbox.env_image import SecretsSource, ensure_env_image
from codex_tui.sandbox.environment import Environment
from codex_tui.sandbox.image import DEFAULT_IMAGE
from codex_tui.sandbox.local import LocalSandbox


@dataclass(slots=True)
class BackendChoice:
    """Which backend a task gets, and a note for the user when it is not what they asked for."""

    backend: str
    note: str = ""


@dataclass(slots=True)
class SandboxRequest:
    """Everything `create_sandbox` needs beyond the spec (all optional)."""

    backend: str = "auto"
    repo: Path | None = None
    """The user's repository: its setup script (or config `setup`) is run once and cached."""
    setup_script: str | None = None
    on_output: OutputCallback | None = None
    """Receives the setup script's output (only when it actually runs)."""
    client_factory: ClientFactory | None = None
    environment: Environment | None = None
    """Network access, setup/maintenance, plain variables and secrets names (sandbox/environment.py)."""
    secrets: SecretsSource | None = None
    """The secrets' values, asked for only when a setup or maintenance script runs."""
    on_network: RequestCallback | None = None
    """Receives each request the egress proxy judged (limited network)."""
    maintenance: bool = False
    """Run the maintenance script on the cached image even when its inputs did not change."""


def spec_from_config(
    cfg: Config,
    task_id: str,
    workspace: Path,
    mode: SandboxMode | None = None,
    *,
    extra_ro_mounts: list[Path] | None = None,
    env: dict[str, str] | None = None,
) -> SandboxSpec:
    """A SandboxSpec with the image, limits and mode from the config."""
    chosen = mode or cfg.sandbox_mode
    if chosen not in ("read-only", "auto", "full-access"):
        raise SandboxError(f"unknown sandbox mode '{chosen}' (read-only, auto or full-access)")
    return SandboxSpec(
        task_id=task_id,
        workspace=workspace,
        mode=chosen,  # type: ignore[arg-type]
        image=cfg.sandbox_image,
        limits=SandboxLimits(
            cpus=cfg.sandbox_cpus,
            memory_mb=cfg.sandbox_memory_mb,
            pids=cfg.sandbox_pids,
            disk_mb=cfg.sandbox_disk_mb,
        ),
        extra_ro_mounts=list(extra_ro_mounts or []),
        env=dict(env or {}),
        kubernetes=cfg.sandbox_kubernetes,
        docker_sync=cfg.sandbox_docker_sync,  # type: ignore[arg-type]
    )


async def choose_backend(
    requested: str = "auto", client_factory: ClientFactory | None = None
) -> BackendChoice:
    """Any backend but `auto` is taken as asked; `auto` is docker when the engine answers, else local."""
    if requested not in BACKENDS:
        raise SandboxError(f"unknown sandbox backend '{requested}' (one of {', '.join(BACKENDS)})")
    if requested != "auto":
        return BackendChoice(requested)
    ok, message = await in_thread(engine_reachable, client_factory)
    if ok:
        return BackendChoice("docker")
    return BackendChoice("local", f"{message} Using the local backend for now.")


async def create_sandbox(spec: SandboxSpec, request: SandboxRequest | None = None) -> tuple[Sandbox, str]:
    """An unstarted sandbox for the spec, plus a note for the user ("" when nothing to say).

    With `request.repo` and the docker backend, the repository's setup script runs first (once;
    later tasks reuse the cached image) and the sandbox starts from its image.
    """
    request = request or SandboxRequest()
    choice = await choose_backend(request.backend, request.client_factory)
    environment = request.environment or Environment()
    spec.env = {**environment.env, **spec.env}
    spec.network_access = environment.network.access
    if choice.backend != "docker" and spec.network_access == "limited":
        spec.network_access = "off"
        if not spec.network:
            limited = "limited network access needs the docker backend: this task has no network"
            choice.note = f"{choice.note} {limited}".strip()
    if choice.backend == "local":
        return LocalSandbox(spec), choice.note
    if choice.backend == "kubernetes":
        from codex_tui.sandbox.k8s_images import kubernetes_image
        from codex_tui.sandbox.kubernetes import KubernetesSandbox

        await kubernetes_image(spec, request, environment)
        return KubernetesSandbox(spec), choice.note
    if request.repo is not None:
        spec.image = await repository_image(spec.image or DEFAULT_IMAGE, spec, request, environment)
    egress = None
    if spec.network_access == "limited" and not spec.network:
        egress = Egress(spec.task_id, environment.network.policy(), request.on_network)
    return DockerSandbox(spec, request.client_factory, egress=egress), choice.note


async def repository_image(
    base: str, spec: SandboxSpec, request: SandboxRequest, environment: Environment
) -> str:
    """The image `request.repo`'s tasks run: `base` with the repository's setup script applied (built
    once with Docker and cached), or `base` itself when the repository has none."""
    assert request.repo is not None
    return await ensure_env_image(
        base,
        request.repo,
        request.setup_script,
        request.on_output,
        client_factory=request.client_factory,
        limits=spec.limits,
        environment=environment,
        secrets=request.secrets,
        maintenance=request.maintenance,
    )


async def startup_sweep(client_factory: ClientFactory | None = None) -> list[str]:
    """Remove containers left by crashed codex-tui processes; [] when Docker is not reachable."""
    ok, _ = await in_thread(engine_reachable, client_factory)
    if not ok:
        return []
    removed = await sweep_stale_containers(client_factory)
    return removed + await sweep_stale_networks(await get_client(client_factory))
