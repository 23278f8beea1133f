"""End to end: the real `python -m codex_tui --demo` in a tmux pane, read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Pane:
    """One detached tmux session running the app."""

    def __init__(self, name: str, backend: str, bells: Path) -> None:
        self.name = name
        self.backend = backend
        self.bell_file = bells

    def bells(self) -> int:
        """How many terminal bells tmux has seen in this session."""
        return len(self.bell_file.read_text().splitlines()) if self.bell_file.exists() else 0

    def tmux(self, *args: str) -> str:
        """Run a tmux command against this session."""
        out = subprocess.run(["tmux", *args], capture_output=True, text=True, check=False, timeout=10)
        return out.stdout

    def text(self) -> str:
        """What the pane shows now."""
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def alive(self) -> bool:
        """The session (and so the app) is still running."""
        result = subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True, check=False)
        return result.returncode == 0

    def keys(self, *keys: str) -> None:
        """Send keys (tmux names: F4, Enter, y…)."""
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait(self, condition: Callable[[str], bool], timeout: float, what: str) -> str:
        """Poll the pane until `condition(text)`; fails with the last screen on timeout."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if condition(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{text}")

    def wait_all(self, needles: tuple[str, ...], timeout: float, what: str) -> str:
        """Wait until the pane shows every one of `needles` at once."""
        return self.wait(lambda t: all(needle in t for needle in needles), timeout, what)


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def pane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pane]:
    """The demo app in a 200x50 tmux pane; the session is killed by name afterwards.

    `docker` runs exactly `codex-tui --demo` (the engine answers, so tasks get containers);
    `local` forces the local backend. Every terminal bell is counted in `bells.txt` by a tmux hook.
    """
    if request.param == "docker":
        request.getfixturevalue("sandbox_image")  # a reachable engine and the default image
    name = f"codex-tui-e2e-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    home.mkdir()
    env = {"CODEX_TUI_HOME": str(home), "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    backend = "" if request.param == "docker" else " --sandbox-backend local"
    command = f"cd {ROOT} && env {exports} {sys.executable} -m codex_tui --demo{backend}"
    bells = tmp_path / "bells.txt"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50", command],
        check=True,
        timeout=10,
        env={**os.environ, "TMUX": ""},
    )
    subprocess.run(
        ["tmux", "set-hook", "-t", name, "alert-bell", f"run-shell 'echo bell >> {bells}'"],
        check=True,
        timeout=10,
    )
    try:
        yield Pane(name, request.param, bells)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False, timeout=10)


def test_demo_runs_to_the_end_and_the_diff_pane_shows_the_fix(pane: Pane) -> None:
    # The demo submits its three prompts one after another: wait until all four cards are listed.
    # Each condition names everything checked on that screen: tmux may be caught halfway through
    # drawing a frame, so a screen is read again until all of it is there.
    pane.wait(
        lambda t: (
            all(s in t for s in ("Fix the failing tests", "Document slugify()", "running", "1/2"))
            and "2/2" in t
            and t.count("Add reading_time()") == 2
        ),
        60,
        "the demo tasks to start, one of them as two attempts",
    )
    pane.wait(
        lambda t: f"Sandbox: {pane.backend}" in t and all(f"─ {x} ─" in t for x in ("Chat", "To-do", "Log")),
        30,
        f"the {pane.backend} sandbox note in the chat, with the panes together at 200×50",
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = pane.text()
        if "Approval needed" in text and "Approve once" in text:
            pane.keys("y")  # once: a second `y` after the dialog closed would land in the composer
            pane.wait(lambda t: "Approve once" not in t, 20, "the approval dialog to close")
        elif "approval?" in text and "Approve once" not in text:
            pane.keys("C-f")  # the approval waits in the attention inbox: jump to its task
        elif "0 running · 0 queued" in text and text.count("ready") >= 4:
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"the demo did not finish:\n{pane.text()}")
    pane.keys("F11")
    pane.wait(
        lambda t: (
            all(s in t for s in ("Mission control", "Fix the failing tests", "Document slugify()"))
            and t.count("Add reading_time()") >= 2
        ),
        20,
        "mission control with a tile for every task and both attempts",
    )
    pane.keys("Escape")
    pane.wait(lambda t: "Mission control" not in t, 20, "mission control to close")
    for _ in range(3):  # back to the first task (the inbox jump selected the last one)
        pane.keys("C-Up")
    pane.wait(lambda t: "Follow up · Fix the failing tests" in t, 20, "the first task selected")
    assert pane.bells() >= 1, "no terminal bell for the approval or the finished tasks"
    pane.keys("F4")
    pane.wait_all(("ordered = sorted(values)", "ordered = list(values)", "textkit/stats.py"), 20, "the fix")
    pane.keys("/status", "Enter")
    pane.wait(lambda t: "status ready · attempt 1/1" in t, 20, "the /status toast")
    pane.keys("C-q")
    deadline = time.monotonic() + 20
    while pane.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pane.alive(), "Ctrl+Q did not end the app"
