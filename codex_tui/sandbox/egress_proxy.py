"""The egress proxy of `network_access = "limited"`: an HTTP proxy (CONNECT tunnels and plain HTTP)
that lets through only the allowed hosts, ports and methods, and logs every verdict.

This file is both a module (the host imports `Policy` to describe and test verdicts) and the
program the proxy container runs (`python3 -c <this source>`, policy in $EGRESS_POLICY as JSON):
it imports only the standard library so it runs on any image with Python 3.11, and nothing of
codex_tui, so the code that decides what leaves a sandbox can be audited in one sitting.

Why it is trustworthy although a task talks to it: it runs in its own container (another uid,
no capabilities, read-only root) that the task cannot exec into; the task's container sits on an
internal network whose bridge has no host address (no route anywhere but to this proxy), so the
proxy is the only way out. The proxy resolves names itself: the task cannot resolve anything
(no DNS server reachable), so a DNS tunnel has nowhere to go.

What it can and cannot check: for plain HTTP it sees the method and host of every request; for
HTTPS it sees only the CONNECT (host and port) — what travels inside the TLS tunnel, including
the method, is invisible without intercepting TLS. So `allowed_methods` binds plain HTTP, and a
tunnel is admitted to an allowed host:port whatever method runs inside it.

Log lines (stdout, one JSON object each): {"event": "ready"} once listening, then per request
{"event": "request", "host", "port", "method", "allowed", "rule", "reason"}. `rule` is the
allowlist entry that admitted the request, or for a refused one the entry that would admit it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PROXY_PORT = 3128
DEFAULT_PORTS = (80, 443)
"""Ports an allowlist entry without `:port` admits."""
DEFAULT_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 15.0
MAX_CLIENTS = 256
MAX_HOST_CHARS = 253


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the proxy decided for one request."""

    allowed: bool
    rule: str
    """The entry that admitted it, or (refused) the entry that would admit it ("" for a bad request)."""
    reason: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Allowed domains (`name`, `*.suffix`, IP literals, each optionally `:port`) and methods."""

    domains: tuple[str, ...] = ()
    methods: tuple[str, ...] = DEFAULT_METHODS
    entries: tuple[tuple[str, int | None], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(split_entry(entry) for entry in self.domains))

    def decide(self, host: str, port: int, method: str) -> Verdict:
        """May `method` go to host:port? Tunnels (CONNECT) are checked on host and port only."""
        host = normalize_host(host)
        method = method.upper()
        if not host or not 0 < port < 65536:
            return Verdict(False, "", "not a valid host and port")
        matched = [pattern for pattern, ports in self.entries if host_matches(pattern, host)]
        for pattern, entry_port in self.entries:
            if host_matches(pattern, host) and port in ((entry_port,) if entry_port else DEFAULT_PORTS):
                rule = pattern if entry_port is None else f"{pattern}:{entry_port}"
                if method != "CONNECT" and method not in self.methods:
                    allowed = ", ".join(self.methods) or "none"
                    return Verdict(
                        False, rule, f"method {method} is not allowed (allowed_methods: {allowed})"
                    )
                return Verdict(True, rule, "allowed")
        wanted = host if port in DEFAULT_PORTS else f"{_bracket(host)}:{port}"
        if matched:
            return Verdict(False, wanted, f'port {port} is not allowed for {host}: add "{wanted}"')
        return Verdict(False, wanted, f'{host} is not in allowed_domains: add "{wanted}"')


def normalize_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets; "" when it is not a plausible host name."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or len(host) > MAX_HOST_CHARS:
        return ""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    labels = host.split(".")
    if all(label and len(label) < 64 and all(c.isalnum() or c in "-_" for c in label) for label in labels):
        return host
    return ""


def split_entry(entry: str) -> tuple[str, int | None]:
    """`pypi.org` → ("pypi.org", None); `10.0.0.1:8080` → ("10.0.0.1", 8080); `[::1]:80` too."""
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return normalize_host(host), int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return (host if host.startswith("*.") else normalize_host(host)), int(port)
    return (text if text.startswith("*.") else normalize_host(text)), None


def host_matches(pattern: str, host: str) -> bool:
    """`*.example.org` matches sub-domains (not example.org itself); anything else matches exactly."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- the proxy server --------------------------------------------------------------------------


