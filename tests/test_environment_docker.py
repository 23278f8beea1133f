"""Setup-only secrets and maintenance against the real engine, and a whole task with limited network."""

from __future__ import annotations

import http.server
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from codex_tui import protocol as p
from codex_tui.config import EnvironmentSettings
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.env_image import ensure_env_image
from codex_tui.sandbox.environment import Environment
from codex_tui.scripted import ScriptedServer
from tests.test_tasks_support import scenario, scripted_config, shell_call, started_manager, submit

pytestmark = pytest.mark.docker

SETUP = (
    'echo "setup sees $FENV_TOKEN"\n'
    'printf %s "$FENV_TOKEN" > /opt/token && test -s /opt/token && echo "token written"\n'
    "rm /opt/token\n"
)


def _secret() -> str:
    return f"sekrit-{uuid.uuid4().hex}"


def _collector() -> tuple[list[bytes], Any]:
    chunks: list[bytes] = []
    return chunks, lambda _stream, data: chunks.append(data)


def _image_holds(client: docker.DockerClient, tag: str, needle: bytes) -> bool:
    """Does `docker save` of the image (every layer, config and history) contain `needle`?"""
    tail = b""
    for chunk in client.api.get_image(tag, chunk_size=1 << 20):
        if needle in tail + chunk:
            return True
        tail = chunk[-len(needle) :]
    return False


async def _run(sandbox: DockerSandbox, *argv: str) -> str:
    chunks, collect = _collector()
    result = await sandbox.exec(list(argv), timeout_s=60, on_output=collect)
    return f"exit {result.exit_code}\n" + b"".join(chunks).decode()


async def test_setup_secret_is_masked_and_absent_from_image_and_task_container(
    tmp_path: Path, sandbox_image: str, sandbox_workspace: Path, docker_engine: docker.DockerClient
) -> None:
    secret = _secret()
    repo = tmp_path / "repo"
    repo.mkdir()
    chunks, collect = _collector()
    environment = Environment(setup=SETUP + f"# {uuid.uuid4().hex}\n", secret_names=("FENV_TOKEN",))
    tag = await ensure_env_image(
        sandbox_image, repo, None, collect, environment=environment, secrets=lambda: {"FENV_TOKEN": secret}
    )
    output = b"".join(chunks).decode()
    assert "setup sees ***" in output and "token written" in output
    assert secret not in output
    image = docker_engine.images.get(tag)
    assert secret not in json.dumps(image.attrs) and secret not in json.dumps(image.history())
    assert not _image_holds(docker_engine, tag, secret.encode()), "the secret is in the image's layers"
    spec = SandboxSpec(task_id=f"secret-{os.getpid()}", workspace=sandbox_workspace, image=tag)
    sandbox = DockerSandbox(spec)
    try:
        seen = await _run(sandbox, "sh", "-c", "env; cat /opt/token")
    finally:
        await sandbox.stop()
    assert "FENV_TOKEN" not in seen and secret not in seen
    assert "No such file" in seen


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def test_maintenance_runs_on_reuse_only_when_the_files_it_names_changed_or_when_asked(
    tmp_path: Path, sandbox_image: str, docker_engine: docker.DockerClient
) -> None:
    repo = tmp_path / "repo"
    _write(repo / "requirements.txt", "one\n")
    _write(repo / "package-lock.json", "{}\n")
    environment = Environment(
        setup=f"cp requirements.txt /opt/reqs  # {uuid.uuid4().hex}\n",
        maintenance="cp requirements.txt /opt/reqs && echo maintained",
        maintenance_inputs=("requirements.txt",),
    )

    async def ensure(**kwargs: Any) -> tuple[str, str]:
        chunks, collect = _collector()
        tag = await ensure_env_image(sandbox_image, repo, None, collect, environment=environment, **kwargs)
        return tag, b"".join(chunks).decode()

    def reqs(tag: str) -> str:
        return bytes(docker_engine.containers.run(tag, ["cat", "/opt/reqs"], remove=True)).decode()

    tag, built = await ensure()
    assert "running the setup script" in built and "maintenance script" not in built
    assert await ensure() == (tag, ""), "unchanged inputs: the cached image is reused as is"
    _write(repo / "requirements.txt", "two\n")
    again, maintained = await ensure()
    assert again == tag and "running the maintenance script" in maintained and "maintained" in maintained
    assert reqs(tag) == "two\n"
    assert await ensure() == (tag, ""), "maintenance ran once for that change"
    forced, output = await ensure(maintenance=True)
    assert forced == tag and "running the maintenance script" in output
    _write(repo / "package-lock.json", '{"other": 1}\n')
    rebuilt, output = await ensure()
    assert rebuilt != tag and "running the setup script" in output and "maintenance script" not in output


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def bridge_server(docker_engine: docker.DockerClient) -> Iterator[tuple[str, int]]:
    """An HTTP server on the host's Docker bridge address: (address, port)."""
    address = str(docker_engine.api.inspect_network("bridge")["IPAM"]["Config"][0]["Gateway"])
    server = http.server.ThreadingHTTPServer((address, 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield address, server.server_address[1]
    server.shutdown()
    server.server_close()


FETCH = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n    print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())\n"
    "except urllib.error.HTTPError as exc:\n    print(exc.code, exc.read().decode())\n"
)


