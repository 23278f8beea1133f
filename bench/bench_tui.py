"""The whole TUI under load, measured from outside through a real pseudo-terminal, with budgets.

    .venv/bin/python bench/bench_tui.py [--tasks 8] [--rate 5000] [--seconds 10]

Measures:
- first paint: `python -m codex_tui -C <repo>` started in a pty until its first frame (the
  status bar) arrives on the terminal; also the bare import time of the TUI.
- streaming: the app (real driver, real terminal output) fed by a synthetic task source through the
  same subscribe() path as the task manager: 8 running tasks each emitting 5,000 log lines/s (in
  batched output deltas, like the sandbox) for 10 s, with the log pane of one task on screen.
  While it streams, a key is typed into the composer every 200 ms; key-to-screen latency is the
  time from writing the key to the pty until the terminal output contains the echoed character.
  Peak RSS of the app process is sampled throughout.

Writes bench/results/tui.json: each measure with its budget and pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "tui.json"
BUDGET_FIRST_PAINT_S = 1.0
BUDGET_KEY_P95_MS = 100.0
BUDGET_RSS_MB = 300.0
FIRST_FRAME_MARK = b"queued"
"""In the status bar of the first frame (the placeholder is split by the cursor, so not that)."""
KEY = b"Q"
"""Typed while streaming: no other text on screen contains it (log lines are lower case)."""
SIZE = (200, 50)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the pty harness ---------------------------------------------------------------------------


@dataclass
class Terminal:
    """A child process on a pseudo-terminal; a thread drains its output and timestamps it."""

    proc: subprocess.Popen[bytes]
    master: int
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str]) -> Terminal:
        """Start argv on a new pty of SIZE."""
        master, slave = pty.openpty()
        cols, rows = SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        term = cls(proc, master)
        threading.Thread(target=term._drain, daemon=True).start()
        return term

    def _drain(self) -> None:
        while not self.closed:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.chunks.append((time.perf_counter(), data))

    def write(self, data: bytes) -> float:
        """Send bytes as keystrokes; returns when they were written."""
        os.write(self.master, data)
        return time.perf_counter()

    def first_after(self, mark: bytes, since: float, timeout: float) -> float | None:
        """Time of the first output chunk after `since` that contains `mark`."""
        deadline = time.perf_counter() + timeout
        index = 0
        while time.perf_counter() < deadline:
            with self.lock:
                chunks = self.chunks[index:]
            for stamp, data in chunks:
                if stamp >= since and mark in data:
                    return stamp
            index += len(chunks)
            time.sleep(0.001)
        return None

    def close(self) -> None:
        """Stop the child (Ctrl+Q, then a signal) and the reader."""
        with contextlib.suppress(OSError):
            self.write(b"\x11")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        self.closed = True
        os.close(self.master)


def child_env(home: Path) -> dict[str, str]:
    """A clean environment: private home, a true-colour terminal type."""
    env = dict(os.environ)
    env.update({"CODEX_TUI_HOME": str(home), "TERM": "xterm-256color", "COLORTERM": "truecolor"})
    env.pop("TEXTUAL", None)
    return env


# --- first paint -------------------------------------------------------------------------------


def make_repo(path: Path) -> Path:
    """A small committed repository to open."""
    path.mkdir(parents=True)
    (path / "main.py").write_text("print('hello')\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)
    subprocess.run(
        ["git", "-C", str(path), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"],
        check=True,
        capture_output=True,
    )
    return path


def measure_first_paint(runs: int) -> dict[str, Any]:
    """Launch the real CLI in a pty and time its first frame."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="codex-tui-bench-") as tmp:
        repo = make_repo(Path(tmp) / "repo")
        for run in range(runs):
            home = Path(tmp) / f"home{run}"
            home.mkdir()
            argv = [sys.executable, "-m", "codex_tui", "-C", str(repo), "--sandbox-backend", "local"]
            started = time.perf_counter()
            term = Terminal.spawn(argv, child_env(home))
            try:
                seen = term.first_after(FIRST_FRAME_MARK, started, 30)
            finally:
                term.close()
            if seen is None:
                raise RuntimeError("the app never painted its first frame")
            times.append(seen - started)
    imports: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import codex_tui.tui.app"], check=True, cwd=ROOT)
        imports.append(time.perf_counter() - started)
    median = sorted(times)[len(times) // 2]
    return {
        "runs": runs,
        "launch_to_first_frame_median_s": round(median, 3),
        "launch_to_first_frame_max_s": round(max(times), 3),
        "python_plus_import_median_s": round(sorted(imports)[len(imports) // 2], 3),
        "budget_s": BUDGET_FIRST_PAINT_S,
        "pass": median <= BUDGET_FIRST_PAINT_S,
    }


# --- streaming (parent side) -------------------------------------------------------------------


def measure_streaming(tasks: int, rate: int, seconds: float) -> dict[str, Any]:
    """Run the app with the synthetic source in a pty; type keys; sample RSS."""

    def press(term: Terminal, _turn: int) -> float | None:
        sent = term.write(KEY)
        seen = term.first_after(KEY, sent, 2.0)
        time.sleep(0.05)
        term.write(b"\x7f")
        time.sleep(0.15)
        return None if seen is None else (seen - sent) * 1000

    load = (tasks, rate, seconds)
    missed, summary = streamed_keys(Path(__file__), load, FIRST_FRAME_MARK, "its first frame", press)
    return {
        "tasks": tasks,
        "lines_per_s_per_task": rate,
        "seconds": seconds,
        "keys_not_echoed": missed,
        **summary,
    }


def streamed_keys(
    script: Path,
    load: tuple[int, int, float],
    ready: bytes,
    what: str,
    press: Callable[[Terminal, int], float | None],
) -> tuple[int, dict[str, Any]]:
    """Run `python SCRIPT --child` with `load` (tasks, log lines/s per task, seconds) in a pty; once
    `ready` shows, call `press(term, turn)` (it sends a key and returns the key-to-screen latency in
    ms, or None when the screen never showed it) until the seconds are up, sampling RSS around each
    press. Returns (keys missed, key_latency_summary)."""
    tasks, rate, seconds = load
    argv = [sys.executable, str(script.resolve()), "--child"]
    argv += ["--tasks", str(tasks), "--rate", str(rate), "--seconds", str(seconds)]
    with tempfile.TemporaryDirectory(prefix="codex-tui-bench-") as tmp:
        term = Terminal.spawn(argv, child_env(Path(tmp)))
        rss: list[int] = []
        latencies: list[float] = []
        missed = 0
        try:
            if term.first_after(ready, 0, 30) is None:
                raise RuntimeError(f"the app never showed {what}")
            process = psutil.Process(term.proc.pid)
            time.sleep(1.0)
            end = time.perf_counter() + seconds - 1.5
            turn = 0
            while time.perf_counter() < end:
                rss.append(process.memory_info().rss)
                latency = press(term, turn)
                turn += 1
                if latency is None:
                    missed += 1
                else:
                    latencies.append(latency)
                rss.append(process.memory_info().rss)
        finally:
            term.close()
        output = sum(len(data) for _, data in term.chunks)
    return missed, key_latency_summary(latencies, missed, rss, output)


def key_latency_summary(latencies: list[float], missed: int, rss: list[int], output: int) -> dict[str, Any]:
    """Key latency percentiles, peak RSS and terminal output of one streaming run, against the budgets."""
    p95 = percentile(latencies, 0.95)
    peak = max(rss) / 1024 / 1024 if rss else 0.0
    return {
        "terminal_output_mb": round(output / 1024 / 1024, 1),
        "key_samples": len(latencies),
        "key_latency_p50_ms": round(percentile(latencies, 0.5), 1),
        "key_latency_p95_ms": round(p95, 1),
        "key_latency_max_ms": round(max(latencies, default=0.0), 1),
        "key_budget_p95_ms": BUDGET_KEY_P95_MS,
        "rss_peak_mb": round(peak, 1),
        "rss_budget_mb": BUDGET_RSS_MB,
        "pass": bool(latencies) and missed == 0 and p95 <= BUDGET_KEY_P95_MS and peak <= BUDGET_RSS_MB,
    }


# --- streaming (child side: the app and its synthetic source) ------------------------------------


class SyntheticSource:
    """Running tasks that print `rate` lines/s each, delivered through subscribe() like the manager."""

    def __init__(self, tasks: int, rate: int, seconds: float) -> None:
        self.count = tasks
        self.rate = rate
        self.seconds = seconds
        self.callback: Any = None
        self.seqs: dict[str, int] = {}
        self.lines_sent = 0

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to stop."""

    async def submit(self, op: Any) -> Any:
        """Answer every operation (an empty diff for the diff pane)."""
        from codex_tui.protocol import OpResult

        return OpResult(True, "", {"patch": ""})

    def tasks(self) -> list[dict[str, Any]]:
        """The synthetic tasks."""
        return [{"id": f"bench-{i}", "status": "running"} for i in range(self.count)]

    def subscribe(self, callback: Any, *, replay: bool = True) -> Any:
        """Start producing once someone listens."""
        self.callback = callback
        asyncio.get_running_loop().create_task(self._produce())
        return lambda: None

    def _emit(self, task_id: str, type_: str, data: dict[str, Any]) -> None:
        from codex_tui.protocol import Event

        seq = self.seqs.get(task_id, 0) + 1
        self.seqs[task_id] = seq
        self.callback(Event(type_, task_id, seq, data))

    async def _produce(self) -> None:
        from codex_tui import protocol as p

        ids = [f"bench-{i}" for i in range(self.count)]
        for number, task_id in enumerate(ids, 1):
            self._emit(task_id, p.TASK_CREATED, {"title": f"bench task {number}", "prompt": "stream logs"})
            self._emit(task_id, p.TASK_STATUS, {"status": "running"})
            item = {"id": "cmd", "type": p.ITEM_COMMAND, "command": "yes | head", "status": "in_progress"}
            self._emit(task_id, p.ITEM_STARTED, {"item": item})
        tick = 1 / 50
        per_tick = max(1, round(self.rate * tick))
        start = time.perf_counter()
        line = 0
        while time.perf_counter() - start < self.seconds:
            for number, task_id in enumerate(ids):
                text = "".join(
                    f"line {line + k:08d} of task {number} lorem ipsum dolor sit amet\n"
                    for k in range(per_tick)
                )
                self._emit(task_id, p.OUTPUT_DELTA, {"item_id": "cmd", "stream": "stdout", "text": text})
                self.lines_sent += per_tick
            line += per_tick
            await asyncio.sleep(max(0.0, start + (line / per_tick) * tick - time.perf_counter()))


def run_child(tasks: int, rate: int, seconds: float) -> int:
    """The app itself, on the real terminal driver, with the log pane shown."""
    from codex_tui.config import Config
    from codex_tui.tui.app import CodexApp

    home = Path(os.environ["CODEX_TUI_HOME"])
    source = SyntheticSource(tasks, rate, seconds)
    app = CodexApp(Config(home=home), source, repo=home)
    app.call_later(app.action_show_pane, "log")  # on screen in both layouts (tabs: the log tab)
    app.call_later(lambda: app.call_after_refresh(app.action_focus_composer))  # keys go to the composer
    app.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the measures and write bench/results/tui.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rate", type=int, default=5000, help="log lines per second per task")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3, help="first-paint launches")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.tasks, args.rate, args.seconds)
    results = {
        "first_paint": measure_first_paint(args.runs),
        "streaming": measure_streaming(args.tasks, args.rate, args.seconds),
    }
    results["pass"] = all(r["pass"] for r in results.values() if isinstance(r, dict))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
