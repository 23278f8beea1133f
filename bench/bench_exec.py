"""A whole headless task, as a user runs it: `codex-tui exec --json` on the Docker backend.

    .venv/bin/python bench/bench_exec.py [--runs 7]

The scripted 5-turn task of issue 11 (ls, apply_patch, cat, update_plan, answer) against the
scripted model server, in a fresh process each run. The JSON lines are timestamped as they arrive,
so each run gives a breakdown:

- start → thread.started (imports, manager start),
- thread.started → turn.started (checkout, sandbox object, model client; the container starts in
  the background from here),
- turn.started → first command started (first model answer; the command waits for the container),
- per command (item.started → item.completed of the two shell commands),
- turn.completed → process exit.

Budgets (issue 11): median wall ≤ 1.3 s; median turn.completed → exit ≤ 0.2 s. The machine is
shared: read the figures next to the others of the same run.

Writes bench/results/exec.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codex_tui.scripted import ScriptedServer

RESULTS = Path(__file__).resolve().parent / "results" / "exec.json"
ROOT = Path(__file__).resolve().parents[1]
BUDGET_WALL_S = 1.3
BUDGET_EXIT_S = 0.2
SCENARIO = {
    "name": "five",
    "turns": [
        {"tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]},
        {
            "tool_calls": [
                {"name": "apply_patch", "input": "*** Begin Patch\n*** Add File: b.txt\n+hi\n*** End Patch\n"}
            ]
        },
        {"tool_calls": [{"name": "shell", "arguments": {"command": ["cat", "b.txt"]}}]},
        {
            "tool_calls": [
                {"name": "update_plan", "arguments": {"plan": [{"step": "check", "status": "completed"}]}}
            ]
        },
        {"text": "All done."},
    ],
}


def make_repo(folder: Path) -> Path:
    """A small committed repository."""
    repo = folder / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("hello\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"}
    env["GIT_COMMITTER_EMAIL"] = "b@x"
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


def one_run(base_url: str, repo: Path, home: Path) -> dict[str, float]:
    """One `codex-tui exec --json` run: the arrival time of each event and of the exit."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"CODEX_TUI_HOME": str(home), "CI": "true"})
    argv = [
        sys.executable, "-m", "codex_tui", "exec", "--json", "-C", str(repo),
        "-c", "model_provider=bench", "-c", f"model_providers.bench.base_url={base_url}",
        "-c", "model_providers.bench.wire_api=responses", "-m", "scripted:five",
        "--sandbox-backend", "docker", "go",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    marks: dict[str, float] = {}
    commands: list[tuple[float, float]] = []
    started: float | None = None
    for line in proc.stdout:
        now = time.perf_counter() - start
        event = json.loads(line)
        kind, item = event["type"], event.get("item") or {}
        marks.setdefault(kind, now)
        if item.get("type") == "command_execution":
            if kind == "item.started":
                started = now
                marks.setdefault("first_command", now)
            elif kind == "item.completed" and started is not None:
                commands.append((started, now))
        if kind == "turn.completed":
            marks["turn.completed"] = now
    code = proc.wait()
    marks["exit"] = time.perf_counter() - start
    if code != 0 or "turn.completed" not in marks:
        raise SystemExit(f"the benchmark task failed (exit {code})")
    return {
        "wall_s": marks["exit"],
        "to_thread_started_s": marks["thread.started"],
        "to_turn_started_s": marks["turn.started"] - marks["thread.started"],
        "to_first_command_s": marks["first_command"] - marks["turn.started"],
        "command_ms": statistics.median((b - a) * 1000 for a, b in commands),
        "exit_after_turn_s": marks["exit"] - marks["turn.completed"],
    }


def main() -> None:
    """Run the task N times (after one warm-up) and write the medians with their budgets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        folder = Path(tmp)
        repo = make_repo(folder)
        server = ScriptedServer([SCENARIO]).start_in_thread()
        try:
            one_run(server.base_url, repo, folder / "home-warmup")
            runs = [one_run(server.base_url, repo, folder / f"home-{n}") for n in range(args.runs)]
        finally:
            server.stop()
    medians = {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}
    result: dict[str, Any] = {
        "runs": args.runs,
        "scenario": "5 model turns: ls, apply_patch, cat, update_plan, answer (Docker backend)",
        "median": medians,
        "max_wall_s": round(max(r["wall_s"] for r in runs), 4),
        "budget_wall_s": BUDGET_WALL_S,
        "budget_exit_after_turn_s": BUDGET_EXIT_S,
        "pass": medians["wall_s"] <= BUDGET_WALL_S and medians["exit_after_turn_s"] <= BUDGET_EXIT_S,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not result["pass"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
