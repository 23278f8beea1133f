"""`codex-tui serve`: the token, host and origin guard, bind errors, and the demo in headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient, TestServer

from codex_tui.cli import main
from codex_tui.serve import CodexServer, Listening, app_command, is_loopback, public_url, serve

if TYPE_CHECKING:
    from playwright.sync_api import Route

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cr3t-token"

# A stand-in for the TUI: the web driver's prelude, one data packet, then it waits for stdin to close.
FAKE_APP = (
    "import sys; out = sys.stdout.buffer; out.write(b'__GANGLION__\\n'); "
    "out.write(b'D' + (5).to_bytes(4, 'big') + b'hello'); out.flush(); sys.stdin.buffer.read()"
)


def fake_server(token: str | None) -> CodexServer:
    """A guarded server whose browser sessions run FAKE_APP instead of the TUI."""
    command = f'exec {sys.executable} -c "{FAKE_APP}"'
    return CodexServer(command, host="127.0.0.1", port=0, token=token)


@contextlib.asynccontextmanager
async def client_for(
    server: CodexServer,
) -> AsyncIterator[TestClient[aiohttp.web.Request, aiohttp.web.Application]]:
    """A test client on the server's aiohttp application (bound to 127.0.0.1)."""
    client = TestClient(TestServer(await server.make_app(), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def ws_status(
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application], path: str, **kw: object
) -> int:
    """The status of a websocket handshake on `path` (101 when it was accepted)."""
    try:
        async with client.ws_connect(path, **kw) as ws:  # type: ignore[arg-type]
            await ws.close()
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


# --- the guard ---------------------------------------------------------------------------------


async def test_token_server_refuses_http_requests_without_the_right_token() -> None:
    async with client_for(fake_server(TOKEN)) as client:
        for path in ("/", "/ws", "/static/js/textual.js", "/wrong-token/", f"/{TOKEN}x/", f"/x{TOKEN}/"):
            response = await client.get(path)
            assert response.status == 403, path
            assert "token" in await response.text()
        page = await client.get(f"/{TOKEN}/")
        assert page.status == 200
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self';")
        assert (await client.get(f"/{TOKEN}/static/js/textual.js")).status == 200


async def test_token_server_page_opens_its_websocket_and_assets_under_the_token() -> None:
    async with client_for(fake_server(TOKEN)) as client:
        html = await (await client.get(f"/{TOKEN}/")).text()
        port = client.port
    assert f'data-session-websocket-url="ws://127.0.0.1:{port}/{TOKEN}/ws"' in html
    assert f'src="/{TOKEN}/static/js/textual.js"' in html


async def test_token_server_refuses_websockets_without_the_right_token() -> None:
    async with client_for(fake_server(TOKEN)) as client:
        assert await ws_status(client, "/ws") == 403
        assert await ws_status(client, "/other/ws") == 403
        assert await ws_status(client, f"/{TOKEN}/ws?width=80&height=24") == 101


async def test_websocket_with_the_token_relays_the_app_output() -> None:
    async with client_for(fake_server(TOKEN)) as client, client.ws_connect(f"/{TOKEN}/ws") as ws:
        message = await ws.receive(timeout=30)
        assert message.type == aiohttp.WSMsgType.BINARY
        assert message.data == b"hello"


async def test_localhost_server_needs_no_token() -> None:
    async with client_for(fake_server(None)) as client:
        assert (await client.get("/")).status == 200
        assert (await client.get("/static/js/textual.js")).status == 200
        assert await ws_status(client, "/ws") == 101


async def test_localhost_server_refuses_other_host_names() -> None:
    """A page of another site whose name now points at 127.0.0.1 (DNS rebinding) gets nothing."""
    async with client_for(fake_server(None)) as client:
        response = await client.get("/", headers={"Host": f"attacker.example:{client.port}"})
        assert response.status == 403
        assert "localhost only" in await response.text()
        assert (await client.get("/", headers={"Host": f"localhost:{client.port}"})).status == 200


async def test_websocket_opened_by_another_site_is_refused() -> None:
    async with client_for(fake_server(None)) as client:
        evil = {"Origin": "http://attacker.example"}
        assert await ws_status(client, "/ws", headers=evil) == 403
        same = {"Origin": f"http://127.0.0.1:{client.port}"}
        assert await ws_status(client, "/ws", headers=same) == 101


# --- addresses, URLs and the command -----------------------------------------------------------


def test_only_loopback_addresses_count_as_local() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com", ""))


def test_public_url_carries_the_token_as_first_path_segment() -> None:
    assert public_url("127.0.0.1", 8000, None) == "http://127.0.0.1:8000/"
    assert public_url("10.1.2.3", 8080, "abc") == "http://10.1.2.3:8080/abc/"
    assert public_url("::1", 8000, None) == "http://[::1]:8000/"
    assert public_url("0.0.0.0", 9000, "t") == f"http://{socket.gethostname()}:9000/t/"


def test_served_command_is_this_pythons_codex_tui_with_the_given_flags() -> None:
    command = app_command(["--demo", "-C", "my repo"])
    assert command == f"exec {sys.executable} -m codex_tui --demo -C 'my repo'"


async def test_serve_reports_the_bound_port_and_stops_when_asked() -> None:
    seen: list[Listening] = []
    stop = asyncio.Event()
    server = fake_server(TOKEN)

    def ready(where: Listening) -> None:
        seen.append(where)

    task = asyncio.create_task(serve(server, ready, stop))
    while not seen and not task.done():
        await asyncio.sleep(0.05)
    assert seen and seen[0].port != 0
    assert seen[0].url == f"http://127.0.0.1:{seen[0].port}/{TOKEN}/"
    async with aiohttp.ClientSession() as session, session.get(seen[0].url) as response:
        assert response.status == 200
    stop.set()
    await asyncio.wait_for(task, 30)


# --- the command line --------------------------------------------------------------------------


def test_taken_port_gives_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--demo", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1
    reason = "the port is already in use (pick another with --port)"
    assert err == f"codex-tui: cannot listen on 127.0.0.1:{port}: {reason}\n"


def test_address_of_another_machine_gives_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--demo", "--host", "192.0.2.1", "--port", "0"])  # TEST-NET-1: never local
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("codex-tui: cannot listen on 192.0.2.1:0: this machine has no such address")
    assert "Traceback" not in err


def test_bad_port_and_unknown_tui_option_are_refused_before_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["serve", "--port", "70000"], ["serve", "--demo", "--no-such-flag"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "a port is from 0 to 65535" in err
    assert "unrecognized arguments: --no-such-flag" in err


def test_missing_repository_is_refused_before_serving(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["serve", "-C", str(tmp_path / "nowhere"), "--port", "0"])
    assert code == 1
    assert "folder not found" in capsys.readouterr().err


# --- end to end: the demo in headless Chromium -------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


def keep_local(route: Route, outside: list[str]) -> None:
    """Let a request to this machine through; refuse (and record) one to anywhere else."""
    if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        outside.append(route.request.url)
        route.abort()


class ServedDemo:
    """`codex-tui serve --demo` as a real process; its output goes to a file."""

    def __init__(self, home: Path, log: Path, *extra: str) -> None:
        self.log = log
        argv = [sys.executable, "-m", "codex_tui", "serve", "--demo", "--sandbox-backend", "local"]
        self.process = subprocess.Popen(
            [*argv, "--port", "0", *extra],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "CODEX_TUI_HOME": str(home)},
            start_new_session=True,
        )

    def url(self, timeout: float = 60) -> str:
        """The URL the server printed once it listens."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"serving the TUI on (http://\S+)", self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            time.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> list[int]:
        """SIGTERM the server (it asks each session's app to quit), then SIGKILL by pid whatever of
        its process tree is left; returns those pids (none when the stop was clean)."""
        if self.process.poll() is not None:
            return []
        tree: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            tree = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        _gone, alive = psutil.wait_procs(tree, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        return [child.pid for child in alive]


@pytest.fixture
def served_demo(tmp_path: Path) -> Iterator[ServedDemo]:
    """The demo served on a free port, stopped (by pid) after the test."""
    home = tmp_path / "home"
    home.mkdir()
    demo = ServedDemo(home, tmp_path / "serve.log")
    try:
        yield demo
    finally:
        demo.stop()


@pytest.mark.e2e
@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK), reason="needs Debian's chromium (apt-get install chromium)"
)
def test_demo_in_headless_chromium_shows_the_tasks_and_opens_help_on_f1(served_demo: ServedDemo) -> None:
    from playwright.sync_api import sync_playwright

    url = served_demo.url()
    received: list[bytes] = []

    def screen_text() -> str:
        return ANSI.sub("", b"".join(received).decode("utf-8", "replace"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            outside: list[str] = []
            page.route("**/*", lambda route: keep_local(route, outside))
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived", lambda data: received.append(data if isinstance(data, bytes) else b"")
                ),
            )
            page.goto(url)

            def wait_for(text: str, what: str, timeout: float = 90) -> None:
                deadline = time.monotonic() + timeout
                while text not in screen_text():
                    if time.monotonic() > deadline:
                        log = served_demo.log.read_text(errors="replace")
                        raise AssertionError(f"timed out waiting for {what}; server output:\n{log}")
                    page.wait_for_timeout(200)

            wait_for("Fix the failing tests", "the demo's task list")
            wait_for("Document slugify()", "the third demo task")
            assert "codex-tui help" not in screen_text()
            before = page.screenshot()
            page.focus(".xterm-helper-textarea")  # the keyboard goes to the terminal, as after a click
            page.keyboard.press("F1")
            wait_for("codex-tui help", "the help screen after F1")
            wait_for("task.new", "the key table of the help screen")
            assert page.screenshot() != before
            assert outside == [], "the page asked for something not on this machine"
        finally:
            browser.close()
    assert served_demo.stop() == [], "SIGTERM left processes of the served app running"
    assert served_demo.process.returncode == 0


async def test_an_apps_stderr_reaches_the_servers_terminal_without_escape_sequences() -> None:
    from codex_tui.serve import cleaned_stream

    source = asyncio.StreamReader()
    source.feed_data(b"Traceback: task \x1b]52;c;aGk=\x07title\x1b[2J\n")
    source.feed_data(b"\x1b[31mred\x1b[0m done\n")
    source.feed_eof()
    cleaned = cleaned_stream(source)
    text = (await cleaned.read()).decode()
    assert text == "Traceback: task title\nred done\n"


def test_token_flag_requires_the_token_on_localhost_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    demo = ServedDemo(home, tmp_path / "serve.log", "--token")
    try:
        url = demo.url()
        base, _, token = url.rstrip("/").rpartition("/")
        assert base.startswith("http://127.0.0.1:") and len(token) >= 24
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/", timeout=10)
        assert refused.value.code == 403
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
    finally:
        assert demo.stop() == []
