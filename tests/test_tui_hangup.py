"""A closed terminal does not stop the TUI from stopping: after SIGHUP every write to the terminal
fails (EIO), and the app must still finish its stop (interrupt tasks, remove containers) however
much it draws meanwhile."""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from codex_tui.tui.driver import HangupSafeOutput, TerminalDriver, safe_driver_class

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "helpers" / "hangup_app.py"


def test_output_to_a_hung_up_terminal_is_dropped_instead_of_raising() -> None:
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w", buffering=1)
    output = HangupSafeOutput(stream)
    output.write("before\n")
    output.flush()
    assert not output.gone and output.isatty()
    os.close(master)  # the terminal goes away: writes to the slave now fail with EIO
    for _ in range(3):
        assert output.write("after\n") == len("after\n")
        output.flush()
    assert output.gone and not output.isatty()
    with contextlib.suppress(OSError):  # what is still buffered cannot be written either
        stream.close()


def test_only_textuals_linux_driver_is_replaced() -> None:
    from textual.drivers.headless_driver import HeadlessDriver
    from textual.drivers.linux_driver import LinuxDriver

    assert safe_driver_class(LinuxDriver) is TerminalDriver
    assert safe_driver_class(HeadlessDriver) is HeadlessDriver


def tmux(*args: str) -> str:
    env = {**os.environ, "TMUX": ""}
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10, env=env).stdout


def wait_until(check: object, what: str, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.e2e
def test_an_app_drawing_after_the_terminal_closed_still_finishes_its_stop(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    session = f"codex-tui-hangup-{uuid.uuid4().hex[:8]}"
    command = f"cd {ROOT} && exec {sys.executable} {HELPER} {marker}"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
    try:
        wait_until(lambda: marker.exists() and marker.read_text().startswith("mounted"), "the app to start")
        process = psutil.Process(int(marker.read_text().split()[1]))
    finally:
        tmux("kill-session", "-t", session)  # the terminal closes: the app gets SIGHUP
    deadline = time.monotonic() + 15.0
    while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"the app hangs after the hangup: {marker.read_text()}"
        time.sleep(0.1)
    assert marker.read_text() == "stopped"
