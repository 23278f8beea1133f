"""Tasks on the real local Kubernetes cluster, through the TaskManager and the scripted model server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from codex_tui import protocol as p
from codex_tui.config import KubernetesSettings
from codex_tui.sandbox.engine import LABEL, LABEL_TASK
from codex_tui.sandbox.k8s_pod import LABEL_NETWORK, POLICY_NAME, label_value
from codex_tui.scripted import ScriptedServer
from tests.k8s.conftest import started_k8s_manager
from tests.test_tasks_support import (
    add_file_patch,
    assert_rollout_holds,
    patch_call,
    scenario,
    scripted_config,
    shell_call,
    submit,
)

pytestmark = [pytest.mark.k8s, pytest.mark.docker]
LONG_MS = 120_000
"""Command timeouts: the machines running these tests are shared and often heavily loaded."""


def _core(settings: KubernetesSettings) -> Any:
    return client.CoreV1Api(config.new_client_from_config(config_file=settings.kubeconfig))


def _pod_of(log: Any, task_id: str, index: int = 0) -> str:
    return str(log.of(task_id, p.SANDBOX_INFO)[index].data["container_id"])


def _config(home: Path, base_url: str, settings: KubernetesSettings, image: str, **extra: Any) -> Any:
    cfg = scripted_config(home, base_url, sandbox_image=image, **extra)
    cfg.sandbox_kubernetes = settings
    return cfg


async def test_task_runs_in_a_pod_and_its_changes_diff_and_apply_to_the_users_tree(
    git_repo: Path, isolated_home: Path, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    work = scenario(
        "work",
        {"tool_calls": [patch_call(add_file_patch("hello.txt", "from the host patch"))]},
        {
            "tool_calls": [
                shell_call(
                    "sh",
                    "-c",
                    "cat hello.txt && echo made-in-pod > pod.txt && rm README.md && git status --short",
                )
            ]
        },
        {"text": "all done"},
    )
    core = _core(k8s_cluster)
    async with ScriptedServer([work]) as srv:
        cfg = _config(isolated_home, srv.base_url, k8s_cluster, sandbox_image, sandbox_memory_mb=1000)
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "work in a pod", model="scripted:work")
            assert await manager.wait_for(task_id, timeout=240) == "ready", manager.tasks()[0]["message"]
            [info] = log.of(task_id, p.SANDBOX_INFO)
            pod = core.read_namespaced_pod(info.data["container_id"], "default")
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
            applied = await manager.submit(p.Op(p.OP_APPLY, task_id, {"branch": False}))
            assert applied.ok, applied.message
        gone = core.list_namespaced_pod("default", label_selector=f"{LABEL_TASK}={label_value(task_id)}")
    assert info.data["backend"] == "kubernetes" and "network off" in info.data["message"]
    assert pod.metadata.labels[LABEL_TASK] == label_value(task_id) and pod.metadata.labels[LABEL] == "1"
    spec = pod.spec
    assert spec.restart_policy == "Never" and spec.automount_service_account_token is False
    ctx = spec.containers[0].security_context
    assert ctx.capabilities.drop == ["ALL"] and ctx.allow_privilege_escalation is False
    assert ctx.read_only_root_filesystem is True and ctx.run_as_non_root is True and ctx.run_as_user != 0
    assert spec.containers[0].resources.limits["memory"] == "1000Mi"
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert command["exit_code"] == 0, command["aggregated_output"]
    output = command["aggregated_output"]
    assert "from the host patch" in output, "the host's apply_patch write reached the pod"
    assert "D README.md" in output and "?? pod.txt" in output, "git works inside the pod"
    assert sorted(f["path"] for f in files) == ["README.md", "hello.txt", "pod.txt"]
    assert (git_repo / "pod.txt").read_text() == "made-in-pod\n"
    assert (git_repo / "hello.txt").read_text() == "from the host patch\n"
    assert not (git_repo / "README.md").exists()
    assert gone.items == [], "closing the manager deletes the task's pod"
    assert_rollout_holds(cfg, task_id, log)


async def test_interrupt_kills_the_command_in_the_pod_and_the_pod_lives_on(
    git_repo: Path, isolated_home: Path, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    long = scenario(
        "long",
        {
            "tool_calls": [
                shell_call("sh", "-c", "echo half > half.txt; echo started; sleep 300", timeout_ms=600_000)
            ]
        },
        {
            "tool_calls": [
                shell_call("sh", "-c", "ps -eo args | grep -c '[s]leep 300'; true", timeout_ms=LONG_MS)
            ]
        },
        {"text": "picked up again"},
    )
    async with ScriptedServer([long]) as srv:
        cfg = _config(isolated_home, srv.base_url, k8s_cluster, sandbox_image)
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "run long", model="scripted:long")
            await log.until(lambda e: e.type == p.OUTPUT_DELTA and "started" in e.data.get("text", ""), 60)
            began = time.monotonic()
            assert (await manager.submit(p.Op(p.OP_INTERRUPT, task_id))).ok
            assert await manager.wait_for(task_id, timeout=120) == "ready"
            stopped_in = time.monotonic() - began
            checkout = Path(manager.store.records[task_id].workspace)
            half = (checkout / "half.txt").read_text()
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "go on"}))).ok
            assert await manager.wait_for(task_id, timeout=240) == "ready"
    assert stopped_in < 60, "the interrupt does not wait for the 300 s command"
    assert half == "half\n", "what the interrupted command wrote came back to the host"
    first, second = log.items(task_id, p.ITEM_COMMAND)
    assert first["status"] == "failed"
    assert second["aggregated_output"].strip() == "0", "the interrupted sleep is gone from the pod"
    assert len(log.of(task_id, p.SANDBOX_INFO)) == 1, "the same pod ran the follow-up"


async def test_network_off_pods_are_selected_by_the_deny_all_policy_and_full_access_ones_are_not(
    git_repo: Path, isolated_home: Path, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    """The test cluster's bridge plugin does not enforce NetworkPolicy (its pods have no route out
    anyway), so this checks the policy object and which pods it selects."""
    quick = scenario("quick", {"tool_calls": [shell_call("true", timeout_ms=LONG_MS)]}, {"text": "done"})
    core = _core(k8s_cluster)
    net = client.NetworkingV1Api(config.new_client_from_config(config_file=k8s_cluster.kubeconfig))
    async with ScriptedServer([quick]) as srv:
        cfg = _config(isolated_home, srv.base_url, k8s_cluster, sandbox_image)
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            [off] = await submit(manager, "no network", model="scripted:quick")
            [on] = await submit(manager, "network", model="scripted:quick", mode="full-access")
            assert await manager.wait_for(off, timeout=240) == "ready", manager.tasks()
            assert await manager.wait_for(on, timeout=240) == "ready"
            labels = {
                t: core.read_namespaced_pod(_pod_of(log, t), "default").metadata.labels for t in (off, on)
            }
            policy = net.read_namespaced_network_policy(POLICY_NAME, "default")
    selector = policy.spec.pod_selector.match_labels
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
    assert not policy.spec.ingress and not policy.spec.egress, "nothing is allowed"
    assert labels[off][LABEL_NETWORK] == "off" and labels[on][LABEL_NETWORK] == "on"
    assert all(labels[off].get(k) == v for k, v in selector.items()), "the policy selects the task pod"
    assert not all(labels[on].get(k) == v for k, v in selector.items()), "full access lifts it"


async def test_pod_killed_mid_command_fails_the_task_clearly_and_a_follow_up_resumes_in_a_new_pod(
    git_repo: Path, isolated_home: Path, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    doomed = scenario(
        "doomed",
        {
            "tool_calls": [
                patch_call(add_file_patch("kept.txt", "kept")),
                shell_call("sh", "-c", "echo sleeping; sleep 60", timeout_ms=120_000),
            ]
        },
        {"tool_calls": [shell_call("cat", "kept.txt", timeout_ms=LONG_MS)]},
        {"text": "resumed in a new pod"},
    )
    core = _core(k8s_cluster)
    async with ScriptedServer([doomed]) as srv:
        cfg = _config(isolated_home, srv.base_url, k8s_cluster, sandbox_image)
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "sleep in a pod", model="scripted:doomed")
            await log.until(lambda e: e.type == p.OUTPUT_DELTA and "sleeping" in e.data.get("text", ""), 60)
            core.delete_namespaced_pod(_pod_of(log, task_id), "default", grace_period_seconds=0)
            assert await manager.wait_for(task_id, timeout=240) == "failed"
            message = manager.tasks()[0]["message"]
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "try again"}))).ok
            assert await manager.wait_for(task_id, timeout=240) == "ready", manager.tasks()[0]["message"]
            pods = [_pod_of(log, task_id, i) for i in (0, 1)]
    assert message.startswith("the sandbox failed") and "pod" in message
    assert pods[0] != pods[1]
    cat = log.items(task_id, p.ITEM_COMMAND)[-1]
    assert cat["command"] == "cat kept.txt" and "kept" in cat["aggregated_output"]
    assert log.items(task_id, p.ITEM_AGENT_MESSAGE)[-1]["text"] == "resumed in a new pod"


async def test_four_attempts_run_in_four_pods(
    git_repo: Path, isolated_home: Path, k8s_cluster: KubernetesSettings, sandbox_image: str
) -> None:
    scenarios = [
        scenario(
            f"a{i}",
            {"tool_calls": [shell_call("sh", "-c", f"echo {i} > attempt.txt", timeout_ms=LONG_MS)]},
            {"text": "ok"},
        )
        for i in range(1, 5)
    ]
    async with ScriptedServer(scenarios) as srv:
        cfg = _config(isolated_home, srv.base_url, k8s_cluster, sandbox_image)
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            result = await manager.submit(
                p.Op(
                    p.OP_SUBMIT,
                    data={
                        "prompt": "four ways",
                        "attempts": 4,
                        "models": [f"scripted:a{i}" for i in range(1, 5)],
                    },
                )
            )
            assert result.ok, result.message
            ids = result.data["task_ids"]
            states = await asyncio.gather(*(manager.wait_for(i, timeout=180) for i in ids))
            checkouts = [Path(manager.store.records[i].workspace) for i in ids]
            contents = [(c / "attempt.txt").read_text() for c in checkouts]
    assert states == ["ready"] * 4
    assert len({_pod_of(log, i) for i in ids}) == 4
    assert contents == [f"{i}\n" for i in range(1, 5)], "each pod's change came back to its own checkout"
