"""Network access against the real engine: limited (through the egress proxy), off and on.

Two HTTP servers on the host's Docker bridge address stand for an allowed and a not-allowed host;
the proxy knows them by name (`allowed.test`, `blocked.test`) through its own /etc/hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import docker
import pytest

from codex_tui.sandbox.base import SandboxError, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.egress import Egress
from codex_tui.sandbox.egress_proxy import Policy
from codex_tui.sandbox.engine import (
    LABEL,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    get_client,
)
from codex_tui.sandbox.factory import startup_sweep

pytestmark = pytest.mark.docker

PROBE = r"""
import json, socket, sys, urllib.error, urllib.request

def http(url, method="GET"):
    data = b"x" if method == "POST" else None
    try:
        answer = urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=20)
        return [answer.status, answer.read().decode()]
    except urllib.error.HTTPError as exc:
        return [exc.code, exc.read().decode()]
    except Exception as exc:
        return [0, repr(exc)]

def direct(host, port):
    sock = socket.socket()
    sock.settimeout(3)
    try:
        sock.connect((host, port))
        return "connected"
    except OSError as exc:
        return f"failed: {exc}"

def tunnel(proxy, target):
    host, _, port = proxy.rpartition("/")[2].rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data.decode()

def resolve(name):
    try:
        socket.getaddrinfo(name, 80)
        return "resolved"
    except OSError as exc:
        return f"failed: {exc}"

checks = json.loads(sys.argv[1])
print(json.dumps([globals()[name](*args) for name, args in checks]))
"""


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        """Quiet."""


async def logged(seen: list[dict[str, Any]], count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The proxy's log events once `count` have arrived (they follow the answers: the host reads the
    proxy's log stream on its own)."""
    deadline = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return seen


@pytest.fixture
def hosts(bridge_address: str) -> Iterator[tuple[int, int]]:
    """(allowed port, not-allowed port): two HTTP servers on the bridge address naming themselves."""
    servers = []
    for name in ("allowed-server", "blocked-server"):
        server = http.server.ThreadingHTTPServer((bridge_address, 0), _Hello)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers[0].server_address[1], servers[1].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def sandboxes(sandbox_image: str, sandbox_workspace: Path) -> AsyncIterator[list[DockerSandbox]]:
    """Sandboxes a test made; stopped after it."""
    made: list[DockerSandbox] = []
    yield made
    for sandbox in made:
        await sandbox.stop()


def _sandbox(
    made: list[DockerSandbox],
    image: str,
    workspace: Path,
    access: Literal["off", "limited", "on"],
    egress: Egress | None = None,
) -> DockerSandbox:
    spec = SandboxSpec(
        task_id=f"net-{os.getpid()}-{len(made)}", workspace=workspace, image=image, network_access=access
    )
    sandbox = DockerSandbox(spec, egress=egress)
    made.append(sandbox)
    return sandbox


async def _probe(sandbox: DockerSandbox, *checks: tuple[str, list[Any]]) -> list[Any]:
    chunks: list[bytes] = []
    result = await sandbox.exec(
        ["python3", "-c", PROBE, json.dumps(checks)], timeout_s=120, on_output=lambda _s, d: chunks.append(d)
    )
    text = b"".join(chunks).decode()
    assert result.exit_code == 0, text
    return list(json.loads(text.strip().splitlines()[-1]))


