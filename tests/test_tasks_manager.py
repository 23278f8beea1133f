"""The task manager end to end: scripted model server, real git repos, the local sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.scripted import ScriptedServer
from tests.conftest import run_git
from tests.test_tasks_support import (
    add_file_patch,
    adds_file,
    patch_call,
    scenario,
    scripted_config,
    shell_call,
    started_manager,
    submit,
)


def _running_window(log_events: list[p.Event], task_id: str) -> tuple[float, float]:
    statuses = [
        (e.ts, e.data["status"]) for e in log_events if e.task_id == task_id and e.type == p.TASK_STATUS
    ]
    start = next(ts for ts, status in statuses if status == "running")
    end = next(ts for ts, status in statuses if status in p.TERMINAL_STATUSES)
    return start, end


async def test_four_tasks_run_at_once_and_each_diff_holds_only_its_change(
    git_repo: Path, isolated_home: Path
) -> None:
    names = [f"t{i}" for i in range(4)]
    scenarios = [adds_file(n, f"{n}.txt", delay_ms=400) for n in names]
    async with ScriptedServer(scenarios) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, max_parallel_tasks=4)
        async with started_manager(cfg, git_repo) as (manager, log):
            ids = [(await submit(manager, f"task {n}", model=f"scripted:{n}"))[0] for n in names]
            statuses = await asyncio.gather(*(manager.wait_for(i, timeout=30) for i in ids))
            assert statuses == ["ready"] * 4
            windows = [_running_window(log.events, i) for i in ids]
            assert max(start for start, _ in windows) < min(end for _, end in windows), windows
            for name, task_id in zip(names, ids, strict=True):
                diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
                assert [f["path"] for f in diff.data["files"]] == [f"{name}.txt"]
                assert f"made by {name}" in diff.data["patch"]
                assert diff.data["added"] == 1
    assert not (git_repo / "t0.txt").exists(), "the user's tree is untouched until apply"


async def test_parallel_limit_queues_the_rest_and_starts_them_in_order(
    git_repo: Path, isolated_home: Path
) -> None:
    names = [f"q{i}" for i in range(4)]
    async with ScriptedServer([adds_file(n, f"{n}.txt", delay_ms=200) for n in names]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, max_parallel_tasks=2)
        async with started_manager(cfg, git_repo) as (manager, log):
            ids = [(await submit(manager, f"task {n}", model=f"scripted:{n}"))[0] for n in names]
            await asyncio.gather(*(manager.wait_for(i, timeout=30) for i in ids))
    active: set[str] = set()
    most = 0
    started: list[str] = []
    for event in log.events:
        if event.type != p.TASK_STATUS:
            continue
        status = event.data["status"]
        if status == "starting":
            active.add(event.task_id)
            started.append(event.task_id)
        elif status in p.TERMINAL_STATUSES:
            active.discard(event.task_id)
        most = max(most, len(active))
    assert most == 2
    assert started == ids
    assert log.statuses(ids[3])[:2] == ["queued", "starting"]


async def test_attempts_create_sibling_tasks_with_different_results(
    git_repo: Path, isolated_home: Path
) -> None:
    scenarios = [adds_file(f"a{i}", f"attempt{i}.txt") for i in (1, 2, 3)]
    async with ScriptedServer(scenarios) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, log):
            result = await manager.submit(
                p.Op(
                    p.OP_SUBMIT,
                    data={
                        "prompt": "best of three",
                        "attempts": 3,
                        "models": ["scripted:a1", "scripted:a2", "scripted:a3"],
                    },
                )
            )
            assert result.ok
            ids = result.data["task_ids"]
            assert len(ids) == 3 and len(set(ids)) == 3
            await asyncio.gather(*(manager.wait_for(i, timeout=30) for i in ids))
            summaries = {s["id"]: s for s in manager.tasks()}
            created = [log.of(i, p.TASK_CREATED)[0].data for i in ids]
    assert {s["group_id"] for s in summaries.values()} == {result.data["group_id"]}
    assert [summaries[i]["attempt"] for i in ids] == [1, 2, 3]
    assert all(summaries[i]["attempts"] == 3 for i in ids)
    assert [c["model"] for c in created] == ["scripted:a1", "scripted:a2", "scripted:a3"]
    assert all(i.startswith("t-") for i in ids)


async def test_rollout_history_and_index_are_written(git_repo: Path, isolated_home: Path) -> None:
    async with ScriptedServer([adds_file("r", "r.txt", final="all done")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, _log):
            [task_id] = await submit(manager, "write r.txt", model="scripted:r", title="Write r")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
    rollout = cfg.data_dir / "rollouts" / f"{task_id}.jsonl"
    events = [p.Event.from_json(line) for line in rollout.read_text().splitlines()]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == p.TASK_CREATED
    assert events[-1].type == p.TASK_STATUS and events[-1].data["status"] == "ready"
    history = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())
    assert history[0]["role"] == "user" and history[-1]["role"] == "assistant"
    index = json.loads((cfg.data_dir / "index.json").read_text())
    [row] = [r for r in index["tasks"] if r["id"] == task_id]
    assert (row["title"], row["status"], row["added"], row["removed"]) == ("Write r", "ready", 1, 0)
    assert row["repo"] == str(git_repo.resolve())
    assert row["tokens"] > 0


async def test_replay_delivers_stored_events_in_order_then_live_ones(
    git_repo: Path, isolated_home: Path
) -> None:
    async with ScriptedServer([adds_file("a", "a.txt"), adds_file("b", "b.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, _log):
            [first] = await submit(manager, "a", model="scripted:a")
            await manager.wait_for(first, timeout=30)
        async with started_manager(cfg, git_repo) as (manager, _log):
            seen: list[p.Event] = []
            manager.subscribe(seen.append)
            [second] = await submit(manager, "b", model="scripted:b")
            await manager.wait_for(second, timeout=30)
            await asyncio.sleep(0.05)
    old = [e.seq for e in seen if e.task_id == first]
    new = [e.seq for e in seen if e.task_id == second]
    assert old == list(range(1, len(old) + 1)) and len(old) > 5
    assert new == list(range(1, len(new) + 1))
    assert seen[-1].task_id == second and seen[-1].data["status"] == "ready"


async def test_apply_to_tree_and_commit_to_branch_through_operations(
    git_repo: Path, isolated_home: Path
) -> None:
    async with ScriptedServer([adds_file("x", "x.txt"), adds_file("y", "y.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, _log):
            [x] = await submit(manager, "add x", model="scripted:x", title="Add x file")
            [y] = await submit(manager, "add y", model="scripted:y")
            await manager.wait_for(x, timeout=30)
            await manager.wait_for(y, timeout=30)
            dry = await manager.submit(p.Op(p.OP_APPLY, x, {"dry_run": True}))
            assert dry.ok and dry.data["applied"] == ["x.txt"]
            assert not (git_repo / "x.txt").exists()
            applied = await manager.submit(p.Op(p.OP_APPLY, x, {"branch": False}))
            assert applied.ok, applied.message
            assert (git_repo / "x.txt").read_text() == "made by x\n"
            branch = await manager.submit(p.Op(p.OP_APPLY, y, {"branch": True}))
            assert branch.ok, branch.message
            statuses = {s["id"]: s["status"] for s in manager.tasks()}
    assert statuses[x] == "applied" and statuses[y] == "applied"
    assert run_git(git_repo, "show", f"{branch.data['branch']}:y.txt") == "made by y\n"
    assert not (git_repo / "y.txt").exists()


async def test_diff_updated_follows_each_file_changing_tool_call(git_repo: Path, isolated_home: Path) -> None:
    steps = scenario(
        "steps",
        {"tool_calls": [patch_call(add_file_patch("a.txt", "one"))]},
        {
            "delay_ms": 500,
            "tool_calls": [shell_call("sh", "-c", "printf 'x\\ny\\n' > b.txt; sed -i 1d README.md")],
        },
        {"text": "done"},
    )
    async with ScriptedServer([steps]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "two edits", model="scripted:steps")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
    diffs = log.of(task_id, p.DIFF_UPDATED)
    shell_started = next(
        e.seq for e in log.of(task_id, p.ITEM_STARTED) if e.data["item"]["type"] == p.ITEM_COMMAND
    )
    first = diffs[0]
    assert first.seq < shell_started, "a diff follows the patch, before the next tool runs"
    assert [(f["path"], f["status"], f["added"], f["removed"]) for f in first.data["files"]] == [
        ("a.txt", "added", 1, 0)
    ]
    last = diffs[-1].data
    assert sorted((f["path"], f["added"], f["removed"]) for f in last["files"]) == [
        ("README.md", 0, 1),
        ("a.txt", 1, 0),
        ("b.txt", 2, 0),
    ]
    assert (last["added"], last["removed"]) == (3, 1)


async def test_undo_restores_files_and_history_of_the_last_turn(git_repo: Path, isolated_home: Path) -> None:
    two_turns = scenario(
        "two",
        {"tool_calls": [patch_call("*** Begin Patch\n*** Add File: one.txt\n+1\n*** End Patch\n")]},
        {"text": "first done"},
        {"tool_calls": [patch_call("*** Begin Patch\n*** Add File: two.txt\n+2\n*** End Patch\n")]},
        {"text": "second done"},
    )
    async with ScriptedServer([two_turns]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "first", model="scripted:two")
            await manager.wait_for(task_id, timeout=30)
            assert (await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "second please"}))).ok
            await manager.wait_for(task_id, timeout=30)
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
            assert sorted(f["path"] for f in files) == ["one.txt", "two.txt"]
            undo = await manager.submit(p.Op(p.OP_UNDO, task_id))
            assert undo.ok, undo.message
            files = (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"]
            assert [f["path"] for f in files] == ["one.txt"]
            assert log.of(task_id, p.DIFF_UPDATED)[-1].data["added"] == 1
            history = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())
            texts = json.dumps(history)
            assert "first done" in texts and "second please" not in texts and "second done" not in texts
            assert (await manager.submit(p.Op(p.OP_UNDO, task_id))).ok
            assert (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"] == []
            nothing = await manager.submit(p.Op(p.OP_UNDO, task_id))
            assert not nothing.ok and "nothing to undo" in nothing.message


async def test_folder_outside_git_fails_clearly_unless_allowed(tmp_path: Path, isolated_home: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hi\n")
    async with ScriptedServer([adds_file("n", "n.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, plain) as (manager, log):
            [task_id] = await submit(manager, "work here", model="scripted:n")
            assert await manager.wait_for(task_id, timeout=30) == "failed"
            [error] = log.of(task_id, p.ERROR)
            assert "not a git repository" in error.data["message"]
            assert "--allow-non-git" in error.data["message"]
        async with started_manager(cfg, plain, allow_non_git=True) as (manager, _log):
            [task_id] = await submit(manager, "work here", model="scripted:n")
            assert await manager.wait_for(task_id, timeout=30) == "ready"


async def test_docker_backend_without_an_engine_fails_the_task_with_one_clear_message(
    git_repo: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    async with ScriptedServer([adds_file("d", "d.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, sandbox_backend="docker")
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "needs docker", model="scripted:d")
            assert await manager.wait_for(task_id, timeout=30) == "failed"
            [error] = log.of(task_id, p.ERROR)
    message = error.data["message"]
    assert "Docker engine not reachable at unix:///nonexistent/docker.sock" in message
    assert "sudo apt-get install docker.io" in message and "--sandbox-backend local" in message
    assert "Traceback" not in message and "\n" not in message
    assert srv.model_requests() == []


async def test_auto_backend_without_an_engine_runs_locally_and_says_so(
    git_repo: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    async with ScriptedServer([adds_file("a", "a.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, sandbox_backend="auto")
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "anywhere", model="scripted:a")
            assert await manager.wait_for(task_id, timeout=30) == "ready"
    [note] = [e.data["message"] for e in log.of(task_id, p.NOTE) if e.data.get("level") == "warning"]
    assert "Docker engine not reachable" in note and "local backend" in note
    assert log.of(task_id, p.SANDBOX_INFO)[0].data["backend"] == "local"


async def test_model_failure_fails_only_that_task(git_repo: Path, isolated_home: Path) -> None:
    broken = scenario("broken", {"errors": [{"status": 500, "message": "scripted outage"}], "text": "never"})
    async with ScriptedServer([broken, adds_file("ok", "ok.txt", delay_ms=100)]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, log):
            [bad] = await submit(manager, "fails", model="scripted:broken")
            [good] = await submit(manager, "works", model="scripted:ok")
            assert await manager.wait_for(bad, timeout=30) == "failed"
            assert await manager.wait_for(good, timeout=30) == "ready"
            [summary] = [s for s in manager.tasks() if s["id"] == bad]
    assert "scripted outage" in summary["message"]
    assert "scripted outage" in log.of(bad, p.ERROR)[0].data["message"]


async def test_bad_operations_come_back_as_clear_errors(git_repo: Path, isolated_home: Path) -> None:
    async with ScriptedServer([]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, _log):
            checks = [
                (p.Op(p.OP_SUBMIT, data={"prompt": ""}), "needs a prompt"),
                (p.Op(p.OP_SUBMIT, data={"prompt": "x", "attempts": 9}), "attempts"),
                (p.Op(p.OP_SUBMIT, data={"prompt": "x", "mode": "yolo"}), "mode 'yolo'"),
                (p.Op(p.OP_SUBMIT, data={"prompt": "x", "images": ["/no/such.png"]}), "image not found"),
                (p.Op(p.OP_CANCEL, "t-nope"), "unknown task"),
                (p.Op("task.fly"), "unknown operation"),
            ]
            for op, expected in checks:
                result = await manager.submit(op)
                assert not result.ok and expected in result.message, (op, result)
            assert manager.tasks() == []


async def test_retry_and_archive(git_repo: Path, isolated_home: Path) -> None:
    async with ScriptedServer([adds_file("z", "z.txt")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, _log):
            [first] = await submit(manager, "make z", model="scripted:z")
            await manager.wait_for(first, timeout=30)
            retry = await manager.submit(p.Op(p.OP_RETRY, first))
            [second] = retry.data["task_ids"]
            assert await manager.wait_for(second, timeout=30) == "ready"
            assert (await manager.submit(p.Op(p.OP_ARCHIVE, first))).ok
            assert [s["id"] for s in manager.tasks()] == [second]
    index = json.loads((cfg.data_dir / "index.json").read_text())
    assert {r["id"]: r["archived"] for r in index["tasks"]} == {first: True, second: False}


def test_title_and_ids(tmp_path: Path) -> None:
    from codex_tui.tasks.operations import new_id
    from codex_tui.tasks.submission import make_title

    assert make_title("\n  Fix the bug\nin detail") == "Fix the bug"
    assert len(make_title("x" * 200)) == 60
    ids = {new_id("t") for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("t-") for i in ids)


async def test_compact_summarises_history_and_undo_then_restores_files_only(
    git_repo: Path, isolated_home: Path
) -> None:
    async with ScriptedServer([adds_file("c", "c.txt", final="made c")]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url)
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "make c", model="scripted:c")
            await manager.wait_for(task_id, timeout=30)
            compact = await manager.submit(p.Op(p.OP_COMPACT, task_id))
            assert compact.ok, compact.message
            [compacted] = log.of(task_id, p.COMPACTED)
            assert compacted.data["summary"]
            history = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())
            assert "Summary" in json.dumps(history)
            assert {item.get("role") for item in history} == {"user"}, "calls and answers are summarised"
            undo = await manager.submit(p.Op(p.OP_UNDO, task_id))
            assert undo.ok and "compacted" in undo.message
            assert (await manager.submit(p.Op(p.OP_GET_DIFF, task_id))).data["files"] == []
            after = json.loads((cfg.data_dir / "rollouts" / f"{task_id}.history.json").read_text())
            assert after == history
