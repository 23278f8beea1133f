"""A data folder that fills up or turns read-only mid-task: the task fails saying why, never "running".

The data folder is a real size-limited tmpfs mounted by the test (root only); the task's own command
fills it, or the test remounts it read-only while a command runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.protocol import Event
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.manager import TaskManager
from codex_tui.tasks.store import RolloutStore, iter_rollout
from tests.test_exec import provider_flags, run_cli
from tests.test_tasks_support import scenario, scripted_config, shell_call, started_manager, submit

KIB = 1024


def mount_tmpfs(path: Path, size: str) -> None:
    """Mount a tmpfs of `size` at `path` (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def remount(path: Path, mode: str) -> None:
    """Remount the tmpfs at `path` read-only ("ro") or writable ("rw")."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


@pytest.fixture
def small_home(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs used as CODEX_TUI_HOME (so as the data folder too).

    Checkouts get no filesystem of their own here (`sandbox.disk_mb = 0`), so a task's writes land
    in the data folder itself: the case this file is about.
    """
    home = tmp_path / "home"
    mount_tmpfs(home, "24m")
    (home / "config.toml").write_text("[sandbox]\ndisk_mb = 0\n")
    yield home
    subprocess.run(["mount", "-o", "remount,rw", str(home)], capture_output=True)
    subprocess.run(["umount", "-l", str(home)], capture_output=True)


def index_statuses(data_dir: Path) -> dict[str, str]:
    """Task id → status as index.json on disk says."""
    rows = json.loads((data_dir / "index.json").read_text())["tasks"]
    return {row["id"]: row["status"] for row in rows}


def assert_rollout_lines_intact(path: Path) -> None:
    """Every line of a rollout is a whole event: a failed write left no torn line behind."""
    for line in path.read_text().splitlines():
        Event.from_json(line)


FILLS_DISK = scenario(
    "fills-disk",
    {"tool_calls": [shell_call("bash", "-c", "head -c 200M /dev/zero > fill; echo wrote")]},
    {"text": "Wrote the file."},
)


def exec_filling_the_disk(git_repo: Path, home: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """`codex-tui exec --json` of a task whose command fills the data folder; (result, model URL)."""
    server = ScriptedServer([FILLS_DISK]).start_in_thread()
    try:
        flags = provider_flags(server.base_url, "scripted:fills-disk")
        result = run_cli("exec", "write a big file", "-C", str(git_repo), "--json", *flags, home=home)
    finally:
        server.stop()
    return result, server.base_url


def test_exec_fails_clearly_when_the_task_fills_the_data_folder(git_repo: Path, small_home: Path) -> None:
    result, _base_url = exec_filling_the_disk(git_repo, small_home)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    task_id = events[0]["thread_id"]
    [error] = [e for e in events if e["type"] == "error"]
    assert "could not save the task" in error["message"] and "No space left on device" in error["message"]

    data = small_home / "data"
    assert_rollout_lines_intact(data / "rollouts" / f"{task_id}.jsonl")
    listing = run_cli("tasks", "list", home=small_home)
    assert "running" not in listing.stdout and f"{task_id}  failed" in listing.stdout, listing.stdout
    (data / "worktrees" / task_id / "fill").unlink()
    show = run_cli("tasks", "show", task_id, home=small_home)
    assert show.returncode == 0 and "failed" in show.stdout.splitlines()[0]


async def test_next_start_records_a_task_its_dead_process_could_not_save_as_failed(
    git_repo: Path, small_home: Path
) -> None:
    result, base_url = exec_filling_the_disk(git_repo, small_home)
    task_id = json.loads(result.stdout.splitlines()[0])["thread_id"]
    data = small_home / "data"
    assert index_statuses(data)[task_id] in ("running", "failed"), "the last status the full disk took"
    (data / "worktrees" / task_id / "fill").unlink()
    cfg = scripted_config(small_home, base_url, sandbox_disk_mb=0)
    manager = TaskManager(cfg, repo=git_repo)
    await manager.start()
    assert [t["status"] for t in manager.tasks()] == ["failed"]
    await manager.close()
    assert index_statuses(data)[task_id] == "failed"


SLOW = scenario(
    "slow",
    {"tool_calls": [shell_call("sleep", "3", timeout_ms=30_000)]},
    {"text": "Slept."},
)


async def test_task_fails_when_the_data_folder_turns_read_only_mid_command(
    git_repo: Path, small_home: Path
) -> None:
    async with ScriptedServer([SLOW]) as srv:
        cfg = scripted_config(small_home, srv.base_url, model="scripted:slow", sandbox_disk_mb=0)
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "sleep a while")
            await log.until(lambda e: e.type == p.ITEM_STARTED and e.data["item"]["type"] == p.ITEM_COMMAND)
            remount(small_home, "ro")
            status = await manager.wait_for(task_id, timeout=20)
            summary = next(t for t in manager.tasks() if t["id"] == task_id)
            remount(small_home, "rw")
    assert status == "failed"
    assert "could not save the task" in summary["message"] and "Read-only file system" in summary["message"]
    assert [e.data["status"] for e in log.of(task_id, p.TASK_STATUS)][-1] == "failed"
    assert index_statuses(cfg.data_dir)[task_id] == "failed", "written once the folder was writable again"
    assert_rollout_lines_intact(cfg.data_dir / "rollouts" / f"{task_id}.jsonl")


async def test_a_batch_cut_off_by_a_full_disk_is_rewritten_whole_later(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mount_tmpfs(data, "256k")
    try:
        errors: list[str] = []
        store = RolloutStore(data, flush_interval_s=60, on_error=lambda _tid, msg: errors.append(msg))
        await store.open()
        store.append(Event(p.NOTE, "t-1", 1, {"message": "first"}))
        await store.flush()
        stats = os.statvfs(data)
        filler = data / "filler"
        filler.write_bytes(b"f" * (stats.f_bavail * stats.f_frsize - 16 * KIB))
        for seq in range(2, 40):  # ~40 KB in one batch: the disk takes only part of it
            store.append(Event(p.NOTE, "t-1", seq, {"message": "x" * 1000}))
        await store.flush()
        await store.flush()
        assert len(errors) == 1 and "No space left on device" in errors[0]
        assert [e.seq for e in iter_rollout(store.rollout_path("t-1"))] == [1], "the cut batch was taken back"
        filler.unlink()
        await store.close()
        assert_rollout_lines_intact(store.rollout_path("t-1"))
        assert [e.seq for e in await store.read_events("t-1")] == list(range(1, 40))
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True)
