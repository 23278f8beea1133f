"""Images for task pods: the configured image, or a repository's setup image made available to the cluster.

Setup images are built with Docker exactly as for the Docker backend (`factory.repository_image`),
then handed to the cluster: pushed to `[sandbox.kubernetes] registry` when one is set (pods then
use `registry/name:tag`; set `image_pull_policy = "IfNotPresent"`), otherwise imported into the
local cluster's containerd (`containerd_socket`, the test cluster of scripts/k8s), and into those
of its other nodes on this machine (`containerd_sockets`), with
`docker save | ctr -n k8s.io images import -`, skipped when a containerd already holds the image
with the same id (Docker's image id is the config digest).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import TYPE_CHECKING

from codex_tui.sandbox.base import SandboxError, SandboxSpec
from codex_tui.sandbox.engine import get_client, in_thread
from codex_tui.sandbox.environment import Environment
from codex_tui.sandbox.image import DEFAULT_IMAGE

if TYPE_CHECKING:
    from codex_tui.sandbox.factory import SandboxRequest

IMPORT_TIMEOUT_S = 900.0


async def kubernetes_image(spec: SandboxSpec, request: SandboxRequest, environment: Environment) -> None:
    """Set `spec.image` to what task pods run: the configured image, or the repository's setup image."""
    settings = spec.kubernetes
    spec.image = settings.image or spec.image or DEFAULT_IMAGE
    if request.repo is None:
        return
    from codex_tui.sandbox.factory import repository_image

    tag = await repository_image(spec.image, spec, request, environment)
    if tag == spec.image:
        return
    if settings.registry:
        spec.image = await push_to_registry(tag, settings.registry)
    else:
        await import_into_containerd(tag, settings.containerd_socket)
        for socket in settings.containerd_sockets:  # the other nodes of a local cluster
            if socket != settings.containerd_socket and os.path.exists(socket):
                await asyncio.to_thread(_import, tag, socket)
        spec.image = tag


async def push_to_registry(tag: str, registry: str) -> str:
    """Tag and push a local image to the registry; the pushed reference."""
    client = await get_client()
    name, _, version = tag.rpartition(":")
    target = f"{registry.rstrip('/')}/{name.rsplit('/', 1)[-1]}"
    await in_thread(client.api.tag, tag, target, version)
    output = await in_thread(client.api.push, target, version)
    if '"error"' in str(output):
        raise SandboxError(f"could not push {target}:{version} to the registry: {str(output)[-300:]}")
    return f"{target}:{version}"


async def import_into_containerd(tag: str, socket: str) -> None:
    """`docker save TAG | ctr -n k8s.io images import -` into the local cluster's containerd."""
    if not os.path.exists(socket):
        raise SandboxError(
            f"setup image {tag} cannot reach the cluster: no registry is configured "
            f"([sandbox.kubernetes] registry) and there is no local containerd at {socket}"
        )
    await asyncio.to_thread(_import, tag, socket)


def _import(tag: str, socket: str) -> None:
    ctr = ["ctr", "--address", socket, "--namespace", "k8s.io"]
    ref = tag if "/" in tag else f"docker.io/library/{tag}"
    wanted = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True
    )
    if wanted.returncode == 0 and wanted.stdout.strip() == _containerd_image_id(ctr, ref):
        return  # the same image (maintenance may have replaced the one under this tag)
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [*ctr, "images", "import", "-"], stdin=save.stdout, capture_output=True, timeout=IMPORT_TIMEOUT_S
        )
    finally:
        if save.stdout is not None:
            save.stdout.close()
        save.wait()
    if done.returncode != 0 or save.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["docker save failed"]
        raise SandboxError(f"could not import setup image {tag} into the cluster: {reason[0]}")


def _containerd_image_id(ctr: list[str], ref: str) -> str:
    """The config digest of `ref` in containerd (Docker's image id), "" when it is not there."""
    listed = subprocess.run([*ctr, "images", "ls", f"name=={ref}"], capture_output=True, text=True)
    rows = listed.stdout.splitlines()[1:]
    if listed.returncode != 0 or not rows or len(rows[0].split()) < 3:
        return ""
    manifest = subprocess.run([*ctr, "content", "get", rows[0].split()[2]], capture_output=True, text=True)
    try:
        return str(json.loads(manifest.stdout)["config"]["digest"])
    except (ValueError, KeyError, TypeError):
        return ""
