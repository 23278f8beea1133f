"""The [sandbox.kubernetes] table and the task pod it describes (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.boundary.identity import sandbox_ids
from codex_tui.config import ConfigError, load_config
from codex_tui.sandbox.base import SandboxLimits
from codex_tui.sandbox.factory import spec_from_config
from codex_tui.sandbox.k8s_pod import LABEL_NETWORK, deny_all_policy, pod_manifest, pod_name


def _home(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config.toml").write_text(text)
    return tmp_path


def test_kubernetes_table_sets_cluster_namespace_image_and_node_selector(tmp_path: Path) -> None:
    home = _home(
        tmp_path,
        '[sandbox]\nbackend = "kubernetes"\ndisk_mb = 500\n'
        '[sandbox.kubernetes]\nkubeconfig = "/etc/kube.yaml"\ncontext = "prod"\nnamespace = "agents"\n'
        'image = "registry.example.com/codex:1"\nimage_pull_policy = "IfNotPresent"\n'
        'containerd_sockets = ["/run/node2.sock", "/run/node3.sock"]\n'
        '[sandbox.kubernetes.node_selector]\npool = "agents"\n',
    )
    cfg = load_config(home=home)
    settings = cfg.sandbox_kubernetes
    assert cfg.sandbox_backend == "kubernetes"
    assert (settings.kubeconfig, settings.context, settings.namespace) == ("/etc/kube.yaml", "prod", "agents")
    assert settings.image_pull_policy == "IfNotPresent" and settings.node_selector == {"pool": "agents"}
    assert settings.containerd_sockets == ["/run/node2.sock", "/run/node3.sock"]
    spec = spec_from_config(cfg, "t-1", tmp_path)
    assert spec.kubernetes is settings and spec.limits.disk_mb == 500


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("namespace = 3", "key 'namespace': expected a string"),
        ('image_pull_policy = "Sometimes"', "'Sometimes' is not one of Never, IfNotPresent, Always"),
        ('replicas = "2"', "unknown key 'replicas'"),
        ("node_selector = 1", "key 'node_selector': expected a table"),
        ('containerd_sockets = "/run/a.sock"', "key 'containerd_sockets': expected a list of socket paths"),
    ],
)
def test_mistakes_in_the_kubernetes_table_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    home = _home(tmp_path, f"[sandbox.kubernetes]\n{table}\n")
    with pytest.raises(ConfigError, match=r"sandbox\.kubernetes") as raised:
        load_config(home=home)
    assert message in str(raised.value)


def test_task_pod_is_hardened_like_the_docker_container(tmp_path: Path) -> None:
    cfg = load_config(home=_home(tmp_path, '[sandbox.kubernetes.node_selector]\npool = "agents"\n'))
    spec = spec_from_config(cfg, "t-Odd_ID", tmp_path, extra_ro_mounts=[Path("/repo/.git/objects")])
    spec.limits = SandboxLimits(cpus=1.5, memory_mb=1024, disk_mb=300)
    name = pod_name(spec.task_id)
    pod = pod_manifest(spec, name, "codex-tui-sandbox:latest")
    body = pod["spec"]
    [container] = body["containers"]
    uid, gid = sandbox_ids()
    assert name.startswith("codex-tui-t-odd-id-") and len(name) <= 63
    assert body["restartPolicy"] == "Never" and body["automountServiceAccountToken"] is False
    assert body["nodeSelector"] == {"pool": "agents"}
    assert body["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container["securityContext"]
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True and ctx["runAsNonRoot"] is True
    assert (ctx["runAsUser"], ctx["runAsGroup"]) == (uid, gid) and uid != 0
    assert container["imagePullPolicy"] == "Never"
    assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "1024Mi"}
    assert container["resources"]["requests"] == {"cpu": "150m", "memory": "102Mi"}, (
        "tasks pack like on one host"
    )
    volumes = {v["name"]: v["emptyDir"] for v in body["volumes"]}
    assert volumes["workspace"] == {"sizeLimit": "300Mi"}
    assert volumes["tmp"]["medium"] == "Memory" and volumes["home"]["medium"] == "Memory"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/workspace", "/tmp", "/home/sandbox", "/repo/.git/objects"} <= mounts
    assert pod["metadata"]["labels"][LABEL_NETWORK] == "off"
    assert pod["metadata"]["annotations"]["codex-tui/task-id"] == "t-Odd_ID"


def test_deny_all_policy_selects_network_off_task_pods_and_allows_nothing() -> None:
    policy = deny_all_policy()["spec"]
    assert policy["podSelector"]["matchLabels"][LABEL_NETWORK] == "off"
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy and "egress" not in policy
