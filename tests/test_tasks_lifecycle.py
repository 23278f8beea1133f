"""A task's life: approvals, steering, interrupt, cancel, mode changes, and resume after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from codex_tui import protocol as p
from codex_tui.process import process_alive, process_start_ticks
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.store import RolloutStore, TaskRecord
from tests.test_tasks_support import (
    EventLog,
    add_file_patch,
    patch_call,
    scenario,
    scripted_config,
    shell_call,
    started_manager,
    submit,
)

ROOT = Path(__file__).resolve().parents[1]


def escalated(name: str, calls: int = 1) -> dict[str, object]:
    """`calls` responses each asking for an escalated command, then a final answer."""
    turns: list[dict[str, object]] = [
        {
            "tool_calls": [
                shell_call(
                    "sh",
                    "-c",
                    f"echo escalated-{i}",
                    with_escalated_permissions=True,
                    justification=f"reason {i}",
                )
            ]
        }
        for i in range(calls)
    ]
    return scenario(name, *turns, {"text": "finished"})


def long_command(name: str) -> dict[str, object]:
    """A command that says it started, runs until interrupted, then a final answer for the next turn."""
    return scenario(
        name,
        {"tool_calls": [shell_call("sh", "-c", "echo started; exec sleep 30", timeout_ms=60_000)]},
        {"text": "picked up again"},
    )


def command_running(event: p.Event) -> bool:
    """The long command printed its first line: it is really running (not still being spawned)."""
    return event.type == p.OUTPUT_DELTA and "started" in event.data["text"]


async def _approve_when_asked(manager: object, log: EventLog, task_id: str, decision: str) -> p.Event:
    request = await log.until(lambda e: e.task_id == task_id and e.type == p.APPROVAL_REQUESTED)
    await log.until(lambda e: e.task_id == task_id and e.data.get("status") == "waiting_approval")
    result = await manager.submit(  # type: ignore[attr-defined]
        p.Op(p.OP_APPROVE, task_id, {"request_id": request.data["request_id"], "decision": decision})
    )
    assert result.ok, result.message
    return request


async def test_approved_escalation_runs_the_command(git_repo: Path, isolated_home: Path) -> None:
    async with (
        ScriptedServer([escalated("esc")]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "escalate", model="scripted:esc")
        request = await _approve_when_asked(manager, log, task_id, "approve")
        assert await manager.wait_for(task_id, timeout=30) == "ready"
    assert request.data["kind"] == "command" and "echo escalated-0" in str(request.data["command"])
    assert log.statuses(task_id).count("waiting_approval") == 1
    [resolved] = log.of(task_id, p.APPROVAL_RESOLVED)
    assert resolved.data == {"request_id": request.data["request_id"], "decision": "approve"}
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert command["exit_code"] == 0 and "escalated-0" in command["aggregated_output"]


async def test_approve_for_task_is_remembered_for_later_requests(git_repo: Path, isolated_home: Path) -> None:
    async with (
        ScriptedServer([escalated("twice", calls=2)]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "escalate twice", model="scripted:twice")
        await _approve_when_asked(manager, log, task_id, "approve_task")
        assert await manager.wait_for(task_id, timeout=30) == "ready"
    assert len(log.of(task_id, p.APPROVAL_REQUESTED)) == 2
    assert [e.data["decision"] for e in log.of(task_id, p.APPROVAL_RESOLVED)] == [
        "approve_task",
        "approve_task",
    ]
    assert log.statuses(task_id).count("waiting_approval") == 1
    assert [c["exit_code"] for c in log.items(task_id, p.ITEM_COMMAND)] == [0, 0]


async def test_denied_escalation_is_declined(git_repo: Path, isolated_home: Path) -> None:
    async with (
        ScriptedServer([escalated("deny")]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "escalate", model="scripted:deny")
        await _approve_when_asked(manager, log, task_id, "deny")
        assert await manager.wait_for(task_id, timeout=30) == "ready"
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert command["status"] == "declined"
    assert "escalated-0" not in command["aggregated_output"]


async def test_policy_never_denies_without_asking(git_repo: Path, isolated_home: Path) -> None:
    async with ScriptedServer([escalated("never")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo, approval_policy="never") as (manager, log):
            [task_id] = await submit(manager, "escalate", model="scripted:never")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
    assert "waiting_approval" not in log.statuses(task_id)
    [resolved] = log.of(task_id, p.APPROVAL_RESOLVED)
    assert resolved.data["decision"] == "deny"
    assert [c["status"] for c in log.items(task_id, p.ITEM_COMMAND)] == ["declined"]


async def test_interrupt_stops_the_command_and_the_task_takes_a_follow_up(
    git_repo: Path, isolated_home: Path
) -> None:
    async with (
        ScriptedServer([long_command("long")]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "run forever", model="scripted:long")
        await log.until(command_running)
        started = time.monotonic()
        assert (await manager.submit(p.Op(p.OP_INTERRUPT, task_id))).ok
        assert await manager.wait_for(task_id, timeout=10) == "ready"
        assert time.monotonic() - started < 5
        assert manager.tasks()[0]["message"] == "interrupted"
        assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "go on"}))).ok
        assert await manager.wait_for(task_id, timeout=30) == "ready"
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert command["status"] == "failed"
    assert log.items(task_id, p.ITEM_AGENT_MESSAGE)[-1]["text"] == "picked up again"
    kinds = [e.data["kind"] for e in log.of(task_id, p.USER_MESSAGE)]
    assert kinds == ["prompt", "follow_up"]


async def test_steering_a_running_task_joins_its_turn(git_repo: Path, isolated_home: Path) -> None:
    slow = scenario(
        "slow",
        {"tool_calls": [shell_call("sleep", "0.5")]},
        {"text": "steered answer"},
    )
    async with (
        ScriptedServer([slow]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "slow one", model="scripted:slow")
        await log.until(lambda e: e.type == p.ITEM_STARTED and e.data["item"]["type"] == p.ITEM_COMMAND)
        steer = await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "also mind the docs"}))
        assert steer.ok and "steer" in steer.message
        assert await manager.wait_for(task_id, timeout=30) == "ready"
    messages = [(e.data["kind"], e.data["text"]) for e in log.of(task_id, p.USER_MESSAGE)]
    assert messages == [("prompt", "slow one"), ("steer", "also mind the docs")]
    assert len(log.of(task_id, p.TURN_STARTED)) == 1


async def test_cancel_stops_running_and_queued_tasks_for_good(git_repo: Path, isolated_home: Path) -> None:
    async with ScriptedServer([long_command("c1"), long_command("c2")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, max_parallel_tasks=1)
        async with started_manager(cfg, git_repo) as (manager, log):
            [running] = await submit(manager, "first", model="scripted:c1")
            [queued] = await submit(manager, "second", model="scripted:c2")
            await log.until(command_running)
            assert (await manager.submit(p.Op(p.OP_CANCEL, queued))).ok
            assert (await manager.submit(p.Op(p.OP_CANCEL, running))).ok
            assert await manager.wait_for(running, timeout=10) == "cancelled"
            follow = await manager.submit(p.Op(p.OP_USER_MESSAGE, running, {"text": "again"}))
            assert not follow.ok and "cancelled" in follow.message
    assert log.statuses(queued) == ["queued", "cancelled"]
    assert log.statuses(running)[-1] == "cancelled"


async def test_mode_change_takes_effect_on_the_next_turn(git_repo: Path, isolated_home: Path) -> None:
    two = scenario(
        "modes",
        {"tool_calls": [patch_call(add_file_patch("first.txt", "1"))]},
        {"text": "one"},
        {"tool_calls": [shell_call("sh", "-c", "echo nope > second.txt")]},
        {"text": "two"},
    )
    async with (
        ScriptedServer([two]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, log),
    ):
        [task_id] = await submit(manager, "modes", model="scripted:modes", mode="auto")
        await manager.wait_for(task_id, timeout=30)
        assert (await manager.submit(p.Op(p.OP_SET_MODE, task_id, {"mode": "read-only"}))).ok
        assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "write more"}))).ok
        assert await manager.wait_for(task_id, timeout=30) == "ready"
        files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
    infos = [e.data["message"] for e in log.of(task_id, p.SANDBOX_INFO)]
    assert len(infos) == 2 and infos[0] != infos[1]
    assert [f["path"] for f in files] == ["first.txt"]
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert command["exit_code"] != 0


CRASHING_APP = """
import asyncio, sys
from pathlib import Path
from codex_tui import protocol as p
from codex_tui.tasks.manager import TaskManager
from tests.test_tasks_support import scripted_config

