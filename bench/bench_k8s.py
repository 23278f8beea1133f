"""The Kubernetes backend on the local test cluster: task ready, per-command cost, a 50 MB sync.

    scripts/k8s/up.sh && .venv/bin/python bench/bench_k8s.py [--runs 5]

- ready: `KubernetesSandbox.start()` for a small checkout (pod created, running, workspace copied in),
- command: one `true` through `exec` (host scan and push check, the command, the pod's manifest),
- sync in: start with a 50 MB checkout (500 files of 100 KB, incompressible),
- sync back: a command that rewrites all 500 files, with their copy back to the host.

Budgets, from the figures measured on this machine (shared/notes/kubernetes-here.md: pod Running
0.7–1.7 s, an exec 60–80 ms, 54 MB into a pod 1.5–2.5 s and out 0.6–1.2 s): ready ≤ 3 s (pod
start + one exec with a small tar), command ≤ 0.3 s (two execs and a host scan), sync in ≤ 5 s
(pod start + the 50 MB stream), sync back ≤ 4 s (write 50 MB in the pod + manifest + stream +
writes on the host). The machine is shared: read the figures next to the others of the same run.

Writes bench/results/k8s.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.config import KubernetesSettings
from codex_tui.sandbox.base import SandboxLimits, SandboxSpec
from codex_tui.sandbox.kubernetes import KubernetesSandbox

RESULTS = Path(__file__).resolve().parent / "results" / "k8s.json"
KUBECONFIG = "/var/lib/codex-tui-k8s/kubeconfig"
BUDGETS = {"ready_s": 3.0, "command_s": 0.3, "sync_in_50mb_s": 5.0, "sync_back_50mb_s": 4.0}
FILES, FILE_KB = 500, 100


def _checkout(root: Path, files: int, size_kb: int) -> Path:
    root.mkdir(parents=True)
    for index in range(files):
        folder = root / f"d{index % 20}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{index}.bin").write_bytes(os.urandom(size_kb * 1024))
    if needs_chown():
        for path in [root, *root.rglob("*")]:
            os.lchown(path, *sandbox_ids())
    return root


def _sandbox(workspace: Path, settings: KubernetesSettings, name: str) -> KubernetesSandbox:
    limits = SandboxLimits(cpus=1, memory_mb=1024, disk_mb=1024)
    spec = SandboxSpec(task_id=name, workspace=workspace, image="codex-tui-sandbox:latest", limits=limits)
    spec.kubernetes = settings
    return KubernetesSandbox(spec)


async def _timed_start(sandbox: KubernetesSandbox) -> float:
    began = time.perf_counter()
    await sandbox.start()
    return time.perf_counter() - began


async def run(runs: int) -> dict[str, Any]:
    """Measure every figure `runs` times; medians and the raw samples."""
    settings = KubernetesSettings(kubeconfig=KUBECONFIG)
    samples: dict[str, list[float]] = {key: [] for key in BUDGETS}
    with tempfile.TemporaryDirectory() as tmp:
        small = _checkout(Path(tmp) / "small", 20, 4)
        big = _checkout(Path(tmp) / "big", FILES, FILE_KB)
        for attempt in range(runs):
            sandbox = _sandbox(small, settings, f"bench-small-{attempt}")
            try:
                samples["ready_s"].append(await _timed_start(sandbox))
                for _ in range(5):
                    began = time.perf_counter()
                    await sandbox.exec(["true"], timeout_s=60)
                    samples["command_s"].append(time.perf_counter() - began)
            finally:
                await sandbox.stop()
            sandbox = _sandbox(big, settings, f"bench-big-{attempt}")
            try:
                samples["sync_in_50mb_s"].append(await _timed_start(sandbox))
                rewrite = "for f in d*/f*.bin; do head -c 102400 /dev/urandom > $f; done"
                began = time.perf_counter()
                result = await sandbox.exec(["sh", "-c", rewrite], timeout_s=120)
                samples["sync_back_50mb_s"].append(time.perf_counter() - began)
                assert result.exit_code == 0 and not result.note, result
            finally:
                await sandbox.stop()
    medians = {key: round(statistics.median(values), 3) for key, values in samples.items()}
    return {
        "medians": medians,
        "budgets": BUDGETS,
        "within_budget": {key: medians[key] <= BUDGETS[key] for key in BUDGETS},
        "samples": {key: [round(v, 3) for v in values] for key, values in samples.items()},
        "load_average": os.getloadavg(),
    }


def main() -> int:
    """Run the benchmark, print the medians and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not os.path.exists(KUBECONFIG):
        print("bench_k8s: skipped, no local cluster (run scripts/k8s/up.sh first)", file=sys.stderr)
        return 0
    results = asyncio.run(run(args.runs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results["medians"].items():
        mark = "ok" if results["within_budget"][key] else "OVER"
        print(f"{key:>18}: {value:6.3f} s (budget {BUDGETS[key]} s) {mark}")
    return 0 if all(results["within_budget"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
