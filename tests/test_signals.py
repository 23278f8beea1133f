"""SIGTERM and SIGHUP stop codex-tui cleanly: sandboxes removed, tasks resumable, rollout flushed.

Each test runs the real program (`exec`, `tasks resume`, the TUI in tmux) against the scripted
model server, lets a long `sleep` start in the task's sandbox, sends the signal, and checks what
the user and the next run would find: the exit code and message, no container left on the real
Docker engine (or no process, with the local backend), and a task that is not "running".
The last test covers what every stop relies on: an interrupted local command leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import psutil
import pytest

from codex_tui import protocol as p
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.engine import LABEL_TASK
from codex_tui.sandbox.local import LocalSandbox, bwrap_path
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.manager import ACTIVE_STATUSES
from codex_tui.tasks.store import RolloutStore, TaskRecord
from tests.sandbox_helpers import processes_with
from tests.test_tasks_support import scenario, shell_call

ROOT = Path(__file__).resolve().parents[1]
LOCAL_NAP = "31.4159"
"""The sleep of the local-backend test: its own marker, unlike any process of the Docker tests."""
STOP_WITHIN_S = 15.0
"""A stopped codex-tui must be gone this soon (turn interrupted, containers removed)."""


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[ScriptedServer]:
    """Scenarios whose turns run one long `sleep` each (the marker tells the processes apart)."""
    naps = [{"tool_calls": [shell_call("sleep", f"30.{n}{n}7", timeout_ms=120_000)]} for n in range(1, 4)]
    server = ScriptedServer(
        [
            scenario("naps", *naps, {"text": "rested"}),
            scenario("ready-then-naps", {"text": "ready"}, *naps, {"text": "rested"}),
            scenario("local-nap", {"tool_calls": [shell_call("sleep", LOCAL_NAP, timeout_ms=120_000)]}),
        ]
    ).start_in_thread()
    yield server
    server.stop()


def flags(server: ScriptedServer, model: str, backend: str) -> list[str]:
    """CLI flags that point codex-tui at the scripted server with the given sandbox backend."""
    return [
        "-c", "model_provider=scripted",
        "-c", f"model_providers.scripted.base_url={server.base_url}",
        "-c", "model_providers.scripted.wire_api=responses",
        "-c", "request_max_retries=0",
        "-m", model,
        "--sandbox-backend", backend,
    ]  # fmt: skip


def start_cli(*args: str) -> subprocess.Popen[str]:
    """`python -m codex_tui ARGS` in the background, stdout and stderr piped (no terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "codex_tui", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until_a_command_runs(app: subprocess.Popen[str]) -> str:
    """Read `--json` lines until the agent's command has started; returns the task id ("" if unsaid)."""
    assert app.stdout is not None
    task_id = ""
    while True:
        line = app.stdout.readline()
        assert line, f"codex-tui ended before the command started: {app.communicate()[1]}"
        event = json.loads(line)
        task_id = task_id or str(event.get("thread_id", ""))
        if event["type"] == "item.started" and event["item"]["type"] == "command_execution":
            return task_id


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll `condition` until it holds; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stop_and_wait(app: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, float]:
    """Send `sig`; returns (exit code, stderr, seconds until the process was gone)."""
    started = time.monotonic()
    app.send_signal(sig)
    _, err = app.communicate(timeout=60)
    return app.returncode, err, time.monotonic() - started


def stored_task(home: Path, task_id: str) -> TaskRecord:
    """The task's record as index.json holds it now."""
    return RolloutStore(home / "data").read_records()[task_id]


def last_status_event(home: Path, task_id: str) -> dict[str, object]:
    """The data of the last task.status event in the task's rollout on disk."""
    events = asyncio.run(RolloutStore(home / "data").read_events(task_id))
    return [e.data for e in events if e.type == p.TASK_STATUS][-1]


def task_containers(engine: docker.DockerClient, task_id: str) -> list[str]:
    """Names of the containers (running or not) labelled for the task."""
    listed = engine.containers.list(all=True, filters={"label": f"{LABEL_TASK}={task_id}"})
    return [c.name for c in listed]


def assert_stopped_resumably(home: Path, task_id: str) -> None:
    """The index and the flushed rollout agree: the task is not running, its turn was interrupted."""
    record = stored_task(home, task_id)
    assert record.status not in ACTIVE_STATUSES
    assert record.message.startswith("interrupted")  # what `tasks prune` keeps as resumable
    assert last_status_event(home, task_id) == {"status": record.status, "message": record.message}


@pytest.mark.docker
def test_sigterm_stops_exec_removes_the_task_container_and_leaves_it_resumable(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, docker_engine: docker.DockerClient,
    sandbox_image: str,
) -> None:  # fmt: skip
    app = start_cli(
        "exec", "nap", "-C", str(git_repo), "--json", *flags(scripted_server, "scripted:naps", "docker")
    )
    task_id = read_until_a_command_runs(app)
    assert task_containers(docker_engine, task_id), "the task runs in a container"
    code, err, seconds = stop_and_wait(app, signal.SIGTERM)
    assert code == 143 and seconds < STOP_WITHIN_S, err
    assert f"codex-tui exec: stopped by SIGTERM; continue with `codex-tui tasks resume {task_id}`" in err
    assert "Traceback" not in err
    assert task_containers(docker_engine, task_id) == []
    assert_stopped_resumably(isolated_home, task_id)


def test_sighup_stops_exec_with_129_and_leaves_no_process(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    app = start_cli(
        "exec", "nap", "-C", str(git_repo), "--json", *flags(scripted_server, "scripted:local-nap", "local")
    )
    task_id = read_until_a_command_runs(app)
    wait_for(lambda: bool(processes_with(f"sleep {LOCAL_NAP}")), "the sleep to run")
    code, err, seconds = stop_and_wait(app, signal.SIGHUP)
    assert code == 129 and seconds < STOP_WITHIN_S, err
    assert "stopped by SIGHUP" in err and "Traceback" not in err
    assert processes_with(f"sleep {LOCAL_NAP}") == []
    assert_stopped_resumably(isolated_home, task_id)


@pytest.mark.docker
def test_sigterm_stops_tasks_resume_and_removes_the_task_container(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, docker_engine: docker.DockerClient,
    sandbox_image: str,
) -> None:  # fmt: skip
    options = flags(scripted_server, "scripted:ready-then-naps", "docker")
    first = start_cli("exec", "get ready", "-C", str(git_repo), "--json", *options)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    task_id = json.loads(out.splitlines()[0])["thread_id"]
    app = start_cli("tasks", "resume", task_id, "now nap", "--json", *options)
    read_until_a_command_runs(app)
    assert task_containers(docker_engine, task_id), "the resumed task runs in a container"
    code, err, seconds = stop_and_wait(app, signal.SIGTERM)
    assert code == 143 and seconds < STOP_WITHIN_S, err
    assert f"codex-tui: stopped by SIGTERM; continue with `codex-tui tasks resume {task_id}`" in err
    assert "Traceback" not in err
    assert task_containers(docker_engine, task_id) == []
    assert_stopped_resumably(isolated_home, task_id)


class TmuxApp:
    """The TUI in a detached tmux session; its shell records the exit code and the pane stays."""

    def __init__(self, command: str, exit_file: Path) -> None:
        self.name = f"codex-tui-signals-{uuid.uuid4().hex[:8]}"
        self.exit_file = exit_file
        shell = f"{command}; echo $? > {exit_file}"
        self.tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "40", shell)
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        pane = psutil.Process(int(self.show("#{pane_pid}")))
        wait_for(lambda: bool(self._apps(pane)), "the app's process")
        self.pid = self._apps(pane)[0].pid

    @staticmethod
    def _apps(pane: psutil.Process) -> list[psutil.Process]:
        return [c for c in pane.children() if "codex_tui" in " ".join(c.cmdline())]

    def exit_code(self) -> str:
        """The app's exit code as its shell wrote it ("" while it runs)."""
        return self.exit_file.read_text().strip() if self.exit_file.exists() else ""

    def tmux(self, *args: str) -> str:
        """Run one tmux command; returns its output."""
        env = {**os.environ, "TMUX": ""}
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, env=env)
        return done.stdout

    def show(self, fmt: str) -> str:
        """A tmux format (e.g. `#{pane_dead}`) for the app's pane."""
        return self.tmux("display-message", "-p", "-t", self.name, fmt).strip()

    def kill(self) -> None:
        """End the tmux session."""
        self.tmux("kill-session", "-t", self.name)