def _log(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def _log_request(host: str, port: int, method: str, verdict: Verdict) -> None:
    _log(
        {
            "event": "request",
            "host": host,
            "port": port,
            "method": method[:16],
            "allowed": verdict.allowed,
            "rule": verdict.rule,
            "reason": verdict.reason,
        }
    )


def _response(status: str, body: str) -> bytes:
    data = body.encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + data


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))


def _target(method: str, target: str) -> tuple[str, int, str] | str:
    """(host, port, origin-form path) of the request, or an error text."""
    if method == "CONNECT":
        parsed = urlsplit(f"//{target}")
        try:
            port = parsed.port
        except ValueError:
            return "bad port in CONNECT target"
        if parsed.hostname is None or port is None:
            return "CONNECT needs host:port"
        return parsed.hostname, port, ""
    parsed = urlsplit(target)
    if parsed.scheme != "http" or not parsed.hostname:
        return "only absolute http:// URLs (or CONNECT for https) go through this proxy"
    try:
        port = parsed.port or 80
    except ValueError:
        return "bad port in URL"
    path = parsed.path or "/"
    return parsed.hostname, port, path + (f"?{parsed.query}" if parsed.query else "")


def _forward_head(method: str, path: str, version: str, header_lines: list[str]) -> bytes:
    """The request as the origin server sees it: origin-form, no proxy headers, one request only."""
    kept = [
        line
        for line in header_lines
        if line.split(":", 1)[0].strip().lower()
        not in ("proxy-connection", "proxy-authorization", "connection")
    ]
    lines = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


class EgressProxy:
    """The asyncio server: one verdict per request, logged before anything is forwarded."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._slots = asyncio.Semaphore(MAX_CLIENTS)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection (one request, or one tunnel)."""
        async with self._slots:
            try:
                await self._serve(reader, writer)
            except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            except TimeoutError:
                with contextlib.suppress(OSError):
                    writer.write(_response("408 Request Timeout", "no request received in time\n"))
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            writer.write(_response("400 Bad Request", "not an HTTP request\n"))
            return
        method, target, version = parts[0].upper(), parts[1], parts[2]
        where = _target(method, target)
        if isinstance(where, str):
            _log_request("", 0, method, Verdict(False, "", where))
            writer.write(_response("400 Bad Request", where + "\n"))
            return
        host, port, path = where
        verdict = self.policy.decide(host, port, method)
        _log_request(normalize_host(host) or host[:MAX_HOST_CHARS], port, method, verdict)
        if not verdict.allowed:
            body = f"codex-tui egress proxy: {method} {host}:{port} refused: {verdict.reason}\n"
            if verdict.rule:
                body += f"allowlist entry that would admit it: {verdict.rule}\n"
            writer.write(_response("403 Forbidden", body))
            return
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            writer.write(_response("502 Bad Gateway", f"cannot reach {host}:{port}: {exc}\n"))
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream[1].write(_forward_head(method, path, version, [ln for ln in lines[1:] if ln]))
            await writer.drain()
            await _splice((reader, writer), upstream)
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                upstream[1].close()


async def serve(policy: Policy, host: str = "0.0.0.0", port: int = PROXY_PORT) -> None:
    """Listen until killed; prints the ready line once the socket is bound."""
    proxy = EgressProxy(policy)
    server = await asyncio.start_server(proxy.handle, host, port, limit=MAX_HEAD_BYTES)
    _log({"event": "ready", "port": port})
    async with server:
        await server.serve_forever()


def policy_from_json(text: str) -> Policy:
    """The policy the host passed in $EGRESS_POLICY: {"domains": [...], "methods": [...]}."""
    data = json.loads(text)
    return Policy(
        tuple(data.get("domains", ())), tuple(m.upper() for m in data.get("methods", DEFAULT_METHODS))
    )


def main() -> None:
    """Entry point inside the proxy container."""
    policy = policy_from_json(os.environ.get("EGRESS_POLICY", "{}"))
    asyncio.run(serve(policy))


if __name__ == "__main__":
    main()
