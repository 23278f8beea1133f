"""The Kubernetes sandbox on its own: escalation, read-only mode, timeouts and the stale-pod sweep."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from codex_tui.config import KubernetesSettings
from codex_tui.sandbox import kubernetes as k8s_backend
from codex_tui.sandbox.engine import LABEL, LABEL_OWNER_PID, LABEL_OWNER_START, LABEL_TASK
from codex_tui.sandbox.k8s_pod import LABEL_NETWORK, pod_state
from tests.k8s.conftest import MakeK8sSandbox

pytestmark = [pytest.mark.k8s, pytest.mark.docker]
LONG_S = 120.0


def _core(settings: KubernetesSettings) -> Any:
    return client.CoreV1Api(config.new_client_from_config(config_file=settings.kubeconfig))


async def test_escalated_command_runs_in_a_sibling_pod_with_network_and_its_changes_reach_the_task_pod(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path, k8s_cluster: KubernetesSettings
) -> None:
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    seen: list[bytes] = []
    script = "echo fetched > fetched.txt; hostname"
    result = await sandbox.exec(
        ["sh", "-c", script], timeout_s=LONG_S, escalated=True, on_output=lambda _s, d: seen.append(d)
    )
    assert result.exit_code == 0
    assert b"".join(seen).strip().decode() != sandbox.pod, "it ran in another pod"
    assert (k8s_workspace / "fetched.txt").read_text() == "fetched\n"
    out: list[bytes] = []
    back = await sandbox.exec(["cat", "fetched.txt"], timeout_s=LONG_S, on_output=lambda _s, d: out.append(d))
    assert back.exit_code == 0 and b"".join(out) == b"fetched\n", "pushed into the task's own pod"
    siblings = _core(k8s_cluster).list_namespaced_pod("default", label_selector=f"{LABEL_NETWORK}=on")
    assert [p.metadata.name for p in siblings.items if p.metadata.deletion_timestamp is None] == []


async def test_read_only_mode_never_copies_the_pods_changes_back(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path
) -> None:
    (k8s_workspace / "kept.txt").write_text("original\n")
    sandbox = make_k8s_sandbox(mode="read-only")
    await sandbox.start()
    result = await sandbox.exec(["sh", "-c", "echo changed > kept.txt; echo new > new.txt"], timeout_s=LONG_S)
    assert result.exit_code == 0
    assert (k8s_workspace / "kept.txt").read_text() == "original\n"
    assert not (k8s_workspace / "new.txt").exists()


async def test_timeout_kills_the_command_and_everything_it_started_but_not_the_pod(
    make_k8s_sandbox: MakeK8sSandbox, k8s_cluster: KubernetesSettings
) -> None:
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    result = await sandbox.exec(["sh", "-c", "setsid sleep 300 & sleep 300"], timeout_s=1)
    assert result.exit_code == 124 and result.timed_out
    out: list[bytes] = []
    probe = await sandbox.exec(
        ["sh", "-c", "ps -eo args | grep -c '[s]leep 300'; true"],
        timeout_s=LONG_S,
        on_output=lambda _s, d: out.append(d),
    )
    assert probe.exit_code == 0 and b"".join(out).strip() == b"0"
    assert await sandbox.alive()
    assert sandbox.pod is not None and pod_state(k8s_cluster, sandbox.pod) == "running"


async def test_first_start_sweeps_pods_whose_owner_process_is_gone(
    make_k8s_sandbox: MakeK8sSandbox, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    crashed = subprocess.Popen(["true"])
    crashed.wait()
    labels = {LABEL: "1", LABEL_TASK: "t-crashed", LABEL_OWNER_PID: str(crashed.pid), LABEL_OWNER_START: "1"}
    core = _core(k8s_cluster)
    stale = {
        "metadata": {"name": f"codex-tui-stale-{crashed.pid}", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "sandbox",
                    "image": sandbox_image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "300"],
                }
            ],
        },
    }
    core.create_namespaced_pod("default", stale)
    k8s_backend._swept.clear()
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    assert pod_state(k8s_cluster, stale["metadata"]["name"]) in ("gone", "being deleted")