@pytest.fixture
def tui_app(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, sandbox_image: str
) -> Iterator[TmuxApp]:
    """`codex-tui nap` with the docker backend, running in tmux."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    env = f"CODEX_TUI_HOME={isolated_home} TERM=xterm-256color"
    args = " ".join(flags(scripted_server, "scripted:naps", "docker"))
    command = f"cd {ROOT} && env {env} {sys.executable} -m codex_tui nap -C {git_repo} {args}"
    app = TmuxApp(command, git_repo.parent / "tui-exit-code")
    try:
        yield app
    finally:
        app.kill()


def has_exited(process: psutil.Process) -> bool:
    """Ended (a zombie waiting for init to reap it counts: it runs nothing)."""
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def describe(process: psutil.Process) -> str:
    """Status and kernel wait channel of a process, for a failure message."""
    try:
        return f"{process.status()} in {Path(f'/proc/{process.pid}/wchan').read_text()}"
    except (psutil.NoSuchProcess, OSError):
        return "gone"


def running_command_task(home: Path) -> str:
    """The id of the one stored task once its rollout shows a command started ("" before)."""
    records = RolloutStore(home / "data").read_records()
    for task_id in records:
        events = asyncio.run(RolloutStore(home / "data").read_events(task_id))
        items = [e.data.get("item") or {} for e in events if e.type == p.ITEM_STARTED]
        if any(item.get("type") == p.ITEM_COMMAND for item in items):
            return task_id
    return ""


def wait_for_running_container(home: Path, engine: docker.DockerClient) -> str:
    """The id of the TUI's task once its command runs in its container."""
    wait_for(lambda: bool(running_command_task(home)), "the task's command to start")
    task_id = running_command_task(home)
    wait_for(lambda: bool(task_containers(engine, task_id)), "the task's container")
    return task_id


