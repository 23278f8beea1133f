"""Kubernetes API access for the Kubernetes backend: one shared client, and exec over the websocket.

Client choice: the official synchronous `kubernetes` package, its calls run in the backend's thread
pool (never on the event loop). Measured on this machine against the same cluster (see
shared/notes/kubernetes-here.md): an exec costs 60–80 ms with `kubernetes` and about 0.36 s with
`kubernetes_asyncio`, and an agent runs several execs per command (push, command, manifest, copy
back). Its one trap: the websocket helper appends every frame to one growing buffer, so a 52 MB
copy out took 60 s; :class:`PodExec` therefore reads the frames itself (0.6 s for the same copy)
and writes stdin in 1 MiB frames. A 1.20 API server cannot half-close stdin over the websocket,
so callers send the byte count first and read it in the pod with `head -c N`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from codex_tui.config import KubernetesSettings
from codex_tui.sandbox.base import SandboxError

STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3
FRAME: Final = 1 << 20
CONTAINER: Final = "sandbox"
SPOOL_MEMORY: Final = 8 << 20

FrameCallback = Callable[[int, bytes], None]

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def kubeconfig_path(settings: KubernetesSettings) -> str:
    """The kubeconfig file used: the setting, else $KUBECONFIG, else ~/.kube/config ("" if none exists)."""
    for candidate in (settings.kubeconfig, os.environ.get("KUBECONFIG", ""), "~/.kube/config"):
        if candidate:
            path = Path(candidate).expanduser()
            if path.is_file():
                return str(path)
            if candidate == settings.kubeconfig:
                raise SandboxError(f"the kubeconfig {path} does not exist ([sandbox.kubernetes] kubeconfig)")
    return ""


def api_client(settings: KubernetesSettings) -> Any:
    """A shared ApiClient for the configured kubeconfig and context (blocking: call in a thread)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig_path(settings)
    key = (path, settings.context)
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        configuration = client.Configuration()
        try:
            if path:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=path, context=settings.context or None, client_configuration=configuration
                )
            else:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError, ValueError) as exc:
            where = path or "the in-cluster service account (no kubeconfig found)"
            raise SandboxError(f"cannot load the Kubernetes config from {where}: {exc}") from None
        _clients[key] = client.ApiClient(configuration)
        return _clients[key]


def core_api(settings: KubernetesSettings) -> Any:
    """CoreV1Api on the shared client."""
    from kubernetes import client

    return client.CoreV1Api(api_client(settings))


def exec_api(settings: KubernetesSettings) -> Any:
    """CoreV1Api on a client of its own: `kubernetes.stream` swaps the client's request method
    while it opens the websocket, which would misroute other threads' calls on a shared client."""
    from kubernetes import client

    return client.CoreV1Api(client.ApiClient(api_client(settings).configuration))


