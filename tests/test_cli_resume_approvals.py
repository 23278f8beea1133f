"""`codex-tui tasks resume` answers approval requests: denied without a terminal, asked on one.

The CLI runs as a real subprocess against the scripted model; "a terminal" is a real pseudo-terminal
on stdin/stdout/stderr, answered as a person would type.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui.scripted import ScriptedServer
from tests.test_exec import ROOT, provider_flags, run_cli
from tests.test_tasks_support import scenario, shell_call

QUESTION = "[y] yes  [a] yes for this task  [n] no: "


def escalated(*words: str) -> dict[str, object]:
    """One model response asking to run `echo WORD` outside the sandbox for each word."""
    calls = [shell_call("echo", w, with_escalated_permissions=True, justification="needs net") for w in words]
    return {"tool_calls": calls}


ASKS_ON_RESUME = scenario(
    "asks-on-resume",
    {"text": "First turn done."},
    escalated("outside"),
    {"text": "Second turn done."},
    escalated("one", "two"),
    {"text": "Third turn done."},
)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """The scripted model: a first turn without approvals, then turns that ask for them."""
    srv = ScriptedServer([ASKS_ON_RESUME]).start_in_thread()
    yield srv
    srv.stop()


def first_turn(repo: Path, home: Path, server: ScriptedServer) -> tuple[str, list[str]]:
    """Run the task's first turn with exec; returns its id and the flags that reach the model."""
    flags = provider_flags(server.base_url, "scripted:asks-on-resume")
    done = run_cli("exec", "start", "-C", str(repo), "--json", *flags, home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[0])["thread_id"], flags


def test_resume_without_a_terminal_denies_the_request_and_finishes(
    git_repo: Path, isolated_home: Path, server: ScriptedServer
) -> None:
    task_id, flags = first_turn(git_repo, isolated_home, server)
    resumed = run_cli(
        "tasks", "resume", task_id, "go on", "-C", str(git_repo), *flags, home=isolated_home, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "? approval requested: echo outside — needs net" in resumed.stderr
    assert "denied: there is no terminal to ask" in resumed.stderr
    assert "▶ Declined echo outside" in resumed.stderr
    assert resumed.stdout == "Second turn done.\n"


class Terminal:
    """`codex-tui ARGS` on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, args: list[str], home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update({"CODEX_TUI_HOME": str(home), "NO_COLOR": "1", "CI": "true"})
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "codex_tui", *args],
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.screen = ""

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Read output until `text` has appeared since the last call; returns what was read."""
        start = len(self.screen)
        deadline = time.monotonic() + timeout
        while text not in self.screen[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"never showed {text!r}; the terminal shows:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    assert text in self.screen[start:], f"exited before {text!r}:\n{self.screen}"
                    break
                self.screen += chunk.decode("utf-8", errors="replace")
        return self.screen[start:]

    def type(self, keys: str) -> None:
        """Type on the terminal's keyboard."""
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 60) -> int:
        """Read until the command exits; returns its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None or select.select([self.master], [], [], 0)[0]:
            assert time.monotonic() < deadline, f"still running:\n{self.screen}"
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.screen += chunk.decode("utf-8", errors="replace")
        os.close(self.master)
        return self.process.wait(timeout=5)


def test_resume_on_a_terminal_asks_and_remembers_approve_for_this_task(
    git_repo: Path, isolated_home: Path, server: ScriptedServer
) -> None:
    task_id, flags = first_turn(git_repo, isolated_home, server)
    options = ["-C", str(git_repo), *flags]

    denied = Terminal(["tasks", "resume", task_id, "try it", *options], isolated_home)
    assert "Approve echo outside?" in denied.read_until(QUESTION)
    denied.type("n\n")
    assert denied.finish() == 0
    assert "▶ Declined echo outside" in denied.screen and "Second turn done." in denied.screen

    approved = Terminal(["tasks", "resume", task_id, "now both", *options], isolated_home)
    assert "Approve echo one?" in approved.read_until(QUESTION)
    approved.type("a\n")
    assert approved.finish() == 0
    assert "→ approve_task" in approved.screen
    assert "▶ Ran echo one · exit 0" in approved.screen and "▶ Ran echo two · exit 0" in approved.screen
    assert approved.screen.count(QUESTION) == 1, "approve for this task: the second command is not asked"
    assert "Third turn done." in approved.screen


def test_resume_on_a_terminal_that_closes_its_input_denies(
    git_repo: Path, isolated_home: Path, server: ScriptedServer
) -> None:
    task_id, flags = first_turn(git_repo, isolated_home, server)
    term = Terminal(["tasks", "resume", task_id, "go", "-C", str(git_repo), *flags], isolated_home)
    term.read_until(QUESTION)
    term.type("\x04")  # Ctrl+D: end of input, no answer
    assert term.finish() == 0
    assert "→ deny" in term.screen and "▶ Declined echo outside" in term.screen
