"""Reaching the Docker engine: one shared client per DOCKER_HOST, and clear messages when it is down."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import docker
import requests
from docker.errors import DockerException

from codex_tui.process import process_alive, process_start_ticks
from codex_tui.sandbox.base import SandboxError

ClientFactory = Callable[[], docker.DockerClient]
"""Returns a connected docker client or raises SandboxError (called in a worker thread)."""

T = TypeVar("T")
P = ParamSpec("P")

LABEL = "codex-tui"
LABEL_TASK = "codex-tui.task"
LABEL_OWNER_PID = "codex-tui.owner-pid"
LABEL_OWNER_START = "codex-tui.owner-start"
LABEL_OWNER_HOST = "codex-tui.owner-host"


def owner_labels() -> dict[str, str]:
    """Labels that tie a container to this process, so a later start-up can tell it is stale."""
    return {
        LABEL: "1",
        LABEL_OWNER_PID: str(os.getpid()),
        LABEL_OWNER_START: process_start_ticks(os.getpid()),
        LABEL_OWNER_HOST: socket.gethostname(),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """True when the process named by a container's owner labels still runs on this host."""
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    return process_alive(pid, labels.get(LABEL_OWNER_START, ""))


_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="codex-docker")
"""Docker SDK calls run here, not in the loop's default executor: with 2 cores that one has only
6 workers, and eight tasks starting at once would queue behind each other (and behind git)."""

_clients: dict[str, docker.DockerClient] = {}
_clients_lock = threading.Lock()


class EngineLost(SandboxError):
    """The engine stopped answering (socket gone, connection refused or cut, no reply in time)."""


ENGINE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
"""What the SDK raises when the engine is not there any more (these are not DockerExceptions)."""


async def in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking docker call in the docker worker pool (never on the event loop).

    An engine that stopped answering becomes :class:`EngineLost` with a message naming it.
    """
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_POOL, lambda: fn(*args, **kwargs))
    except ENGINE_ERRORS as exc:
        raise EngineLost(engine_lost_message(exc)) from None


def engine_location() -> str:
    """Where the engine is expected: DOCKER_HOST or the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_unreachable_message(reason: object) -> str:
    """One clear paragraph: what failed, what to start or install, and the local fallback."""
    detail = _short_reason(reason)
    return (
        f"Docker engine not reachable at {engine_location()} ({detail}). "
        "Start it (`sudo systemctl start docker`, or `sudo dockerd &`), install it "
        "(`sudo apt-get install docker.io`), or point DOCKER_HOST at a running engine. "
        "`--sandbox-backend local` works without Docker."
    )


def engine_lost_message(reason: BaseException) -> str:
    """The engine answered before and does not now: say which engine, why, and how to bring it back."""
    return (
        f"the Docker engine at {engine_location()} stopped answering ({connection_reason(reason)}); "
        "start it again (`sudo systemctl start docker`, or `sudo dockerd &`)"
    )


def connection_reason(exc: BaseException) -> str:
    """A short reason for a requests/urllib3 connection error: "Connection aborted: Connection refused"."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "no reply in time"
    phrase, cause = "", ""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:  # breadth first through args, reasons and causes: the deepest OS error wins
        item = pending.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str) and not phrase and len(item) <= 60:
            phrase = item.strip().rstrip(".")
        if not isinstance(item, BaseException):
            continue
        if isinstance(item, OSError) and item.strerror:
            cause = item.strerror
        pending.extend(item.args)
        links = (getattr(item, "reason", None), item.__cause__, item.__context__)
        pending.extend(link for link in links if link is not None)
    return ": ".join(dict.fromkeys(part for part in (phrase, cause) if part)) or _short_reason(exc)


def _short_reason(reason: object) -> str:
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    for marker in ("Error while fetching server API version: ",):
        text = text.replace(marker, "")
    return text[:200]


def connect(timeout_s: float = 60.0) -> docker.DockerClient:
    """A new client for the current DOCKER_HOST (blocking; contacts the engine once)."""
    try:
        return docker.from_env(timeout=int(timeout_s), max_pool_size=64)
    except DockerException as exc:
        raise SandboxError(engine_unreachable_message(exc)) from None
    except Exception as exc:  # e.g. a malformed DOCKER_HOST
        raise SandboxError(engine_unreachable_message(exc)) from None


def shared_client() -> docker.DockerClient:
    """The process-wide client for the current DOCKER_HOST (blocking on first use)."""
    key = engine_location()
    with _clients_lock:
        client = _clients.get(key)
    if client is not None:
        return client
    client = connect()
    with _clients_lock:
        return _clients.setdefault(key, client)


def forget_client() -> None:
    """Drop the cached client for the current DOCKER_HOST (after the engine restarted)."""
    with _clients_lock:
        client = _clients.pop(engine_location(), None)
    if client is not None:
        client.close()


def ping(client: docker.DockerClient) -> None:
    """Raise SandboxError with the standard message unless the engine answers."""
    try:
        client.ping()
    except Exception as exc:
        raise SandboxError(engine_unreachable_message(exc)) from None


async def get_client(factory: ClientFactory | None = None) -> docker.DockerClient:
    """Connect in a worker thread; SandboxError with a clear message when the engine is down."""
    return await in_thread(factory or shared_client)


def engine_reachable(factory: ClientFactory | None = None) -> tuple[bool, str]:
    """(True, version) when the engine answers, else (False, the clear message). Blocking."""
    try:
        client = (factory or shared_client)()
        version = client.version().get("Version", "?")
    except SandboxError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, engine_unreachable_message(exc)
    return True, str(version)
