"""Task pods for the Kubernetes backend: the pod manifest, its network policy, start, delete, sweep.

A task pod mirrors the Docker backend's container hardening: no service-account token, runAsNonRoot
with `sandbox_ids()`, every capability dropped, no privilege escalation, RuntimeDefault seccomp, a
read-only root filesystem with size-limited memory-backed emptyDirs for /tmp and HOME, CPU and
memory limits, `restartPolicy: Never`, and an active deadline (the TTL) so a pod nobody deletes
ends by itself. The workspace is an emptyDir bounded by `sandbox.disk_mb`; object folders the
checkout borrows (git alternates) get their own emptyDirs at the same absolute paths.

Network off: pods of tasks without full access carry `codex-tui.network=off`, selected by the
deny-all NetworkPolicy `codex-tui-deny-all` (created in the namespace when missing); full access
labels the pod `on`, which the policy does not select. A cluster whose network plugin does not
enforce NetworkPolicy (the local test cluster's bridge plugin, which gives pods no route out
anyway) accepts the object and ignores it: use a plugin that enforces it (Calico, Cilium…).

Pids: Kubernetes has no per-pod pids limit in the pod spec (`podPidsLimit` is the kubelet's);
set it on the nodes that run tasks.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import time
from typing import Any, Final

from codex_tui.boundary.identity import sandbox_ids
from codex_tui.config import KubernetesSettings
from codex_tui.sandbox.base import SandboxError, SandboxSpec
from codex_tui.sandbox.engine import LABEL, LABEL_OWNER_HOST, LABEL_TASK, owner_alive, owner_labels
from codex_tui.sandbox.image import IMAGE_PATH
from codex_tui.sandbox.k8s_exec import CONTAINER, core_api, explain, is_not_found

WORKDIR: Final = "/workspace"
HOME: Final = "/home/sandbox"
TMP_SIZE: Final = "1Gi"
HOME_SIZE: Final = "256Mi"
LABEL_NETWORK: Final = "codex-tui.network"
POLICY_NAME: Final = "codex-tui-deny-all"
ANNOTATION_TASK: Final = "codex-tui/task-id"
READY_TIMEOUT_S: Final = 120.0
POLL_S: Final = 0.1
REQUEST_SHARE: Final = 0.1
"""Requests are a tenth of the limits: an agent's pod idles most of the time (the model thinks), so
the scheduler packs tasks the way one Docker host does, while the limits still cap each one."""
DEFAULT_TTL_S: Final = 24 * 3600
_REAPER = (
    "import os, signal\n"
    "signal.signal(signal.SIGTERM, lambda *_: os._exit(0))\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
    "while True:\n"
    "    try:\n"
    "        while os.waitpid(-1, os.WNOHANG)[0] > 0:\n"
    "            pass\n"
    "    except ChildProcessError:\n"
    "        pass\n"
    "    signal.sigtimedwait({signal.SIGCHLD}, 60)\n"
)
KEEPER: Final = (
    f"command -v python3 >/dev/null && exec python3 -c '{_REAPER}'; "
    "trap 'exit 0' TERM; while :; do sleep 3600 & wait $! 2>/dev/null; done"
)
"""The container's main process: PID 1 of the pod's own pid namespace, reaping what commands
orphan (so zombies never hold pids). Exec cannot change uid in Kubernetes, so commands share its
uid; the kernel never delivers `kill -KILL -1` (nor, from inside the namespace, any signal it has
no handler for) to PID 1, so the commands' cleanup leaves it running. Without python3 in the image
a shell loop keeps the pod up instead (its `sleep` is ended and restarted by each command's cleanup)."""


def pod_name(task_id: str) -> str:
    """A DNS-1123 name unique per start: codex-tui-<task>-<random>."""
    slug = re.sub(r"[^a-z0-9-]+", "-", task_id.lower()).strip("-")[:40] or "task"
    return f"codex-tui-{slug}-{secrets.token_hex(3)}"


def label_value(text: str) -> str:
    """`text` as a valid label value (≤ 63 of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-._")
    return value or "x"


def pod_manifest(spec: SandboxSpec, name: str, image: str, ttl_s: int = DEFAULT_TTL_S) -> dict[str, Any]:
    """The pod for one task's sandbox (plain data, as `kubectl apply` would take it)."""
    settings = spec.kubernetes
    uid, gid = sandbox_ids()
    labels = {label_value(k): label_value(v) for k, v in owner_labels().items()}
    labels[LABEL_TASK] = label_value(spec.task_id)
    labels[LABEL_NETWORK] = "on" if spec.network else "off"
    limits = {"cpu": f"{int(spec.limits.cpus * 1000)}m", "memory": f"{spec.limits.memory_mb}Mi"}
    requests = {
        "cpu": f"{max(10, int(spec.limits.cpus * 1000 * REQUEST_SHARE))}m",
        "memory": f"{max(64, int(spec.limits.memory_mb * REQUEST_SHARE))}Mi",
    }
    workspace: dict[str, Any] = {}
    if spec.limits.disk_mb:
        workspace["sizeLimit"] = f"{spec.limits.disk_mb}Mi"
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "emptyDir": workspace},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}},
        {"name": "home", "emptyDir": {"medium": "Memory", "sizeLimit": HOME_SIZE}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "workspace", "mountPath": WORKDIR},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "home", "mountPath": HOME},
    ]
    for index, borrowed in enumerate(spec.extra_ro_mounts):
        volumes.append({"name": f"objects-{index}", "emptyDir": {}})
        mounts.append({"name": f"objects-{index}", "mountPath": str(borrowed)})
    container = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["sh", "-c", KEEPER],
        "workingDir": WORKDIR,
        "env": [{"name": k, "value": v} for k, v in base_env().items()],
        "resources": {"limits": limits, "requests": requests},
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "activeDeadlineSeconds": ttl_s,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {ANNOTATION_TASK: spec.task_id},
        },
        "spec": pod_spec,
    }


