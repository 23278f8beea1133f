"""Limited internet for a task container: its own internal Docker network and an egress proxy container.

Layout per task (made by `Egress.start`, removed by `Egress.stop`):

- an `--internal` bridge network with `inhibit_ipv4`: the bridge has no address on the host, so
  a container on it reaches neither the host (whose services would otherwise answer on the
  gateway address) nor anything beyond — only the other containers on that network;
- the proxy container (`egress_proxy.py` under python3 of the default sandbox image), started on
  the default bridge (its way out) and connected to the internal network. It runs as nobody with
  no capabilities, a read-only root, small memory and pids limits, and expires by itself after
  the sandbox's TTL like the task container;
- the task container joins only the internal network, with `HTTP(S)_PROXY` pointing at the
  proxy's address there and its DNS server set to that address (which answers no DNS): names
  are resolved by the proxy, never by the task, so DNS cannot carry data out.

The proxy's stdout (JSON lines, see egress_proxy.py) is read on the host in a thread; each
request becomes a `network.request` event through `on_request`. Those lines are produced by the
proxy, not the task, but carry host names the task chose: they are parsed as JSON, checked field
by field, and stripped of control characters and line breaks before anyone sees them. A task can
make thousands of requests a second: past a burst and a rate, one event counts them (`LogThrottle`),
so a loop cannot fill the rollout or flood the TUI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig

from codex_tui.boundary.terminal import strip_controls
from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.egress_proxy import MAX_HOST_CHARS, PROXY_PORT, Policy
from codex_tui.sandbox.engine import LABEL, LABEL_OWNER_HOST, LABEL_TASK, in_thread, owner_alive, owner_labels
from codex_tui.sandbox.image import DEFAULT_IMAGE

LABEL_EGRESS = "codex-tui.egress"
PROXY_USER = "65534:65534"
PROXY_MEMORY = "128m"
PROXY_PIDS = 64
READY_TIMEOUT_S = 60.0
"""Only a bound for a broken proxy: readiness itself is the proxy's "ready" line."""
LOG_DRAIN_S = 5.0
"""At the end, how long the proxy's last log lines are waited for."""
NO_PROXY = "localhost,127.0.0.1,::1"
LOGGED_PER_S = 20.0
LOGGED_BURST = 200
"""Requests logged one by one: a burst, then this many a second; the rest are counted in one line
(a task looping on the proxy must not fill the rollout or flood the TUI: ~2,000 requests a second)."""
_SOURCE = (Path(__file__).with_name("egress_proxy.py")).read_text(encoding="utf-8")

RequestCallback = Callable[[dict[str, Any]], None]
"""Receives {host, port, method, allowed, rule, reason} on the event loop, once per request."""


