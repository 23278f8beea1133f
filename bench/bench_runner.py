"""Per-command overhead: `docker exec` per command (what codex-tui does) vs a long-lived command
runner inside the container fed over one attached stream (issue 11's question).

    .venv/bin/python bench/bench_runner.py [--runs 40]

Both run `true` in the same hardened sandbox container (DockerSandbox, as tasks get it):
- exec: `DockerSandbox.exec(["true"])` — a new exec per command, run as the sandbox uid, followed
  by the `kill -KILL -1` clean-up that ends whatever the command left behind;
- runner: one `docker exec -i` of a shell loop started once, as the same uid; each command is a
  line on its stdin and its exit code comes back as a line on stdout.

The decision it informs (recorded in the results and in ARCHITECTURE.md): a runner is adopted only
if a short command drops under 10 ms **without weakening isolation**. Writes bench/results/runner.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.sandbox.base import SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.image import DEFAULT_IMAGE, ensure_default_image

RESULTS = Path(__file__).resolve().parent / "results" / "runner.json"
TARGET_MS = 10.0
RUNNER = 'while IFS= read -r line; do sh -c "$line" >/dev/null 2>&1; echo "rc=$?"; done'


async def measure(runs: int) -> dict[str, object]:
    """Median milliseconds per `true` for both ways, in the same container."""
    await ensure_default_image(DEFAULT_IMAGE)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        workspace = Path(tmp)
        if needs_chown():
            os.chown(workspace, *sandbox_ids())
        spec = SandboxSpec(task_id=f"bench-runner-{os.getpid()}", workspace=workspace, image=DEFAULT_IMAGE)
        sandbox = DockerSandbox(spec)
        await sandbox.start()
        try:
            exec_ms = []
            for _ in range(runs):
                start = time.perf_counter()
                result = await sandbox.exec(["true"], timeout_s=10)
                exec_ms.append((time.perf_counter() - start) * 1000)
                assert result.exit_code == 0
            runner_ms = await asyncio.to_thread(_runner_times, str(sandbox.container_id), runs)
        finally:
            await sandbox.stop()
    exec_median = statistics.median(exec_ms)
    runner_median = statistics.median(runner_ms)
    return {
        "runs": runs,
        "docker_exec_per_command_ms": round(exec_median, 2),
        "runner_per_command_ms": round(runner_median, 2),
        "speedup": round(exec_median / runner_median, 1),
        "target_ms": TARGET_MS,
        "runner_meets_target": runner_median < TARGET_MS,
        "adopted": False,
        "why_not_adopted": (
            "a runner that lives across commands runs as the sandbox uid beside them: a command can "
            "kill it, replace it or leave a process that feeds it, and the `kill -KILL -1` clean-up "
            "that ends everything a command leaves behind would end it too (another uid needs a "
            "setuid capability, which every sandbox drops). The design that keeps isolation — one "
            "runner per command, pre-started while the model thinks, ended by that command's "
            "clean-up — is left for a follow-up; docker exec stays."
        ),
    }


def _runner_times(container: str, runs: int) -> list[float]:
    uid, gid = sandbox_ids()
    proc = subprocess.Popen(
        ["docker", "exec", "-i", "-u", f"{uid}:{gid}", container, "sh", "-c", RUNNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stdout is not None
    times = []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            proc.stdin.write("true\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            times.append((time.perf_counter() - start) * 1000)
            assert line.strip() == "rc=0", line
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    return times


def main() -> None:
    """Measure and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    result = asyncio.run(measure(args.runs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
