"""A repository's setup image, built with Docker, imported into the local cluster and run as the task pod."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.config import KubernetesSettings
from codex_tui.scripted import ScriptedServer
from tests.k8s.conftest import started_k8s_manager
from tests.test_tasks_support import scenario, scripted_config, shell_call, submit

pytestmark = [pytest.mark.k8s, pytest.mark.docker]


@pytest.fixture
def env_images(docker_engine: docker.DockerClient, k8s_cluster: KubernetesSettings) -> Iterator[list[str]]:
    """Setup images a test made; removed from Docker and from the cluster's containerd afterwards."""
    tags: list[str] = []
    yield tags
    ctr = ["ctr", "--address", k8s_cluster.containerd_socket, "--namespace", "k8s.io"]
    for tag in set(tags):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_engine.images.remove(tag, force=True)
        subprocess.run([*ctr, "images", "rm", f"docker.io/library/{tag}"], capture_output=True, check=False)


async def test_setup_image_is_imported_into_the_cluster_and_the_task_pod_runs_it(
    git_repo: Path,
    isolated_home: Path,
    k8s_cluster: KubernetesSettings,
    sandbox_image: str,
    env_images: list[str],
) -> None:
    (git_repo / ".codex-tui").mkdir()
    (git_repo / ".codex-tui" / "setup.sh").write_text(
        f"# {uuid.uuid4().hex}\necho prepared > /opt/setup-marker\n"
    )
    reads = scenario(
        "reads",
        {"tool_calls": [shell_call("cat", "/opt/setup-marker", timeout_ms=120_000)]},
        {"text": "read it"},
    )
    async with ScriptedServer([reads]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, sandbox_image=sandbox_image)
        cfg.sandbox_kubernetes = k8s_cluster
        async with started_k8s_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "use the setup", model="scripted:reads")
            state = await manager.wait_for(task_id, timeout=600)
            assert state == "ready", manager.tasks()[0]["message"]
    [info] = log.of(task_id, p.SANDBOX_INFO)
    env_images.append(info.data["image"])
    assert info.data["image"].startswith("codex-tui-env:")
    cat = log.items(task_id, p.ITEM_COMMAND)[-1]
    assert cat["exit_code"] == 0 and cat["aggregated_output"] == "prepared\n"