def explain(exc: BaseException) -> str:
    """A one-line reason from a Kubernetes API error (its Status message when there is one)."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        with contextlib.suppress(ValueError, TypeError):
            body = json.loads(exc.body or "")
            if isinstance(body, dict) and body.get("message"):
                return str(body["message"])
        return f"{exc.status} {exc.reason}".strip()
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_not_found(exc: BaseException) -> bool:
    """True for an API 404."""
    from kubernetes.client.exceptions import ApiException

    return isinstance(exc, ApiException) and exc.status == 404


@dataclass(slots=True)
class ExecStatus:
    """How an exec ended: the exit code, or None with the server's reason (the command never ran,
    or the stream broke)."""

    exit_code: int | None
    reason: str = ""


class PodExec:
    """One exec in a pod's sandbox container, frames read and written directly (blocking calls)."""

    def __init__(self, settings: KubernetesSettings, pod: str, argv: list[str], *, stdin: bool) -> None:
        from kubernetes.stream import stream

        core = exec_api(settings)
        try:
            self._ws = stream(
                core.connect_get_namespaced_pod_exec,
                pod,
                settings.namespace,
                container=CONTAINER,
                command=argv,
                stdin=stdin,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
        except Exception as exc:
            raise SandboxError(f"cannot exec in pod {pod}: {explain(exc)}") from None
        self._closed = False

    def send(self, data: bytes) -> None:
        """Write `data` to the command's stdin in frames of at most 1 MiB."""
        view = memoryview(data)
        for start in range(0, len(view), FRAME):
            self._ws.sock.send_binary(bytes([STDIN]) + bytes(view[start : start + FRAME]))

    def send_file(self, handle: IO[bytes]) -> None:
        """Write a whole file to stdin, frame by frame."""
        while chunk := handle.read(FRAME):
            self._ws.sock.send_binary(bytes([STDIN]) + chunk)

    def pump(self, on_frame: FrameCallback) -> ExecStatus:
        """Deliver stdout/stderr frames until the exec ends; its status."""
        from websocket import ABNF, WebSocketException

        error = b""
        try:
            while True:
                opcode, frame = self._ws.sock.recv_data_frame(True)
                if opcode == ABNF.OPCODE_CLOSE:
                    break
                data = frame.data
                if not data or opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT):
                    continue
                channel, payload = data[0], data[1:]
                if channel == ERROR:
                    error += payload
                elif channel in (STDOUT, STDERR) and payload:
                    on_frame(channel, payload)
        except (WebSocketException, OSError) as exc:
            if not error:
                return ExecStatus(None, f"the exec stream broke: {explain(exc)}")
        finally:
            self.close()
        return parse_status(error)

    def close(self) -> None:
        """Close the websocket (idempotent; ends a pump running in another thread)."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._ws.close()


def parse_status(raw: bytes) -> ExecStatus:
    """The exit code from the error channel's Status object (Success, or NonZeroExitCode)."""
    if not raw:
        return ExecStatus(None, "the exec ended without a status (the container may have stopped)")
    try:
        status = json.loads(raw)
    except ValueError:
        return ExecStatus(None, raw.decode("utf-8", "replace")[:200])
    if status.get("status") == "Success":
        return ExecStatus(0)
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(ValueError, TypeError):
                return ExecStatus(int(cause.get("message")))
    return ExecStatus(None, str(status.get("message") or status.get("reason") or "exec failed"))


@dataclass(slots=True)
class Captured:
    """A finished exec's status, its stdout in a spooled file (rewound) and its stderr (bounded)."""

    status: ExecStatus
    stdout: IO[bytes]
    stderr: bytes
    overflow: bool = False


def capture(
    settings: KubernetesSettings,
    pod: str,
    argv: list[str],
    *,
    stdin: bytes | IO[bytes] | None = None,
    max_stdout: int,
) -> Captured:
    """Run argv in the pod and collect its output; stdout past `max_stdout` bytes ends the exec."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - handed to the caller
    err = bytearray()
    size = 0
    overflow = False
    runner = PodExec(settings, pod, argv, stdin=stdin is not None)

    def on_frame(channel: int, data: bytes) -> None:
        nonlocal size, overflow
        if channel == STDOUT:
            size += len(data)
            if size > max_stdout:
                overflow = True
                runner.close()
                return
            out.write(data)
        elif len(err) < 65536:
            err.extend(data[: 65536 - len(err)])

    if stdin is not None:
        writer = threading.Thread(target=_feed, args=(runner, stdin), daemon=True, name="codex-k8s-stdin")
        writer.start()
    status = runner.pump(on_frame)
    out.seek(0)
    return Captured(status, out, bytes(err), overflow)  # type: ignore[arg-type]


def _feed(runner: PodExec, stdin: bytes | IO[bytes]) -> None:
    with contextlib.suppress(Exception):
        if isinstance(stdin, bytes):
            runner.send(stdin)
        else:
            runner.send_file(stdin)
