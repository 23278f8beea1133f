"""The egress proxy's rules and the proxy itself, run in-process against local servers (no Docker)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from codex_tui import protocol as p
from codex_tui.exec_printers import HumanPrinter
from codex_tui.sandbox.egress import request_event
from codex_tui.sandbox.egress_proxy import EgressProxy, Policy, policy_from_json


def test_exact_domain_is_allowed_on_web_ports_only() -> None:
    policy = Policy(("pypi.org",))
    assert policy.decide("pypi.org", 443, "CONNECT").allowed
    assert policy.decide("PyPI.org.", 80, "GET").allowed
    refused = policy.decide("pypi.org", 22, "CONNECT")
    assert not refused.allowed and refused.rule == "pypi.org:22"
    assert "port 22 is not allowed" in refused.reason


def test_wildcard_matches_subdomains_but_not_the_domain_itself() -> None:
    policy = Policy(("*.npmjs.org",))
    assert policy.decide("registry.npmjs.org", 443, "CONNECT").allowed
    assert policy.decide("a.b.npmjs.org", 443, "CONNECT").allowed
    assert not policy.decide("npmjs.org", 443, "CONNECT").allowed
    assert not policy.decide("evilnpmjs.org", 443, "CONNECT").allowed


def test_ip_literal_with_port_admits_that_port_only() -> None:
    policy = Policy(("172.17.0.1:8080", "[::1]:9000"))
    assert policy.decide("172.17.0.1", 8080, "GET").allowed
    assert not policy.decide("172.17.0.1", 8081, "GET").allowed
    assert policy.decide("[::1]", 9000, "GET").allowed
    assert not policy.decide("172.17.0.2", 8080, "GET").allowed


def test_refusal_names_the_entry_that_would_admit_the_request() -> None:
    verdict = Policy(("pypi.org",)).decide("example.com", 443, "CONNECT")
    assert not verdict.allowed
    assert verdict.rule == "example.com"
    assert 'add "example.com"' in verdict.reason
    assert Policy(()).decide("10.0.0.5", 8080, "GET").rule == "10.0.0.5:8080"


def test_disallowed_method_is_refused_for_plain_http_and_tunnels_pass_on_host_and_port() -> None:
    policy = Policy(("pypi.org",), ("GET", "HEAD"))
    post = policy.decide("pypi.org", 80, "POST")
    assert not post.allowed and "method POST is not allowed" in post.reason
    assert policy.decide("pypi.org", 443, "CONNECT").allowed


def test_garbage_host_is_refused_without_a_rule() -> None:
    verdict = Policy(("pypi.org",)).decide("bad host\x1b[2J", 80, "GET")
    assert not verdict.allowed and verdict.rule == ""


def test_policy_arrives_from_json_with_methods_upper_cased() -> None:
    policy = policy_from_json(json.dumps({"domains": ["a.org"], "methods": ["get"]}))
    assert policy.domains == ("a.org",) and policy.methods == ("GET",)


def test_proxy_log_record_becomes_checked_event_data_without_control_characters() -> None:
    record = {
        "event": "request",
        "host": "evil\x1b]52;c;AAAA\x07.org",
        "port": "443",
        "method": "GET",
        "allowed": "yes",
        "rule": 5,
        "reason": "x" * 2000,
    }
    event = request_event(record)
    assert event is not None
    assert "\x1b" not in event["host"] and "\x07" not in event["host"]
    assert event["port"] == 0 and event["allowed"] is False and event["rule"] == ""
    assert len(event["reason"]) == 500
    assert request_event({"event": "ready"}) is None


def test_exec_prints_each_verdict_with_its_rule_or_reason() -> None:
    err = io.StringIO()
    printer = HumanPrinter(err, attempts=1)
    allowed = {"host": "pypi.org", "port": 443, "method": "CONNECT", "allowed": True, "rule": "pypi.org"}
    refused = {"host": "x.org", "port": 80, "method": "GET", "allowed": False, "reason": 'add "x.org"'}
    printer(p.Event(p.NETWORK_REQUEST, "t1", 1, allowed))
    printer(p.Event(p.NETWORK_REQUEST, "t1", 2, refused))
    assert err.getvalue().splitlines() == [
        "⇄ network: CONNECT pypi.org:443 allowed (pypi.org)",
        '⇄ network: GET x.org:80 refused: add "x.org"',
    ]


# --- the proxy in-process ----------------------------------------------------------------------


async def _origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny HTTP server answering with the request line it got."""
    head = await reader.readuntil(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0]
    body = b"origin saw: " + first
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


@pytest.fixture
async def proxy_and_origin() -> AsyncIterator[tuple[int, int]]:
    """(proxy port, origin port) on 127.0.0.1; the proxy allows the origin's port only."""
    origin = await asyncio.start_server(_origin, "127.0.0.1", 0)
    origin_port = origin.sockets[0].getsockname()[1]
    proxy = EgressProxy(Policy((f"127.0.0.1:{origin_port}",)))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], origin_port
    server.close()
    origin.close()


async def _exchange(port: int, request: bytes, then: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    if then:
        status = await reader.readuntil(b"\r\n\r\n")
        writer.write(then)
        await writer.drain()
        rest = await reader.read()
        writer.close()
        return status + rest
    data = await reader.read()
    writer.close()
    return data


def _logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


async def test_plain_get_to_allowed_host_is_forwarded_in_origin_form(
    proxy_and_origin: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, origin = proxy_and_origin
    answer = await _exchange(
        proxy, f"GET http://127.0.0.1:{origin}/simple?q=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"origin saw: GET /simple?q=1 HTTP/1.1")
    [record] = _logged(capsys)
    assert record["allowed"] is True and record["rule"] == f"127.0.0.1:{origin}"


async def test_post_to_allowed_host_is_refused_with_403(
    proxy_and_origin: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, origin = proxy_and_origin
    answer = await _exchange(
        proxy, f"POST http://127.0.0.1:{origin}/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"method POST is not allowed" in answer
    assert _logged(capsys)[0]["method"] == "POST"


async def test_connect_to_unlisted_port_is_refused_naming_the_entry(
    proxy_and_origin: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, origin = proxy_and_origin
    answer = await _exchange(proxy, f"CONNECT 127.0.0.1:{origin + 1} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert f"allowlist entry that would admit it: 127.0.0.1:{origin + 1}".encode() in answer
    [record] = _logged(capsys)
    assert record["allowed"] is False and record["port"] == origin + 1


async def test_connect_to_allowed_host_tunnels_bytes_both_ways(
    proxy_and_origin: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, origin = proxy_and_origin
    answer = await _exchange(
        proxy,
        f"CONNECT 127.0.0.1:{origin} HTTP/1.1\r\n\r\n".encode(),
        then=b"PUT /inside-the-tunnel HTTP/1.1\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 Connection established")
    assert answer.endswith(b"origin saw: PUT /inside-the-tunnel HTTP/1.1")
    assert _logged(capsys)[0]["method"] == "CONNECT"


async def test_https_url_without_connect_and_garbage_are_bad_requests(
    proxy_and_origin: tuple[int, int],
) -> None:
    proxy, _ = proxy_and_origin
    assert (await _exchange(proxy, b"GET https://pypi.org/ HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 400")
    assert (await _exchange(proxy, b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400")
