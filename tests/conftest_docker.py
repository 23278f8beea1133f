"""Pytest plugin with the Docker fixtures: a reachable engine and the default sandbox image.

Registered from tests/conftest.py (`pytest_plugins = ["tests.conftest_docker"]`). Docker tests fail
with a clear message, never skip, when the engine is missing: run `scripts/ensure_docker.sh` first.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import docker
import pytest

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.sandbox.base import SandboxError, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.engine import connect
from codex_tui.sandbox.image import DEFAULT_IMAGE, ensure_default_image

MakeDockerSandbox = Callable[..., DockerSandbox]


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A client for the engine at DOCKER_HOST (or the default socket); fails the test if unreachable."""
    try:
        client = connect()
        client.ping()
    except SandboxError as exc:
        pytest.fail(f"{exc}\nRun scripts/ensure_docker.sh to start an engine for the tests.", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def bridge_address() -> str:
    """The host's address on Docker's default bridge."""
    client = docker.from_env()
    try:
        return str(client.api.inspect_network("bridge")["IPAM"]["Config"][0]["Gateway"])
    finally:
        client.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_engine: docker.DockerClient) -> str:
    """The default sandbox image, built first when missing or stale; returns its tag."""
    try:
        asyncio.run(ensure_default_image(DEFAULT_IMAGE))
    except SandboxError as exc:
        pytest.fail(f"cannot build {DEFAULT_IMAGE}: {exc}", pytrace=False)
    return DEFAULT_IMAGE


@pytest.fixture
def sandbox_workspace(tmp_path: Path) -> Path:
    """An empty task checkout owned by the sandbox's uid (the current user's own, unless root)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    if needs_chown():
        os.chown(workspace, *sandbox_ids())
    return workspace


@pytest.fixture
async def make_docker_sandbox(
    sandbox_image: str, sandbox_workspace: Path
) -> AsyncIterator[MakeDockerSandbox]:
    """`make_docker_sandbox(**spec_fields, user=…, kill_from_host=…)` -> an unstarted DockerSandbox.

    Every sandbox made is stopped after the test.
    """
    made: list[DockerSandbox] = []

    def make(*, user: str | None = None, kill_from_host: bool = True, **fields: object) -> DockerSandbox:
        fields.setdefault("task_id", f"test-{os.getpid()}-{len(made)}")
        fields.setdefault("workspace", sandbox_workspace)
        fields.setdefault("image", sandbox_image)
        spec = SandboxSpec(**fields)  # type: ignore[arg-type]
        sandbox = DockerSandbox(spec, user=user, kill_from_host=kill_from_host)
        made.append(sandbox)
        return sandbox

    yield make
    await asyncio.gather(*(sandbox.stop() for sandbox in made), return_exceptions=True)
