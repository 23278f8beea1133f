"""Fixtures for the Kubernetes tests: the local test cluster (scripts/k8s), settings, sandboxes, managers.

The cluster is started once per session with scripts/k8s/up.sh (which also imports the sandbox image)
or reused when it already runs; it is left as it was found (`make test-k8s` stops it afterwards).
Tests are skipped, with the reason, only when the cluster cannot be built here: not root, or no
cached binaries outside CI (a first build takes 10–20 minutes: run scripts/k8s/build.sh).
"""

from __future__ import annotations

import asyncio
import glob
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.config import Config, KubernetesSettings
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.kubernetes import KubernetesSandbox
from codex_tui.tasks.manager import TaskManager
from tests.test_tasks_support import EventLog

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = os.environ.get("K8S_STATE", "/var/lib/codex-tui-k8s") + "/kubeconfig"
CACHE = os.environ.get("K8S_CACHE_ROOT", "/var/cache/codex-tui/k8s")

MakeK8sSandbox = Callable[..., KubernetesSandbox]


def _cluster_answers() -> bool:
    if not os.path.exists(KUBECONFIG):
        return False
    from kubernetes import client, config

    try:
        api = config.new_client_from_config(config_file=KUBECONFIG)
        client.CoreV1Api(api).list_namespaced_pod("default", _request_timeout=3)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def k8s_cluster(sandbox_image: str) -> Iterator[KubernetesSettings]:
    """Settings for the running local cluster (started by up.sh when needed, with the image imported)."""
    cached = glob.glob(f"{CACHE}/*/bin/kubelet")
    if os.getuid() != 0:
        pytest.skip("the local Kubernetes test cluster needs root (scripts/k8s/up.sh)")
    if not cached and not os.environ.get("CI") and not _cluster_answers():
        pytest.skip("no cached Kubernetes build: run scripts/k8s/build.sh once (10–20 min), or make test-k8s")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/k8s/up.sh"), sandbox_image], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/k8s/up.sh failed: {(done.stdout + done.stderr).strip()[-2000:]}", pytrace=False)
    yield KubernetesSettings(kubeconfig=KUBECONFIG, namespace="default")


@pytest.fixture
def k8s_workspace(tmp_path: Path) -> Path:
    """An empty checkout owned by the sandbox's uid."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    if needs_chown():
        os.chown(workspace, *sandbox_ids())
    return workspace


@pytest.fixture
async def make_k8s_sandbox(
    k8s_cluster: KubernetesSettings, k8s_workspace: Path, sandbox_image: str
) -> AsyncIterator[MakeK8sSandbox]:
    """`make_k8s_sandbox(**spec_fields)` -> an unstarted KubernetesSandbox; all are stopped afterwards."""
    made: list[KubernetesSandbox] = []

    def make(**fields: Any) -> KubernetesSandbox:
        fields.setdefault("task_id", f"k8s-test-{os.getpid()}-{len(made)}")
        fields.setdefault("workspace", k8s_workspace)
        fields.setdefault("image", sandbox_image)
        fields.setdefault("kubernetes", k8s_cluster)
        sandbox = KubernetesSandbox(SandboxSpec(**fields))
        made.append(sandbox)
        return sandbox

    yield make
    await asyncio.gather(*(sandbox.stop() for sandbox in made), return_exceptions=True)


def k8s_manager(config: Config, repo: Path) -> TaskManager:
    """A TaskManager on the Kubernetes backend."""
    config.sandbox_backend = "kubernetes"
    return TaskManager(config, repo=repo)


@asynccontextmanager
async def started_k8s_manager(config: Config, repo: Path) -> AsyncIterator[tuple[TaskManager, EventLog]]:
    """A started Kubernetes TaskManager with an EventLog subscribed; closed afterwards."""
    manager = k8s_manager(config, repo)
    await manager.start()
    log = EventLog()
    manager.subscribe(log, replay=False)
    try:
        yield manager, log
    finally:
        await manager.close()


NODE_NAMES = (
    os.environ.get("K8S_NODE_NAME", "codex-tui-node"),
    os.environ.get("K8S_NODE2_NAME", "codex-tui-node2"),
)
"""The first node (up.sh) and the second one (add-node.sh, in its own network namespace)."""


def _node_ready(name: str) -> bool:
    from kubernetes import client, config

    try:
        node = client.CoreV1Api(config.new_client_from_config(config_file=KUBECONFIG)).read_node(
            name, _request_timeout=5
        )
    except Exception:
        return False
    conditions = node.status.conditions if node.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


@pytest.fixture(scope="module")
def k8s_two_nodes(k8s_cluster: KubernetesSettings, sandbox_image: str) -> Iterator[tuple[str, str]]:
    """Both node names, the second node added by scripts/k8s/add-node.sh (the sandbox image imported
    into its containerd) and removed again afterwards unless it was already there."""
    added = not _node_ready(NODE_NAMES[1])
    script = str(ROOT / "scripts/k8s/add-node.sh")
    done = subprocess.run(["bash", script, sandbox_image], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/k8s/add-node.sh failed: {(done.stdout + done.stderr).strip()[-2000:]}", pytrace=False
        )
    try:
        yield NODE_NAMES
    finally:
        if added:
            # Later tests configure the first node's containerd only (no `containerd_sockets`).
            subprocess.run(["bash", script, "--remove"], capture_output=True, text=True, check=False)
