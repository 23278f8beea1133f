"""`codex-tui serve`: the TUI in a browser, through textual-serve, guarded by a token off localhost.

Each browser tab gets its own `codex-tui` process (textual-serve's web driver speaks to the page
over a websocket). Whoever can open that websocket drives the user's agents, so:

- bound to a loopback address, requests must name a loopback host (`Host`, against DNS rebinding);
- bound to any other address, every path starts with a random token (`/<token>/…`; the page's own
  static and websocket URLs carry it too), compared in constant time: anything else gets 403;
- a request whose `Origin` is not the server itself gets 403 (no other site's page may drive it).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import hmac
import ipaddress
import logging
import re
import secrets
import shlex
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from codex_tui.boundary.terminal import strip_controls

log = logging.getLogger("codex_tui.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
STOP_GRACE_SECONDS = 10.0
"""How long a browser session's app has to quit (stopping its tasks) before it is terminated."""

CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
"""The page loads nothing from elsewhere (textual-serve's page links a web font: not fetched) and
may not be framed by another site."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServeError(Exception):
    """The server cannot start (the port is taken, the host cannot be bound)."""


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP addresses (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token for the URL (about 190 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def app_command(tui_argv: Sequence[str]) -> str:
    """The shell command textual-serve runs per browser session: this Python's `codex-tui` TUI."""
    return "exec " + shlex.join([sys.executable, "-m", "codex_tui", *tui_argv])


def public_url(host: str, port: int, token: str | None) -> str:
    """The URL to open: the token as the first path segment when there is one."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "[::]", "") else host
    shown = shown.strip("[]")
    if ":" in shown:
        shown = f"[{shown}]"
    path = f"/{token}/" if token else "/"
    return f"http://{shown}:{port}{path}"


_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
"""A Host header as a browser sends it: a name, an IPv4 or a bracketed IPv6 address, maybe a port."""


def _netloc_host(netloc: str) -> str | None:
    """The host named by a Host header, None unless the header is plainly `host[:port]` (a header
    like `attacker.example@localhost` or `localhost/@attacker.example` names no host)."""
    match = _HOST_HEADER.fullmatch(netloc)
    return match.group(1) if match else None


def cleaned_stream(source: asyncio.StreamReader) -> asyncio.StreamReader:
    """A reader of `source` with terminal control sequences removed: what an app writes on stderr
    may quote a task (a traceback over a model's or a sandbox's text) and reaches the terminal."""
    cleaned = asyncio.StreamReader()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character cut between reads

    async def pump() -> None:
        try:
            while chunk := await source.read(4096):
                cleaned.feed_data(strip_controls(decoder.decode(chunk)).encode("utf-8"))
            cleaned.feed_data(strip_controls(decoder.decode(b"", final=True)).encode("utf-8"))
        finally:
            cleaned.feed_eof()

    _pumps.add(task := asyncio.get_running_loop().create_task(pump()))
    task.add_done_callback(_pumps.discard)
    return cleaned


_pumps: set[asyncio.Task[None]] = set()


class SessionService(AppService):
    """textual-serve's app service, its process in a session of its own (a Ctrl+C in the server's
    terminal reaches the server only, which then asks each app to quit and stop its tasks)."""

    process: asyncio.subprocess.Process | None = None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        environment = self._build_environment(width=width, height=height)
        self.process = self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None and process.stderr is not None
        self._stdin = process.stdin
        process.stderr = cleaned_stream(process.stderr)  # textual-serve prints it when a start fails
        return process

    async def shutdown(self, grace: float) -> None:
        """Ask the app to quit; terminate it (SIGTERM: it still stops its tasks) if it does not."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.stop(), grace)
        process = self.process
        if process is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), grace)
                return