class Egress:
    """One task's internal network and egress proxy; `start` before the task container, `stop` after."""

    def __init__(
        self,
        task_id: str,
        policy: Policy,
        on_request: RequestCallback | None = None,
        *,
        image: str = DEFAULT_IMAGE,
        ttl_s: int = 24 * 3600,
        extra_hosts: dict[str, str] | None = None,
    ) -> None:
        self.task_id = task_id
        self.policy = policy
        self.on_request = on_request
        self.image = image
        self.ttl_s = ttl_s
        self.extra_hosts = dict(extra_hosts or {})
        """Names the proxy resolves through its /etc/hosts (local services, tests)."""
        self.network = (
            f"codex-tui-egress-{re.sub(r'[^a-zA-Z0-9_.-]', '-', task_id)[:40]}-{uuid.uuid4().hex[:8]}"
        )
        self.proxy_ip = ""
        self.container_id: str | None = None
        self._client: docker.DockerClient | None = None
        self._log_ended: asyncio.Future[None] | None = None
        """Done once the proxy's output stream has ended and every line of it was delivered."""
        self._network_created = False
        self._throttle = LogThrottle()

    def env(self) -> dict[str, str]:
        """The task's proxy variables (both spellings: tools disagree on the case)."""
        url = f"http://{self.proxy_ip}:{PROXY_PORT}"
        proxy = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "ALL_PROXY": url, "NO_PROXY": NO_PROXY}
        return {**proxy, **{name.lower(): value for name, value in proxy.items()}}

    def describe(self) -> str:
        """`limited to pypi.org (GET, HEAD, OPTIONS) through the egress proxy`."""
        shown = ", ".join(self.policy.domains[:6]) or "no domain"
        if len(self.policy.domains) > 6:
            shown += f" and {len(self.policy.domains) - 6} more"
        return f"network limited to {shown} ({', '.join(self.policy.methods)}) through the egress proxy"

    async def start(self, client: docker.DockerClient) -> None:
        """Create the network and the proxy; returns once the proxy listens. Cleans up on failure."""
        self._client = client
        try:
            await in_thread(self._create_network, client)
            self.container_id = await in_thread(self._create_proxy, client)
            lines = await in_thread(
                client.api.attach,
                self.container_id,
                stdout=True,
                stderr=True,
                stream=True,
                logs=True,
                demux=True,
            )
            ready, self._log_ended = _pump(lines, asyncio.get_running_loop(), self._deliver)
            await in_thread(client.api.start, self.container_id)
            try:
                await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT_S)
            except TimeoutError:
                raise SandboxError(f"the egress proxy did not start in {READY_TIMEOUT_S:.0f} s") from None
            if not ready.result():
                raise SandboxError(f"the egress proxy exited at start: {await self._last_logs()}")
            self.proxy_ip = await in_thread(self._proxy_address, client)
        except ImageNotFound:
            await self.stop()
            raise SandboxError(
                f"limited network access runs its proxy from {self.image}, which is missing: "
                "run `codex-tui sandbox build`"
            ) from None
        except DockerException as exc:
            await self.stop()
            raise SandboxError(f"could not set up limited network access: {_explain(exc)}") from None
        except BaseException:
            await asyncio.shield(self.stop())
            raise

    async def stop(self) -> None:
        """Remove the proxy and the network; safe to call twice, never raises."""
        client = self._client
        if client is None:
            return
        container_id, self.container_id = self.container_id, None
        with contextlib.suppress(SandboxError, DockerException):
            if container_id:
                # The proxy ends first and its last lines are read: a request answered just before
                # the task ended is still logged.
                await in_thread(_kill_container, client, container_id)
                if self._log_ended is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._log_ended), LOG_DRAIN_S)
                self._emit(self._throttle.flush())
                await in_thread(_remove_container, client, container_id)
            if self._network_created:
                self._network_created = False
                await in_thread(_remove_network, client, self.network)

    def _create_network(self, client: docker.DockerClient) -> None:
        client.api.create_network(
            self.network,
            driver="bridge",
            internal=True,
            options={"com.docker.network.bridge.inhibit_ipv4": "true"},
            labels={**owner_labels(), LABEL_TASK: self.task_id, LABEL_EGRESS: "1"},
        )
        self._network_created = True

    def _create_proxy(self, client: docker.DockerClient) -> str:
        policy = json.dumps({"domains": list(self.policy.domains), "methods": list(self.policy.methods)})
        host_config = client.api.create_host_config(
            network_mode="bridge",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=PROXY_MEMORY,
            memswap_limit=PROXY_MEMORY,
            pids_limit=PROXY_PIDS,
            init=True,
            auto_remove=True,
            extra_hosts=self.extra_hosts or None,
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        )
        created = client.api.create_container(
            self.image,
            command=["timeout", str(self.ttl_s), "python3", "-u", "-c", _SOURCE],
            user=PROXY_USER,
            environment={"EGRESS_POLICY": policy, "PYTHONDONTWRITEBYTECODE": "1"},
            labels={**owner_labels(), LABEL_TASK: self.task_id, LABEL_EGRESS: "proxy"},
            host_config=host_config,
        )
        container_id = str(created["Id"])
        client.api.connect_container_to_network(container_id, self.network)
        return container_id

    def _proxy_address(self, client: docker.DockerClient) -> str:
        networks = client.api.inspect_container(self.container_id)["NetworkSettings"]["Networks"]
        address = str((networks.get(self.network) or {}).get("IPAddress") or "")
        if not address:
            raise SandboxError("the egress proxy has no address on the task's network")
        return address

    async def _last_logs(self) -> str:
        if self._client is None or self.container_id is None:
            return "(no logs)"
        with contextlib.suppress(DockerException, SandboxError):
            logs = await in_thread(self._client.api.logs, self.container_id, tail=10)
            return strip_controls(logs.decode("utf-8", "replace"))[-2000:] or "(no output)"
        return "(no logs)"

    def _deliver(self, record: dict[str, Any]) -> None:
        event = request_event(record)
        if event is not None:
            for data in self._throttle.admit(event):
                self._emit(data)

    def _emit(self, data: dict[str, Any] | None) -> None:
        if data is not None and self.on_request is not None:
            self.on_request(data)


