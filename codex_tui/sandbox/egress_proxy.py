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

What it enforces on the way: a name is resolved once and the connection goes to the address that
was checked (no second lookup a rebinding DNS could answer differently); an address that is not
public (loopback, private, link-local such as 169.254.169.254, the Docker bridge…) is refused
unless the allowlist names that address itself. A plain HTTP request is parsed strictly (no bare
CR/LF or controls, no folded or malformed header lines, one Content-Length or `chunked`, never
both), its Host header is replaced by the checked target, and exactly one request with exactly
its own body reaches the origin: bytes the client sends after it are never forwarded, so a
pipelined or smuggled second request cannot reach another virtual host or skip `allowed_methods`.

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
import re
import socket
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
MAX_METHOD_CHARS = 16
MAX_TRAILER_LINES = 64
VERSIONS = ("HTTP/1.0", "HTTP/1.1")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"[\x21-\x7e]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")  # no C1: \x85 is a line break to some parsers
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "trailer", "upgrade"}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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

    def admits_address(self, address: str, port: int) -> bool:
        """May a connection go to this resolved address? Public ones yes; any other (loopback,
        private, link-local, the Docker bridge…) only when an entry names the address itself."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if is_public_address(ip):
            return True
        text = normalize_host(address)
        return any(
            pattern == text and port in ((entry_port,) if entry_port else DEFAULT_PORTS)
            for pattern, entry_port in self.entries
        )

    def address_refusal(self, host: str, address: str, port: int) -> Verdict:
        """The verdict for an allowed name that resolved only to addresses it may not reach."""
        text = normalize_host(address) or address[:64]
        wanted = text if port in DEFAULT_PORTS else f"{_bracket(text)}:{port}"
        return Verdict(
            False,
            wanted,
            f"{host} resolves to {text}, which is not a public address (loopback, private, "
            f'link-local or reserved): add "{wanted}" to allow that address',
        )


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally reachable unicast address; IPv4 inside IPv6 (mapped, NAT64, 6to4) is judged as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or _nat64_embedded(ip) or ip
    return ip.is_global and not ip.is_multicast


def _nat64_embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None


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


class BadRequest(Exception):
    """The client's request cannot be forwarded safely; the message says why (400)."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request head: request line and header fields, in order."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name]


