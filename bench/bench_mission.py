"""Mission control with 16 live tiles, measured from outside through a real pseudo-terminal, with budgets.

    .venv/bin/python bench/bench_mission.py [--tasks 16] [--rate 5000] [--seconds 10]

The app (real driver, real terminal output) is fed by the synthetic source of bench_tui.py: 16
running tasks each printing 5,000 log lines/s for 10 s, with mission control open (every task a
tile showing its log tail, refreshed after each 30 Hz flush). While it streams, an arrow key is
sent every 200 ms; key-to-screen latency is the time from writing the key to the pty until the
terminal output shows the new position in mission control's title (`2/16` after →, `1/16` after ←).
Peak RSS of the app process is sampled throughout.

Writes bench/results/mission.json: each measure with its budget and pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tui import SyntheticSource, Terminal, child_env, key_latency_summary  # noqa: E402

from codex_tui.config import Config  # noqa: E402
from codex_tui.tui.app import CodexApp  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mission.json"
KEYS = ((b"\x1b[C", "2/{n}"), (b"\x1b[D", "1/{n}"))
"""Right then left: mission control's title shows the focused tile's position."""


def measure(tasks: int, rate: int, seconds: float) -> dict[str, Any]:
    """Run the app with mission control open in a pty; move between tiles; sample RSS."""
    with tempfile.TemporaryDirectory(prefix="codex-tui-bench-") as tmp:
        argv = [sys.executable, str(Path(__file__).resolve()), "--child"]
        argv += ["--tasks", str(tasks), "--rate", str(rate), "--seconds", str(seconds)]
        term = Terminal.spawn(argv, child_env(Path(tmp)))
        rss: list[int] = []
        latencies: list[float] = []
        missed = 0
        try:
            if term.first_after(f"{tasks} tasks".encode(), 0, 30) is None:
                raise RuntimeError("mission control never showed the tasks")
            process = psutil.Process(term.proc.pid)
            time.sleep(1.0)
            end = time.perf_counter() + seconds - 1.5
            turn = 0
            while time.perf_counter() < end:
                key, mark = KEYS[turn % 2]
                turn += 1
                rss.append(process.memory_info().rss)
                sent = term.write(key)
                seen = term.first_after(mark.format(n=tasks).encode(), sent, 2.0)
                if seen is None:
                    missed += 1
                else:
                    latencies.append((seen - sent) * 1000)
                time.sleep(0.2)
                rss.append(process.memory_info().rss)
        finally:
            term.close()
        output = sum(len(data) for _, data in term.chunks)
    return {
        "tiles": tasks,
        "lines_per_s_per_task": rate,
        "seconds": seconds,
        "keys_not_shown": missed,
        **key_latency_summary(latencies, missed, rss, output),
    }


def run_child(tasks: int, rate: int, seconds: float) -> int:
    """The app itself, on the real terminal driver, with mission control open."""
    home = Path(os.environ["CODEX_TUI_HOME"])
    app = CodexApp(Config(home=home), SyntheticSource(tasks, rate, seconds), repo=home)
    app.call_later(app.action_mission)
    app.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the measure and write bench/results/mission.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--rate", type=int, default=5000, help="log lines per second per task")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.tasks, args.rate, args.seconds)
    results: dict[str, Any] = {"mission_control": measure(args.tasks, args.rate, args.seconds)}
    results["pass"] = results["mission_control"]["pass"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
