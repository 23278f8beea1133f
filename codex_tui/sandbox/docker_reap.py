"""Removing codex-tui containers: stale ones whose owner is gone, and ones the engine could not remove yet."""

from __future__ import annotations

import contextlib
import socket

import docker
from docker.errors import APIError, DockerException, NotFound

from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.engine import (
    LABEL,
    LABEL_OWNER_HOST,
    ClientFactory,
    EngineLost,
    get_client,
    in_thread,
    owner_alive,
)

_orphans: dict[str, docker.DockerClient] = {}
"""Containers that could not be removed because the engine was gone, with the client to remove
them by: retried when a sandbox on that engine starts or stops, and by the sweep."""


async def sweep_stale_containers(client_factory: ClientFactory | None = None) -> list[str]:
    """Remove codex-tui containers whose owner process on this host is gone; returns their ids."""
    client = await get_client(client_factory)
    return await reap_orphans(client) + await in_thread(_sweep, client)


async def reap_orphans(client: docker.DockerClient) -> list[str]:
    """Remove the containers left behind while this client's engine was unreachable; returns their ids."""
    removed: list[str] = []
    for container_id in [cid for cid, owner in _orphans.items() if owner is client]:
        del _orphans[container_id]
        if await remove_container(client, container_id):
            removed.append(container_id)
        else:
            break  # the engine is still gone: keep the rest for later
    return removed


async def remove_container(client: docker.DockerClient, container_id: str) -> bool:
    """Force-remove a container; when the engine is unreachable, remember it for later and return False."""
    try:
        await in_thread(remove_quietly, client, container_id)
    except EngineLost:
        _orphans[container_id] = client
        return False
    return True


def _sweep(client: docker.DockerClient) -> list[str]:
    host = socket.gethostname()
    removed: list[str] = []
    try:
        listed = client.api.containers(all=True, filters={"label": f"{LABEL}=1"})
    except DockerException as exc:
        raise SandboxError(f"cannot list sandbox containers: {exc}") from None
    for item in listed:
        labels = item.get("Labels") or {}
        if labels.get(LABEL_OWNER_HOST, host) != host or owner_alive(labels):
            continue
        with contextlib.suppress(NotFound, APIError):
            client.api.remove_container(item["Id"], force=True, v=True)
            removed.append(str(item["Id"]))
    return removed


def remove_quietly(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.api.remove_container(container_id, force=True, v=True)
