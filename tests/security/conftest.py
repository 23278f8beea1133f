"""Fixtures for attack tests: a real task checkout with a real sandbox (Docker or local) on it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codex_tui.agent.instructions import load_project_docs
from codex_tui.sandbox.base import ExecResult, Sandbox, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.workspace.git import Workspace, WorkspaceError
from tests.conftest import make_repo


@dataclass
class Attacked:
    """A task as an attacker inside its sandbox sees it, and the host folders it must never reach."""

    repo: Path
    ws: Workspace
    sandbox: Sandbox
    host_dir: Path
    """A folder of the host, outside the checkout, holding a secret file."""
    canary: Path
    """A host path that any code run by host-side git would create."""

    @property
    def inside(self) -> str:
        """The checkout's path as commands in the sandbox see it."""
        return self.sandbox.workdir

    async def sh(self, script: str, timeout_s: float = 30.0) -> ExecResult:
        """Run a shell script as the attacker, inside the sandbox, in the checkout."""
        output: list[bytes] = []
        result = await self.sandbox.exec(
            ["sh", "-c", script], timeout_s=timeout_s, on_output=lambda _s, d: output.append(d)
        )
        result.note = result.note or b"".join(output).decode(errors="replace")
        return result


async def every_host_operation(t: Attacked) -> list[str]:
    """Diff, checkpoint, preflight, apply, apply --branch, resume, AGENTS.md, undo: their messages."""
    messages: list[str] = []
    steps = [
        t.ws.diff,
        lambda: t.ws.checkpoint("attack"),
        t.ws.preflight,
        t.ws.apply_to_source,
        lambda: t.ws.commit_to_branch("codex/attack"),
        lambda: Workspace.open(t.repo, t.ws.path, t.ws.task_id),
        lambda: asyncio.to_thread(load_project_docs, t.ws.path, None, root=t.ws.path),
        lambda: t.ws.restore("base"),
    ]
    for step in steps:
        try:
            result = await asyncio.wait_for(step(), 60)
            messages.append(str(getattr(result, "message", result)))
        except WorkspaceError as exc:
            messages.append(f"error: {exc}")
    return messages


@pytest.fixture(params=["docker", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each sandbox backend; for Docker, the engine and the default image must be there."""
    if request.param == "docker":
        request.getfixturevalue("sandbox_image")
    return str(request.param)


@pytest.fixture
async def attacked(backend: str, tmp_path: Path) -> AsyncIterator[Attacked]:
    """A task checkout of a small repository with its sandbox started, on each backend."""
    repo = make_repo(tmp_path / "repo", {"app.py": "print('hi')\n", "AGENTS.md": "Be nice.\n"})
    ws = await Workspace.create(repo, tmp_path / "worktrees" / "t1", "t1")
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "secret.txt").write_text("HOST-SECRET-4711\n")
    spec = SandboxSpec(task_id=f"attack-{os.getpid()}", workspace=ws.path, extra_ro_mounts=ws.extra_ro_mounts)
    sandbox: Sandbox = DockerSandbox(spec) if backend == "docker" else LocalSandbox(spec)
    await sandbox.start()
    try:
        yield Attacked(repo, ws, sandbox, host_dir, tmp_path / "canary")
    finally:
        await sandbox.stop()
