"""Tasks on a two-node cluster (the second kubelet in its own network namespace): spread over nodes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from codex_tui import protocol as p
from codex_tui.config import KubernetesSettings
from codex_tui.sandbox.engine import LABEL_TASK
from codex_tui.sandbox.k8s_pod import label_value
from codex_tui.scripted import ScriptedServer
from tests.k8s.conftest import started_k8s_manager
from tests.test_tasks_support import scenario, scripted_config, shell_call, submit

pytestmark = [pytest.mark.k8s, pytest.mark.docker]
LONG_MS = 120_000
"""Command timeouts: the machines running these tests are shared and often heavily loaded."""
GO = "/tmp/codex-tui-test-go"
"""The command of every attempt waits for this file, which the test creates once all pods are bound."""
POLL_S = 0.2


def _core(settings: KubernetesSettings) -> Any:
    return client.CoreV1Api(config.new_client_from_config(config_file=settings.kubeconfig))


async def _until(what: str, check: Any, timeout_s: float = 180.0) -> Any:
    """Poll `check()` (in a thread) until it returns something truthy; fail saying `what` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        found = await asyncio.to_thread(check)
        if found:
            return found
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        await asyncio.sleep(POLL_S)


def _task_pods(core: Any, namespace: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=LABEL_TASK).items)


def _bound_and_running(core: Any, namespace: str, labels: set[str]) -> dict[str, str] | None:
    """{pod name: node name} once a Running pod exists for every task label, else None."""
    pods = [pod for pod in _task_pods(core, namespace) if pod.metadata.labels.get(LABEL_TASK) in labels]
    running = {pod.metadata.name: pod.spec.node_name for pod in pods if pod.status.phase == "Running"}
    return running if len(running) == len(labels) and all(running.values()) else None


def _release(core: Any, namespace: str, pod: str) -> str:
    """Create the GO file in the pod through the API server (exec goes through the pod's kubelet)."""
    return str(
        stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=["sh", "-c", f"touch {GO} && echo released"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
    )


async def test_four_attempts_are_spread_over_both_nodes_and_each_workspace_comes_back(
    git_repo: Path,
    isolated_home: Path,
    k8s_cluster: KubernetesSettings,
    k8s_two_nodes: tuple[str, str],
    sandbox_image: str,
) -> None:
    core = _core(k8s_cluster)
    namespace = k8s_cluster.namespace
    # Leftover task pods of earlier tests would weigh on the scheduler's choice: start from none.
    await _until("earlier task pods to be deleted", lambda: not _task_pods(core, namespace), timeout_s=120)
    scenarios = [
        scenario(
            f"n{i}",
            {
                "tool_calls": [
                    shell_call(
                        "sh",
                        "-c",
                        f"until [ -e {GO} ]; do sleep 0.1; done; echo {i} > attempt.txt; echo wrote {i}",
                        timeout_ms=LONG_MS,
                    )
                ]
            },
            {"text": "ok"},
        )
        for i in range(1, 5)
    ]
    async with ScriptedServer(scenarios) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, sandbox_image=sandbox_image)
        cfg.sandbox_kubernetes = k8s_cluster
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            result = await manager.submit(
                p.Op(
                    p.OP_SUBMIT,
                    data={
                        "prompt": "spread out",
                        "attempts": 4,
                        "models": [f"scripted:n{i}" for i in range(1, 5)],
                    },
                )
            )
            assert result.ok, result.message
            ids = result.data["task_ids"]
            # No command can finish before GO exists, so all four pods live when each is scheduled.
            labels = {label_value(i) for i in ids}
            nodes = await _until(
                "a Running pod per attempt", lambda: _bound_and_running(core, namespace, labels)
            )
            released = await asyncio.gather(
                *(asyncio.to_thread(_release, core, namespace, pod) for pod in nodes)
            )
            states = await asyncio.gather(*(manager.wait_for(i, timeout=240) for i in ids))
            diffs = [(await manager.submit(p.Op(p.OP_GET_DIFF, i))).data["files"] for i in ids]
            checkouts = [Path(manager.store.records[i].workspace) for i in ids]
            contents = [(c / "attempt.txt").read_text() for c in checkouts]
            commands = [log.items(i, p.ITEM_COMMAND)[-1] for i in ids]
            pods = [str(log.of(i, p.SANDBOX_INFO)[0].data["container_id"]) for i in ids]
    assert all(r.strip() == "released" for r in released), released
    assert states == ["ready"] * 4, manager.tasks()
    assert sorted(pods) == sorted(nodes), "each attempt ran in the pod the test saw bound to a node"
    per_node = collections.Counter(nodes.values())
    assert set(per_node) == set(k8s_two_nodes), f"attempts landed on {dict(per_node)}"
    assert sorted(per_node.values()) == [2, 2], f"the scheduler balances equal pods: {dict(per_node)}"
    assert [c["exit_code"] for c in commands] == [0] * 4, [c["aggregated_output"] for c in commands]
    assert [c["aggregated_output"].strip() for c in commands] == [f"wrote {i}" for i in range(1, 5)]
    assert [[f["path"] for f in files] for files in diffs] == [["attempt.txt"]] * 4
    assert contents == [f"{i}\n" for i in range(1, 5)], "each pod's change came back to its own checkout"


NODE2_SOCKET = "/run/codex-tui-k8s/node2/containerd.sock"
"""The second node's containerd (scripts/k8s/lib.sh: K8S_NODE2_SOCK)."""


async def test_a_setup_image_is_imported_into_every_node_and_runs_on_the_second(
    git_repo: Path,
    isolated_home: Path,
    k8s_cluster: KubernetesSettings,
    k8s_two_nodes: tuple[str, str],
    sandbox_image: str,
    docker_engine: docker.DockerClient,
) -> None:
    (git_repo / ".codex-tui").mkdir()
    setup = f"# {uuid.uuid4().hex}\necho prepared > /opt/setup-marker\n"
    (git_repo / ".codex-tui" / "setup.sh").write_text(setup)
    reads = scenario(
        "reads",
        {"tool_calls": [shell_call("cat", "/opt/setup-marker", timeout_ms=LONG_MS)]},
        {"text": "read it"},
    )
    second = k8s_two_nodes[1]
    settings = dataclasses.replace(
        k8s_cluster, node_selector={"kubernetes.io/hostname": second}, containerd_sockets=[NODE2_SOCKET]
    )
    tag = ""
    try:
        async with ScriptedServer([reads]) as srv:
            cfg = scripted_config(isolated_home, srv.base_url, sandbox_image=sandbox_image)
            cfg.sandbox_kubernetes = settings
            async with started_k8s_manager(cfg, git_repo) as (manager, log):
                [task_id] = await submit(manager, "use the setup", model="scripted:reads")
                state = await manager.wait_for(task_id, timeout=600)
                assert state == "ready", manager.tasks()[0]["message"]
                [info] = log.of(task_id, p.SANDBOX_INFO)
                tag = str(info.data["image"])
                pod = str(info.data["container_id"])
                node = _core(settings).read_namespaced_pod(pod, settings.namespace).spec.node_name
        cat = log.items(task_id, p.ITEM_COMMAND)[-1]
        assert tag.startswith("codex-tui-env:") and node == second
        assert cat["exit_code"] == 0 and cat["aggregated_output"] == "prepared\n"
    finally:
        if tag:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_engine.images.remove(tag, force=True)
            for socket in (settings.containerd_socket, NODE2_SOCKET):
                ctr = ["ctr", "--address", socket, "--namespace", "k8s.io", "images", "rm"]
                subprocess.run([*ctr, f"docker.io/library/{tag}"], capture_output=True, check=False)