async def test_task_with_limited_network_and_a_secret_logs_requests_and_never_shows_the_secret(
    git_repo: Path,
    isolated_home: Path,
    sandbox_image: str,
    bridge_server: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, port = bridge_server
    secret = _secret()
    monkeypatch.setenv("FENV_TOKEN", secret)
    _write(
        git_repo / ".codex-tui/environment.toml",
        f'setup = """{SETUP}# {uuid.uuid4().hex}\n"""\nsecrets = ["FENV_TOKEN"]\n'
        f'network_access = "limited"\nallowed_domains = ["{address}:{port}"]\n',
    )
    fetch = scenario(
        "fetch",
        {"tool_calls": [shell_call("sh", "-c", "env | grep -c FENV_TOKEN; echo done", timeout_ms=30_000)]},
        {"tool_calls": [shell_call("python3", "-c", FETCH, f"http://{address}:{port}/", timeout_ms=60_000)]},
        {
            "tool_calls": [
                shell_call("python3", "-c", FETCH, f"http://{address}:{port + 1}/", timeout_ms=60_000)
            ]
        },
        {"text": "fetched"},
    )
    async with ScriptedServer([fetch]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        cfg.environment = EnvironmentSettings()
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "fetch something", model="scripted:fetch")
            assert await manager.wait_for(task_id, timeout=300) == "ready"
    commands = log.items(task_id, p.ITEM_COMMAND)
    _setup, env_count, allowed, refused = (c["aggregated_output"] for c in commands)
    deltas = log.of(task_id, p.OUTPUT_DELTA)
    setup_output = "".join(e.data["text"] for e in deltas if e.data["item_id"] == commands[0]["id"])
    assert "setup sees ***" in setup_output
    assert env_count.startswith("0"), "the secret's name is not in the agent's environment"
    assert allowed.strip() == "hello"
    assert refused.startswith("403") and f"{address}:{port + 1}" in refused
    requests = [(e.data["port"], e.data["allowed"]) for e in log.of(task_id, p.NETWORK_REQUEST)]
    assert requests == [(port, True), (port + 1, False)]
    rollout = (cfg.data_dir / "rollouts" / f"{task_id}.jsonl").read_text()
    assert secret not in rollout and "setup sees ***" in rollout
    assert rollout.count(p.NETWORK_REQUEST) == 2
    logs = "".join(path.read_text(errors="replace") for path in cfg.data_dir.rglob("*.log"))
    assert secret not in logs