async def test_limited_network_reaches_allowed_host_and_refuses_everything_else(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    bridge_address: str,
    hosts: tuple[int, int],
    docker_engine: docker.DockerClient,
) -> None:
    allowed, blocked = hosts
    seen: list[dict[str, Any]] = []
    egress = Egress(
        f"limited-{os.getpid()}",
        Policy((f"allowed.test:{allowed}", f"{bridge_address}:{allowed}")),
        seen.append,
        extra_hosts={"allowed.test": bridge_address, "blocked.test": bridge_address},
    )
    sandbox = _sandbox(sandboxes, sandbox_image, sandbox_workspace, "limited", egress)
    await sandbox.start()
    assert "network limited to allowed.test" in sandbox.describe()
    results = await _probe(
        sandbox,
        ("http", [f"http://allowed.test:{allowed}/"]),
        ("http", [f"http://{bridge_address}:{allowed}/"]),
        ("http", [f"http://blocked.test:{blocked}/"]),
        ("http", [f"http://{bridge_address}:{blocked}/"]),
        ("http", [f"http://allowed.test:{allowed}/", "POST"]),
        ("tunnel", [egress.env()["HTTP_PROXY"], f"blocked.test:{blocked}"]),
        ("direct", [bridge_address, allowed]),
        ("resolve", ["allowed.test"]),
    )
    by_name, by_ip, other_host, other_ip, post, connect, direct, dns = results
    assert by_name == [200, "allowed-server"]
    assert by_ip == [200, "allowed-server"]
    assert other_host[0] == 403 and f"would admit it: blocked.test:{blocked}" in other_host[1]
    assert other_ip[0] == 403 and f"would admit it: {bridge_address}:{blocked}" in other_ip[1]
    assert post[0] == 403 and "method POST is not allowed" in post[1]
    assert connect.startswith("HTTP/1.1 403") and f"would admit it: blocked.test:{blocked}" in connect
    assert direct.startswith("failed"), "a direct connection must not skip the proxy"
    assert dns.startswith("failed"), "the task must not resolve names itself"
    verdicts = [(e["method"], e["host"], e["allowed"]) for e in await logged(seen, 6)]
    assert verdicts == [
        ("GET", "allowed.test", True),
        ("GET", bridge_address, True),
        ("GET", "blocked.test", False),
        ("GET", bridge_address, False),
        ("POST", "allowed.test", False),
        ("CONNECT", "blocked.test", False),
    ]
    assert seen[2]["rule"] == f"blocked.test:{blocked}"
    network = egress.network
    await sandbox.stop()
    assert docker_engine.api.networks(names=[network]) == []
    proxies = {"label": ["codex-tui.egress=proxy", f"codex-tui.task={egress.task_id}"]}
    assert docker_engine.api.containers(all=True, filters=proxies) == []


async def test_network_off_reaches_nothing(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    bridge_address: str,
    hosts: tuple[int, int],
) -> None:
    allowed, blocked = hosts
    sandbox = _sandbox(sandboxes, sandbox_image, sandbox_workspace, "off")
    results = await _probe(
        sandbox,
        ("http", [f"http://{bridge_address}:{allowed}/"]),
        ("direct", [bridge_address, allowed]),
        ("direct", [bridge_address, blocked]),
    )
    assert results[0][0] == 0
    assert all(r.startswith("failed") for r in results[1:])
    assert "network off" in sandbox.describe()


async def test_network_on_reaches_both_hosts(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    bridge_address: str,
    hosts: tuple[int, int],
) -> None:
    allowed, blocked = hosts
    sandbox = _sandbox(sandboxes, sandbox_image, sandbox_workspace, "on")
    results = await _probe(
        sandbox,
        ("http", [f"http://{bridge_address}:{allowed}/"]),
        ("http", [f"http://{bridge_address}:{blocked}/", "POST"]),
    )
    assert results == [[200, "allowed-server"], [200, "blocked-server"]]
    assert "network on" in sandbox.describe()


async def test_startup_sweep_removes_egress_networks_of_a_dead_owner(
    docker_engine: docker.DockerClient,
) -> None:
    name = f"codex-tui-egress-stale-{os.getpid()}"
    labels = {
        LABEL: "1",
        "codex-tui.egress": "1",
        LABEL_OWNER_PID: "999999999",
        LABEL_OWNER_START: "1",
        LABEL_OWNER_HOST: socket.gethostname(),
    }
    docker_engine.api.create_network(name, driver="bridge", internal=True, labels=labels)
    try:
        assert name in await startup_sweep()
        assert docker_engine.api.networks(names=[name]) == []
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_engine.api.remove_network(name)


async def test_missing_proxy_image_is_a_clear_error_and_leaves_no_network(
    docker_engine: docker.DockerClient,
) -> None:
    egress = Egress(f"noimage-{os.getpid()}", Policy(()), image="codex-tui-nope:missing")
    with pytest.raises(SandboxError, match="run `codex-tui sandbox build`"):
        await egress.start(await get_client())
    assert docker_engine.api.networks(names=[egress.network]) == []