def _closer(websocket: web.WebSocketResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        await websocket.close()

    return close


class CodexServer(Server):
    """textual-serve's server with codex-tui's guard: token, host and origin checks (module note)."""

    def __init__(
        self, command: str, *, host: str, port: int, token: str | None, title: str = "codex-tui"
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        self.prefix = f"/{token}" if token else ""
        self.sessions: set[SessionService] = set()
        self._websockets: set[web.WebSocketResponse] = set()

    # --- the guard ----------------------------------------------------------------------------

    def refusal(self, request: web.Request) -> str | None:
        """Why this request is refused (None when it may pass)."""
        if self.token is not None:
            segment = request.path.split("/", 2)[1] if request.path.startswith("/") else ""
            if not hmac.compare_digest(segment.encode(), self.token.encode()):
                return "this server needs the token of its URL"
        elif not is_loopback(_netloc_host(request.host) or ""):
            return "this server answers to localhost only"
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return "requests from other sites are refused"
        return None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """403 for a request without the right token, host or origin; nothing leaves the page."""
        reason = self.refusal(request)
        if reason is not None:
            raise web.HTTPForbidden(text=f"403 Forbidden: {reason}\n")
        if self.prefix and request.path == self.prefix:
            raise web.HTTPFound(f"{self.prefix}/")
        response = await handler(request)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = CONTENT_POLICY
        return response

    # --- the application ----------------------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        prefix = self.prefix
        app.add_routes(
            [
                web.get(f"{prefix}/", self.handle_index, name="index"),
                web.get(f"{prefix}/ws", self.handle_websocket, name="websocket"),
                web.get(f"{prefix}/download/{{key}}", self.handle_download, name="download"),
                web.static(f"{prefix}/static", self.statics_path, name="static"),
            ]
        )
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def make_app(self) -> web.Application:
        """The aiohttp application: routes under the token prefix, behind the guard."""
        return await self._make_app()

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:  # type: ignore[override]
        """The page: static and websocket URLs on the host the browser used, under the prefix."""
        scheme = "wss" if request.secure else "ws"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}://{request.host}{self.prefix}/ws",
            "config": {"static": {"url": f"{self.prefix}/static/"}},
            "application": {"name": self.title},
        }

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser tab: start its app process, relay until either side closes, then stop it."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        service = SessionService(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=_closer(websocket),
            download_manager=self.download_manager,
        )
        self.sessions.add(service)
        self._websockets.add(websocket)
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a broken message from the page ends that session only
            log.warning("browser session ended: %s", error)
        finally:
            self._websockets.discard(websocket)
            await service.shutdown(STOP_GRACE_SECONDS)
            self.sessions.discard(service)
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def on_shutdown(self, app: web.Application) -> None:
        """Stop every session's app (each stops its tasks), then close the pages' websockets."""
        await self.close_sessions()

    async def close_sessions(self) -> None:
        """Ask every running app to quit (terminating the ones that do not) and close the websockets."""
        await asyncio.gather(*(s.shutdown(STOP_GRACE_SECONDS) for s in list(self.sessions)))
        for websocket in list(self._websockets):
            with contextlib.suppress(Exception):
                await websocket.close()


@dataclass(frozen=True)
class Listening:
    """Where the server listens once it is bound."""

    host: str
    port: int
    url: str


async def serve(
    server: CodexServer,
    on_ready: Callable[[Listening], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Bind, call `on_ready`, serve until SIGINT/SIGTERM (or `stop` is set), then stop every session."""
    runner = web.AppRunner(
        await server.make_app(), access_log=None, handle_signals=False, shutdown_timeout=5.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, server.host, server.port)
        try:
            await site.start()
        except OSError as exc:
            raise ServeError(bind_error(server.host, server.port, exc)) from None
        port = runner.addresses[0][1] if runner.addresses else server.port
        on_ready(Listening(server.host, port, public_url(server.host, port, server.token)))
        await _wait_for_stop(stop or asyncio.Event())
        await server.close_sessions()
    finally:
        await runner.cleanup()


async def _wait_for_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def bind_error(host: str, port: int, exc: OSError) -> str:
    """A one-line reason the server could not listen on host:port."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: unknown host {host!r}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is already in use (pick another with --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: this machine has no such address (see --host)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot listen on {where}: permission denied (ports below 1024 need root)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


class PlainLineFormatter(logging.Formatter):
    """One line per record, without control sequences: records quote what anyone who reaches the
    port sent (aiohttp logs a malformed request with its traceback), and that text reaches a terminal."""

    def formatException(self, ei: Any) -> str:
        """The exception's last line, not its traceback."""
        return "".join(traceback.format_exception_only(ei[1])).strip() if ei[1] is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of plain text."""
        return " ".join(strip_controls(super().format(record)).split())


def quiet_logging() -> None:
    """Warnings of textual-serve and aiohttp on stderr as plain lines (no banner, no access log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PlainLineFormatter("codex-tui serve: %(message)s"))
    for name in ("textual-serve", "aiohttp", "asyncio", "codex_tui.serve"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