def parse_head(head: bytes) -> RequestHead:
    """Parse a request head strictly (RFC 9112): anything a lenient origin could read differently
    from this proxy — bare CR or LF, control characters, folded or malformed fields — is refused."""
    text = head.decode("latin-1")
    if text.endswith("\r\n\r\n"):
        text = text[:-4]
    lines = text.split("\r\n")
    if any("\r" in line or "\n" in line or "\0" in line for line in lines):
        raise BadRequest("bare CR, LF or NUL in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in VERSIONS:
        raise BadRequest("not an HTTP/1.x request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or len(method) > MAX_METHOD_CHARS:
        raise BadRequest("bad method")
    if not _TARGET.fullmatch(target):
        raise BadRequest("bad request target")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise BadRequest("folded header lines are not accepted")
        name, colon, value = line.partition(":")
        value = value.strip(" \t")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise BadRequest(f"malformed header line {line[:40]!r}")
        headers.append((name, value))
    return RequestHead(method.upper(), target, version, tuple(headers))


def body_framing(head: RequestHead) -> int | None:
    """The body's length (0 when there is none), or None for `chunked`; conflicts are refused."""
    encodings = head.values("transfer-encoding")
    lengths = head.values("content-length")
    if encodings and lengths:
        raise BadRequest("both Transfer-Encoding and Content-Length (a request smuggling attempt)")
    if encodings:
        if len(encodings) != 1 or encodings[0].lower() != "chunked":
            raise BadRequest("only Transfer-Encoding: chunked is accepted")
        return None
    if not lengths:
        return 0
    if len(lengths) != 1 or not _DIGITS.fullmatch(lengths[0]):
        raise BadRequest("bad or repeated Content-Length")
    return int(lengths[0])


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


def forward_head(head: RequestHead, host: str, port: int, path: str, length: int | None) -> bytes:
    """The request as the origin sees it: origin-form, Host set to the checked target (never the
    client's), hop-by-hop and proxy headers dropped, the body's framing restated, one request only."""
    named = {token.strip().lower() for value in head.values("connection") for token in value.split(",")}
    dropped = _HOP_BY_HOP | named | {"host", "content-length", "transfer-encoding"}
    authority = _bracket(host) + ("" if port == 80 else f":{port}")
    lines = [f"{head.method} {path} {head.version}", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in head.headers if name.lower() not in dropped]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    elif head.values("content-length"):
        lines.append(f"Content-Length: {length}")
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _log(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def _log_request(host: str, port: int, method: str, verdict: Verdict) -> None:
    _log(
        {
            "event": "request",
            "host": host,
            "port": port,
            "method": method[:MAX_METHOD_CHARS],
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


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    while size:
        chunk = await reader.read(min(65536, size))
        if not chunk:
            raise BadRequest("the client closed the connection inside the request body")
        writer.write(chunk)
        await writer.drain()
        size -= len(chunk)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward a chunked body re-framed by this proxy (extensions and trailers dropped)."""
    while True:
        size_text = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BadRequest("bad chunk size")
        size = int(size_text, 16)
        writer.write(b"%x\r\n" % size)
        if size == 0:
            break
        await _copy_exactly(reader, writer, size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest("chunk data longer than its size")
        writer.write(b"\r\n")
    for _ in range(MAX_TRAILER_LINES):
        if await reader.readuntil(b"\r\n") == b"\r\n":
            writer.write(b"\r\n")
            await writer.drain()
            return
    raise BadRequest("too many trailer lines")


async def _send_body(
    reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, length: int | None
) -> None:
    """The one request's body, then nothing more from the client (what follows is read and dropped,
    so closing cannot reset the answer away); a bad body cuts the upstream connection."""
    try:
        if length is None:
            await _copy_chunked(reader, upstream)
        else:
            await _copy_exactly(reader, upstream, length)
    except (BadRequest, ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        with contextlib.suppress(OSError, RuntimeError):
            upstream.transport.abort()
        return
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass


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
            except TimeoutError:  # before OSError, its base class
                with contextlib.suppress(OSError):
                    writer.write(_response("408 Request Timeout", "no request received in time\n"))
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                pass
            except asyncio.LimitOverrunError:
                with contextlib.suppress(OSError):
                    writer.write(_response("431 Request Header Fields Too Large", "request head too large\n"))
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, looked up once (the connection goes to one of these)."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        try:
            head = parse_head(raw)
            length = body_framing(head) if head.method != "CONNECT" else 0
        except BadRequest as exc:
            token = _TOKEN.match(raw.decode("latin-1"))
            _log_request("", 0, token.group() if token else "", Verdict(False, "", str(exc)))
            writer.write(_response("400 Bad Request", f"{exc}\n"))
            return
        method = head.method
        where = _target(method, head.target)
        if isinstance(where, str):
            _log_request("", 0, method, Verdict(False, "", where))
            writer.write(_response("400 Bad Request", where + "\n"))
            return
        host, port, path = where
        host = normalize_host(host) or host[:MAX_HOST_CHARS]
        verdict = self.policy.decide(host, port, method)
        addresses: list[str] = []
        if verdict.allowed:
            try:
                found = await asyncio.wait_for(self.resolve(host, port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                _log_request(host, port, method, verdict)
                writer.write(_response("502 Bad Gateway", f"cannot resolve {host}: {exc}\n"))
                return
            addresses = [address for address in found if self.policy.admits_address(address, port)]
            if found and not addresses:
                verdict = self.policy.address_refusal(host, found[0], port)
        _log_request(host, port, method, verdict)
        if not verdict.allowed:
            body = f"codex-tui egress proxy: {method} {host}:{port} refused: {verdict.reason}\n"
            if verdict.rule:
                body += f"allowlist entry that would admit it: {verdict.rule}\n"
            writer.write(_response("403 Forbidden", body))
            return
        upstream = await self._connect(addresses, port, writer, host)
        if upstream is None:
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _splice((reader, writer), upstream)
            else:
                upstream[1].write(forward_head(head, host, port, path, length))
                sending = asyncio.ensure_future(_send_body(reader, upstream[1], length))
                try:
                    await _pipe(upstream[0], writer)
                finally:
                    sending.cancel()
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                upstream[1].close()

    async def _connect(
        self, addresses: list[str], port: int, writer: asyncio.StreamWriter, host: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the first checked address that answers, or None after a 502."""
        error: BaseException | None = None
        for address in addresses:
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                error = exc
        writer.write(_response("502 Bad Gateway", f"cannot reach {host}:{port}: {error or 'no address'}\n"))
        return None


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