async def main() -> None:
    home, base_url, repo = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    manager = TaskManager(scripted_config(home, base_url), repo=repo)
    await manager.start()
    result = await manager.submit(p.Op(p.OP_SUBMIT, data={"prompt": "long job", "model": "scripted:crash"}))
    print(result.data["task_ids"][0], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _wait_for_line(path: Path, needle: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{needle!r} never appeared in {path}")


def _kill_tree(pid: int) -> None:
    parent = psutil.Process(pid)
    children = parent.children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


async def test_task_cut_off_by_a_killed_app_is_resumed_and_its_diff_recounted(
    git_repo: Path, isolated_home: Path
) -> None:
    crash = scenario(
        "crash",
        {
            "tool_calls": [
                patch_call(add_file_patch("before.txt", "written before the crash")),
                shell_call("sleep", "30", timeout_ms=60_000),
            ]
        },
        {"text": "resumed and finished"},
    )
    async with ScriptedServer([crash]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        app = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CRASHING_APP, str(isolated_home), srv.base_url, str(git_repo),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert app.stdout is not None
        task_id = (await asyncio.wait_for(app.stdout.readline(), 20)).decode().strip()
        rollout = cfg.data_dir / "rollouts" / f"{task_id}.jsonl"
        await _wait_for_line(rollout, '"command":"sleep 30"')
        await _wait_for_line(cfg.data_dir / "rollouts" / f"{task_id}.history.json", "tool_call")
        _kill_tree(app.pid)
        await app.wait()
        seq_before = max(p.Event.from_json(line).seq for line in rollout.read_text().splitlines())
        # What the cut-off command wrote before the kill: no diff was ever computed for it.
        (cfg.data_dir / "worktrees" / task_id / "during.txt").write_text("written by the command\n")

        async with started_manager(cfg, git_repo) as (manager, log):
            [summary] = manager.tasks()
            assert (summary["id"], summary["status"], summary["message"]) == (
                task_id,
                "failed",
                "interrupted: the app stopped",
            )
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "carry on"}))).ok
            assert await manager.wait_for(task_id, timeout=30) == "ready"
            [summary] = manager.tasks()  # the stats as saved, before anyone asks for the diff
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
    assert (summary["added"], summary["removed"]) == (2, 0), "the resumed turn recounts the checkout"
    assert [f["path"] for f in files] == ["before.txt", "during.txt"]
    assert log.items(task_id, p.ITEM_AGENT_MESSAGE)[-1]["text"] == "resumed and finished"
    seqs = [p.Event.from_json(line).seq for line in rollout.read_text().splitlines()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and max(seqs) > seq_before
    history = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())
    assert any(item.get("type") == "tool_result" and "aborted" in item["output"] for item in history)


