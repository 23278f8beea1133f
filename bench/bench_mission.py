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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tui import SyntheticSource, Terminal, streamed_keys  # noqa: E402

from codex_tui.config import Config  # noqa: E402
from codex_tui.tui.app import CodexApp  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mission.json"
KEYS = ((b"\x1b[C", "2/{n}"), (b"\x1b[D", "1/{n}"))
"""Right then left: mission control's title shows the focused tile's position."""


def measure(tasks: int, rate: int, seconds: float) -> dict[str, Any]:
    """Run the app with mission control open in a pty; move between tiles; sample RSS."""

    def press(term: Terminal, turn: int) -> float | None:
        key, mark = KEYS[turn % 2]
        sent = term.write(key)
        seen = term.first_after(mark.format(n=tasks).encode(), sent, 2.0)
        time.sleep(0.2)
        return None if seen is None else (seen - sent) * 1000

    load, ready = (tasks, rate, seconds), f"{tasks} tasks".encode()
    missed, summary = streamed_keys(Path(__file__), load, ready, "mission control's tasks", press)
    return {
        "tiles": tasks,
        "lines_per_s_per_task": rate,
        "seconds": seconds,
        "keys_not_shown": missed,
        **summary,
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
