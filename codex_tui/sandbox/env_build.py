"""`codex-tui sandbox build --maintenance`: bring a repository's cached setup image up to date now."""

from __future__ import annotations

from pathlib import Path

from codex_tui.config import Config
from codex_tui.sandbox.base import OutputCallback, SandboxError, SandboxLimits
from codex_tui.sandbox.env_image import ensure_env_image
from codex_tui.sandbox.environment import load_environment, secrets_source
from codex_tui.sandbox.image import DEFAULT_IMAGE


async def refresh_environment_image(cfg: Config, repo: Path, on_output: OutputCallback | None = None) -> str:
    """Build the repository's setup image if missing, else run its maintenance script on it; the tag.

    Raises SandboxError when the repository has no setup script (nothing is cached then) or a
    script fails; ConfigError for a bad environment file.
    """
    environment = load_environment(cfg, repo)
    limits = SandboxLimits(cpus=cfg.sandbox_cpus, memory_mb=cfg.sandbox_memory_mb, pids=cfg.sandbox_pids)
    base = cfg.sandbox_image or DEFAULT_IMAGE
    tag = await ensure_env_image(
        base,
        repo,
        cfg.setup,
        on_output,
        limits=limits,
        environment=environment,
        secrets=secrets_source(environment, cfg.home, repo),
        maintenance=True,
    )
    if tag == base:
        raise SandboxError(f"{repo} has no setup script: there is no cached environment to maintain")
    return tag
