"""`codex-tui serve` against an outsider: raw request lines and headers a client library would tidy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestServer

from codex_tui.serve import CodexServer, cleaned_stream, quiet_logging
from tests.test_serve import TOKEN, fake_server

WITHOUT_TOKEN = [
    "/",
    "//",
    f"//{TOKEN}/",
    f"/x/../{TOKEN}/",
    f"/%2e%2e/{TOKEN}/",
    f"/{TOKEN}/static/../../ws",
    "/static/js/textual.js",
    "/ws",
    "/download/x",
    f"/{TOKEN[:-1]}/",
    f"/{TOKEN}x/",
    f"/{TOKEN.upper()}/",
    "/%ed%a0%80/",
    "/%ff/",
    f"/{TOKEN}%00/",
    f"http://127.0.0.1/x/{TOKEN}/",
]
"""Paths that name no token, a wrong one, or the token somewhere else than the first segment."""


@contextlib.asynccontextmanager
async def listening(server: CodexServer) -> AsyncIterator[int]:
    """The server's application on 127.0.0.1, its port."""
    test_server = TestServer(await server.make_app(), host="127.0.0.1")
    await test_server.start_server()
    try:
        yield int(test_server.port or 0)
    finally:
        await test_server.close()


async def status_of(port: int, request: str) -> int:
    """The status code the server answers a raw HTTP/1.1 request with (0: no answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode("latin-1"))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 else 0


def request(method: str, path: str, host: str, *extra: str) -> str:
    """A raw request, exactly as written (no normalisation of the path)."""
    headers = "".join(f"{header}\r\n" for header in extra)
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"


WEBSOCKET = (
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST"])
async def test_no_path_trick_or_method_reaches_a_token_server_without_its_token(method: str) -> None:
    async with listening(fake_server(TOKEN)) as port:
        for path in WITHOUT_TOKEN:
            status = await status_of(port, request(method, path, f"127.0.0.1:{port}"))
            assert status in (400, 403, 404), (method, path, status)  # 404: no handler reached
        assert await status_of(port, request(method, "*", f"127.0.0.1:{port}")) in (400, 403)


async def test_a_websocket_upgrade_without_the_token_is_refused_on_every_path() -> None:
    async with listening(fake_server(TOKEN)) as port:
        for path in ("/ws", "//ws", f"/x/../{TOKEN}/../ws", f"/{TOKEN}x/ws", f"/%2f{TOKEN}/ws"):
            status = await status_of(port, request("GET", path, f"127.0.0.1:{port}", *WEBSOCKET))
            assert status in (400, 403), (path, status)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example",
        "attacker.example\\@localhost",
        "attacker.example@localhost",
        "localhost/@attacker.example",
        "0.0.0.0",
        "[::ffff:7f00:1]x",
        '127.0.0.1:8000"><script>alert(1)</script>',
        "",
    ],
)
async def test_a_localhost_server_refuses_every_host_that_is_not_plainly_loopback(host: str) -> None:
    """DNS rebinding, and Host headers that only embed a loopback name."""
    async with listening(fake_server(None)) as port:
        assert await status_of(port, request("GET", "/", host)) in (400, 403), host
        assert await status_of(port, request("GET", "/ws", host, *WEBSOCKET)) in (400, 403), host


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]", "app.localhost"]
)
async def test_a_localhost_server_answers_loopback_names_with_or_without_the_port(host: str) -> None:
    async with listening(fake_server(None)) as port:
        assert await status_of(port, request("GET", "/", host)) == 200
        assert await status_of(port, request("GET", "/", f"{host}:{port}")) == 200


@pytest.mark.parametrize(
    "origin", ["http://attacker.example", "null", "http://localhost:1", "file://", "http://127.0.0.1"]
)
async def test_websockets_opened_by_any_other_origin_are_refused_even_with_the_token(origin: str) -> None:
    """Cross-site websocket hijacking: a page elsewhere (another port is another origin) drives nothing."""
    for token in (TOKEN, None):
        async with listening(fake_server(token)) as port:
            path = f"/{token}/ws" if token else "/ws"
            headers = (*WEBSOCKET, f"Origin: {origin}")
            assert await status_of(port, request("GET", path, f"127.0.0.1:{port}", *headers)) == 403


async def test_the_page_and_its_assets_send_no_referrer_and_load_nothing_from_elsewhere() -> None:
    async with listening(fake_server(TOKEN)) as port:
        for path in (f"/{TOKEN}/", f"/{TOKEN}/static/js/textual.js"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request("GET", path, f"127.0.0.1:{port}").encode())
            head = (await asyncio.wait_for(reader.read(), 10)).split(b"\r\n\r\n")[0].decode()
            writer.close()
            assert "Referrer-Policy: no-referrer" in head, path
            assert "Content-Security-Policy: default-src 'self';" in head, path


async def test_escape_sequences_and_characters_cut_between_reads_reach_the_terminal_clean() -> None:
    source = asyncio.StreamReader()
    # 4096-byte reads: an escape sequence and a two-byte character each straddle a boundary.
    source.feed_data(b"a" * 4094 + b"\x1b]0;owned\x07 " + b"b" * 4086 + "é".encode() + b" end\n")
    source.feed_eof()
    text = (await cleaned_stream(source).read()).decode()
    assert "\x1b" not in text and "\x07" not in text
    assert "\ufffd" not in text, "a character cut between two reads is decoded whole"
    assert text.endswith("bé end\n")


@pytest.fixture
def served_logging() -> Iterator[None]:
    """The loggers quiet_logging() sets up, restored after the test (which calls it)."""
    names = ("textual-serve", "aiohttp", "asyncio", "codex_tui.serve")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level) for name in names}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = True


async def test_malformed_requests_from_the_network_print_one_plain_line_each(
    served_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet_logging()  # on the captured stderr
    async with listening(fake_server(TOKEN)) as port:
        for raw in (
            b"GET /\x1b]0;owned\x07 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            assert b" 400 " in await asyncio.wait_for(reader.readline(), 10)
            writer.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("codex-tui serve: Error handling request") for line in lines)
    assert "Traceback" not in "".join(lines)


def test_a_log_record_quoting_escape_sequences_prints_without_them(
    served_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet_logging()  # on the captured stderr
    logging.getLogger("codex_tui.serve").warning(
        "browser session ended: %s", "bad \x1b]52;c;aGk=\x07\x9b2J\nx"
    )
    assert capsys.readouterr().err == "codex-tui serve: browser session ended: bad x\n"