def base_env() -> dict[str, str]:
    """The environment every command starts from (as in the Docker backend)."""
    return {"PATH": IMAGE_PATH, "HOME": HOME, "LANG": "C.UTF-8", "TERM": "dumb"}


def deny_all_policy() -> dict[str, Any]:
    """A NetworkPolicy that selects task pods without network and allows them nothing, either way."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {LABEL: "1"}},
        "spec": {
            "podSelector": {"matchLabels": {LABEL: "1", LABEL_NETWORK: "off"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def ensure_network_policy(settings: KubernetesSettings) -> None:
    """Create the deny-all policy in the namespace when it is missing (blocking)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from codex_tui.sandbox.k8s_exec import api_client

    net = client.NetworkingV1Api(api_client(settings))
    try:
        net.read_namespaced_network_policy(POLICY_NAME, settings.namespace)
        return
    except ApiException as exc:
        if exc.status != 404:
            raise SandboxError(f"cannot read the network policy {POLICY_NAME}: {explain(exc)}") from None
    try:
        net.create_namespaced_network_policy(settings.namespace, deny_all_policy())  # type: ignore[arg-type]
    except ApiException as exc:
        if exc.status != 409:  # created meanwhile by another task
            raise SandboxError(
                f"cannot create the deny-all network policy {POLICY_NAME} in namespace "
                f"{settings.namespace}: {explain(exc)}"
            ) from None


def create_pod(settings: KubernetesSettings, manifest: dict[str, Any]) -> None:
    """Submit the pod (blocking)."""
    try:
        core_api(settings).create_namespaced_pod(settings.namespace, manifest)
    except SandboxError:
        raise
    except Exception as exc:
        raise SandboxError(f"could not create the sandbox pod: {explain(exc)}") from None