async def test_a_reused_pid_does_not_pass_for_the_app_that_crashed(
    git_repo: Path, isolated_home: Path
) -> None:
    """A task left running by a crashed app is resumable even if its pid now belongs to another process."""
    cfg = scripted_config(isolated_home, "http://127.0.0.1:9/v1")
    stranger = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        store = RolloutStore(cfg.data_dir)
        await store.open()
        now = time.time()
        for task_id, start in (("t-reused", "1"), ("t-live", process_start_ticks(stranger.pid))):
            record = TaskRecord(task_id, task_id, "prompt", str(git_repo), now, now, status="running")
            record.owner_pid, record.owner_start = stranger.pid, start
            store.put(record)
        await store.close()
        async with started_manager(cfg, git_repo) as (manager, _log):
            tasks = {t["id"]: t for t in manager.tasks()}
    finally:
        stranger.kill()
        await stranger.wait()
    assert (tasks["t-reused"]["status"], tasks["t-reused"]["message"]) == (
        "failed",
        "interrupted: the app stopped",
    )
    assert "t-live" not in tasks, "a task another live app runs is not ours to touch"


def test_process_alive_checks_the_start_time_when_it_was_recorded() -> None:
    me = os.getpid()
    assert process_alive(me) and process_alive(me, process_start_ticks(me))
    assert not process_alive(me, "1")
    assert not process_alive(0)