class LogThrottle:
    """A token bucket over `network.request` events: past it, requests are counted, and the count
    goes out as one event (at most one a second) before the next one let through, or at the stop."""

    def __init__(
        self,
        per_s: float = LOGGED_PER_S,
        burst: int = LOGGED_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._dropped = 0
        self._counted_at = float("-inf")

    def admit(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The events to emit for this one: [], [event], or [count of those dropped, event]."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens < 1 or (self._dropped and now - self._counted_at < 1.0):
            self._dropped += 1
            return []
        self._tokens -= 1
        summary = self.flush()
        if summary is None:
            return [event]
        self._counted_at = now
        return [summary, event]

    def flush(self) -> dict[str, Any] | None:
        """The event counting the requests not logged since the last one (None when there are none)."""
        dropped, self._dropped = self._dropped, 0
        if not dropped:
            return None
        return {
            "host": "",
            "port": 0,
            "method": "",
            "allowed": False,
            "rule": "",
            "reason": f"{dropped} more requests not logged one by one (over {self.per_s:g} a second)",
            "suppressed": dropped,
        }


def request_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """A proxy log record as `network.request` data, every field checked; None for other records."""
    if record.get("event") != "request":
        return None
    port = record.get("port")

    def text(name: str, limit: int) -> str:
        value = record.get(name)
        # One line: a newline or line separator in a field would forge a line of the task's log.
        return " ".join(strip_controls(value).split())[:limit] if isinstance(value, str) else ""

    return {
        "host": text("host", MAX_HOST_CHARS),
        "port": port if isinstance(port, int) and not isinstance(port, bool) else 0,
        "method": text("method", 16),
        "allowed": record.get("allowed") is True,
        "rule": text("rule", 300),
        "reason": text("reason", 500),
    }


def _pump(
    frames: Iterable[tuple[bytes | None, bytes | None]],
    loop: asyncio.AbstractEventLoop,
    deliver: Callable[[dict[str, Any]], None],
) -> tuple[asyncio.Future[bool], asyncio.Future[None]]:
    """Read the proxy's output in a thread. The first future is True at its ready line, False if the
    output ends first; the second is done when it has ended (after every line was delivered)."""
    ready: asyncio.Future[bool] = loop.create_future()
    ended: asyncio.Future[None] = loop.create_future()

    def settle(value: bool) -> None:
        if not ready.done():
            ready.set_result(value)
        if not value and not ended.done():
            ended.set_result(None)

    def run() -> None:
        buffer = b""
        try:
            for stdout, _stderr in frames:
                buffer += stdout or b""
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    record = _parse(line)
                    if record.get("event") == "ready":
                        loop.call_soon_threadsafe(settle, True)
                    elif record:
                        loop.call_soon_threadsafe(deliver, record)
                buffer = buffer[-65536:]
        except Exception:  # the stream ends when the proxy is removed
            pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(settle, False)

    threading.Thread(target=run, name="codex-egress-log", daemon=True).start()
    return ready, ended


def _parse(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _kill_container(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.api.kill(container_id)


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.api.remove_container(container_id, force=True)


def _remove_network(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(NotFound, APIError):
        client.api.remove_network(name)


async def sweep_stale_networks(client: docker.DockerClient) -> list[str]:
    """Remove egress networks whose owner process on this host is gone (after their containers)."""
    return await in_thread(_sweep_networks, client)


def _sweep_networks(client: docker.DockerClient) -> list[str]:
    host = socket.gethostname()
    removed: list[str] = []
    try:
        networks = client.api.networks(filters={"label": [f"{LABEL}=1", LABEL_EGRESS]})
    except DockerException:
        return removed
    for network in networks:
        labels = network.get("Labels") or {}
        if labels.get(LABEL_OWNER_HOST, host) != host or owner_alive(labels):
            continue
        with contextlib.suppress(NotFound, APIError):
            client.api.remove_network(network["Id"])
            removed.append(str(network["Name"]))
    return removed


def _explain(exc: BaseException) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