@pytest.mark.docker
@pytest.mark.e2e
def test_sigterm_closes_the_tui_and_removes_its_task_containers(
    tui_app: TmuxApp, isolated_home: Path, docker_engine: docker.DockerClient
) -> None:
    task_id = wait_for_running_container(isolated_home, docker_engine)
    started = time.monotonic()
    os.kill(tui_app.pid, signal.SIGTERM)
    wait_for(lambda: tui_app.exit_code() != "", "the app to exit")
    assert time.monotonic() - started < STOP_WITHIN_S
    screen = tui_app.tmux("capture-pane", "-p", "-S", "-200", "-t", tui_app.name)  # with scrollback
    assert tui_app.exit_code() == "143", screen
    assert "codex-tui: stopped by SIGTERM; its tasks were stopped and can be resumed" in screen
    assert "Traceback" not in screen
    assert task_containers(docker_engine, task_id) == []
    assert_stopped_resumably(isolated_home, task_id)


@pytest.mark.docker
@pytest.mark.e2e
def test_closing_the_terminal_stops_the_tui_and_removes_its_task_containers(
    tui_app: TmuxApp, isolated_home: Path, docker_engine: docker.DockerClient
) -> None:
    task_id = wait_for_running_container(isolated_home, docker_engine)
    process = psutil.Process(tui_app.pid)
    tui_app.kill()  # tmux hangs up on the pane: the app gets SIGHUP
    deadline = time.monotonic() + STOP_WITHIN_S
    while not has_exited(process):
        assert time.monotonic() < deadline, f"the app still runs after the hangup: {describe(process)}"
        time.sleep(0.1)
    assert task_containers(docker_engine, task_id) == []
    assert_stopped_resumably(isolated_home, task_id)


async def cancel_soon_after_start(sandbox: LocalSandbox, marker: str, delay_s: float) -> None:
    """Start `sleep MARKER` in the sandbox and cancel it `delay_s` later (bubblewrap may be setting up)."""
    await sandbox.start()
    command = asyncio.create_task(sandbox.exec(["sleep", marker], timeout_s=60))
    await asyncio.sleep(delay_s)
    command.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await command


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not usable here")
def test_a_cancel_during_bubblewrap_start_up_leaves_no_process_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    for round_ in range(60):  # cancels spread over bubblewrap's start-up, each on its own event loop
        marker = f"29.{round_:03d}1"
        sandbox = LocalSandbox(SandboxSpec(task_id="cancel", workspace=tmp_path))
        asyncio.run(cancel_soon_after_start(sandbox, marker, delay_s=(round_ % 30) * 0.001))
        gc.collect()  # the loop is closed: a pipe left open would now print "Event loop is closed"
        assert processes_with(f"sleep {marker}") == [], f"round {round_} left its command running"
    assert unraisable == []