def wait_running(settings: KubernetesSettings, name: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until the pod's container runs (polled every 0.1 s); SandboxError with the pod's reason when
    it cannot (blocking). Polling rather than a watch: a read costs a few ms, and a watch stream
    sometimes went silent on the 1.20 test cluster with several pods starting at once."""
    core = core_api(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pod = core.read_namespaced_pod(name, settings.namespace)
        except Exception as exc:
            if is_not_found(exc):
                raise SandboxError(f"the sandbox pod {name} was deleted while starting") from None
            raise SandboxError(f"lost the sandbox pod {name} while it started: {explain(exc)}") from None
        if _running(pod, name):
            return
        time.sleep(POLL_S)
    raise SandboxError(
        f"the sandbox pod {name} did not start within {timeout_s:g} s{_pending_reason(core, name, settings)}"
    )


def _running(pod: Any, name: str) -> bool:
    """True once the container runs; raises SandboxError when it never will."""
    phase = pod.status.phase if pod.status else None
    for status in (pod.status.container_statuses or []) if pod.status else []:
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason in (
            "ErrImageNeverPull",
            "ErrImagePull",
            "ImagePullBackOff",
            "CreateContainerConfigError",
            "CreateContainerError",
            "InvalidImageName",
            "RunContainerError",
        ):
            raise SandboxError(
                f"the sandbox pod {name} cannot start: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
            )
        if status.state and status.state.running:
            return True
    if phase in ("Failed", "Succeeded"):
        raise SandboxError(f"the sandbox pod {name} ended while starting ({pod.status.reason or phase})")
    return False


def _pending_reason(core: Any, name: str, settings: KubernetesSettings) -> str:
    with contextlib.suppress(Exception):
        pod = core.read_namespaced_pod(name, settings.namespace)
        for condition in pod.status.conditions or []:
            if condition.status != "True" and condition.message:
                return f" ({condition.message})"
    return ""


def pod_state(settings: KubernetesSettings, name: str) -> str:
    """ "running", "gone", or why the pod stopped (blocking; SandboxError when the API does not answer)."""
    try:
        pod = core_api(settings).read_namespaced_pod(name, settings.namespace)
    except Exception as exc:
        if is_not_found(exc):
            return "gone"
        raise SandboxError(f"cannot read the sandbox pod {name}: {explain(exc)}") from None
    if pod.metadata.deletion_timestamp is not None:
        return "being deleted"
    for status in pod.status.container_statuses or []:
        if status.state and status.state.running:
            return "running"
        if status.state and status.state.terminated:
            term = status.state.terminated
            return f"{term.reason or 'terminated'}, exit code {term.exit_code}"
    return str(pod.status.phase or "unknown").lower()


def delete_pod(settings: KubernetesSettings, name: str) -> None:
    """Delete the pod now (grace 0; blocking); a pod already gone is fine."""
    try:
        core_api(settings).delete_namespaced_pod(name, settings.namespace, grace_period_seconds=0)
    except Exception as exc:
        if not is_not_found(exc):
            raise SandboxError(f"could not delete the sandbox pod {name}: {explain(exc)}") from None


def sweep_stale_pods(settings: KubernetesSettings) -> list[str]:
    """Delete task pods of this host whose owner process is gone; their names (blocking)."""
    host = label_value(socket.gethostname())
    try:
        pods = core_api(settings).list_namespaced_pod(settings.namespace, label_selector=f"{LABEL}=1")
    except Exception as exc:
        raise SandboxError(f"cannot list sandbox pods: {explain(exc)}") from None
    removed: list[str] = []
    for pod in pods.items:
        labels = dict(pod.metadata.labels or {})
        if labels.get(LABEL_OWNER_HOST, host) != host or owner_alive(labels):
            continue
        with contextlib.suppress(SandboxError):
            delete_pod(settings, pod.metadata.name)
            removed.append(str(pod.metadata.name))
    return removed
