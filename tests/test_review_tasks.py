"""Reviews and questions as tasks: each review target, the review JSON (valid, repaired, broken),
read-only sandboxes, Ask mode and Ask → Code, with the scripted model and real git repositories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_tui import protocol as p
from codex_tui.scripted import ScriptedServer
from tests.conftest import run_git
from tests.test_tasks_support import (
    add_file_patch,
    patch_call,
    scenario,
    scripted_config,
    shell_call,
    started_manager,
    submit,
)


def review_json(*findings: dict[str, Any], verdict: str = "patch is incorrect") -> dict[str, Any]:
    """A Codex review object."""
    return {
        "findings": list(findings),
        "overall_correctness": verdict,
        "overall_explanation": "The subtraction breaks add().",
        "overall_confidence_score": 0.8,
    }


def finding(title: str, path: str, start: int, end: int, priority: int = 1) -> dict[str, Any]:
    """One review finding at `path` (as the reviewer sees it in the sandbox)."""
    return {
        "title": title,
        "body": "add() now subtracts, so every caller gets the wrong sum.",
        "confidence_score": 0.9,
        "priority": priority,
        "code_location": {"absolute_file_path": path, "line_range": {"start": start, "end": end}},
    }


def workdir_path(repo_relative: str) -> str:
    """A path as the local sandbox shows it is not /workspace: findings may also be relative."""
    return repo_relative


BUG = finding("[P1] add() subtracts", "calc.py", 2, 2)
SCENARIOS = [
    scenario(
        "reviewer",
        {"tool_calls": [shell_call("git", "diff", "HEAD")]},
        {"json": review_json(BUG), "requires_schema": True},
    ),
    scenario("fenced", {"text": "Here it is:\n```json\n" + json.dumps(review_json(BUG)) + "\n```\n"}),
    scenario("repaired", {"text": "The patch looks wrong to me."}, {"json": review_json(BUG)}),
    scenario("never-json", {"text": "I think it is fine."}, {"text": "Still prose, sorry."}),
    scenario(
        "tries-to-write", {"tool_calls": [patch_call(add_file_patch("x.txt", "no"))]}, {"json": review_json()}
    ),
    scenario(
        "asker",
        {"tool_calls": [shell_call("cat", "calc.py")]},
        {"text": "add() is defined in `calc.py:1-2` and tested in `test_calc.py:7-8`."},
        {"tool_calls": [patch_call(add_file_patch("NOTES.md", "asked then done"))]},
        {"text": "Done."},
    ),
    scenario(
        "coder", {"tool_calls": [patch_call(add_file_patch("feature.py", "x = 1"))]}, {"text": "Added."}
    ),
]


@pytest.fixture(scope="module")
def server() -> Any:
    """The scripted model server for this module."""
    srv = ScriptedServer(SCENARIOS).start_in_thread()
    yield srv
    srv.stop()


def break_add(repo: Path) -> None:
    """An uncommitted change with a planted bug."""
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")


async def review_with(server: ScriptedServer, repo: Path, home: Path, model: str) -> tuple[str, Any]:
    """Review the planted bug in `repo` with the scripted reviewer `model`: (task id, event log)."""
    break_add(repo)
    cfg = scripted_config(home, server.base_url)
    async with started_manager(cfg, repo) as (manager, log):
        [task_id] = await submit(manager, "", kind="review", model=model)
        await manager.wait_for(task_id)
    return task_id, log


def review_item(log: Any, task_id: str) -> dict[str, Any]:
    """The task's one review item."""
    items = log.items(task_id, p.ITEM_REVIEW)
    assert len(items) == 1, items
    return dict(items[0])


async def test_review_of_uncommitted_changes_reports_findings_with_repository_paths(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    break_add(git_repo)
    cfg = scripted_config(tmp_path / "home", server.base_url, review_model="scripted:reviewer")
    async with started_manager(cfg, git_repo) as (manager, log):
        data = {"kind": "review", "review": {"target": "uncommitted"}, "prompt": "focus on arithmetic"}
        [task_id] = await submit(manager, "", **{k: v for k, v in data.items() if k != "prompt"})
        await manager.wait_for(task_id)
        record = manager.tasks()[0]
        diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    assert record["kind"] == "review" and record["status"] == "ready"
    assert (record["added"], record["removed"]) == (1, 1)  # the task list shows the reviewed change
    assert record["review"]["verdict"] == "patch is incorrect" and record["review"]["counts"]["P1"] == 1
    item = review_item(log, task_id)
    assert item["status"] == "completed"
    assert item["findings"][0]["code_location"]["path"] == "calc.py"
    assert item["target"] == {"type": "uncommitted", "label": item["target"]["label"]}
    # the reviewer saw the change: its first command's output holds the planted line
    [command] = log.items(task_id, p.ITEM_COMMAND)
    assert (
        "-    return a + b" in command["aggregated_output"]
        and "+    return a - b" in command["aggregated_output"]
    )
    # the review task's diff is the change under review
    assert [f["path"] for f in diff.data["files"]] == ["calc.py"]
    created = log.of(task_id, p.TASK_CREATED)[0].data
    assert created["kind"] == "review" and created["review_target"]["type"] == "uncommitted"
    # the user's repository is untouched
    assert run_git(git_repo, "status", "--porcelain").strip() == "M calc.py"


async def test_review_request_carries_the_review_schema_and_the_sandbox_is_read_only(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    break_add(git_repo)
    cfg = scripted_config(tmp_path / "home", server.base_url)
    async with started_manager(cfg, git_repo) as (manager, log):
        [task_id] = await submit(manager, "", kind="review", model="scripted:reviewer")
        await manager.wait_for(task_id)
        task = manager.get_task(task_id)
        assert task is not None
        record = task.record
    # requires_schema: without the schema on the wire, the scripted model would answer prose
    assert review_item(log, task_id)["status"] == "completed"
    assert record.mode == "read-only"
    sent = [s for s in server.output_schemas() if s is not None]
    assert sent and sent[-1].name == "codex_review" and sent[-1].strict
    assert sent[-1].schema["required"] == [
        "findings",
        "overall_correctness",
        "overall_explanation",
        "overall_confidence_score",
    ]


async def test_review_accepts_a_fenced_json_answer(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    task_id, log = await review_with(server, git_repo, tmp_path / "home", "scripted:fenced")
    assert review_item(log, task_id)["findings"][0]["title"] == "[P1] add() subtracts"


async def test_malformed_review_gets_one_repair_request(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    task_id, log = await review_with(server, git_repo, tmp_path / "home", "scripted:repaired")
    item = review_item(log, task_id)
    assert item["status"] == "completed" and len(item["findings"]) == 1
    users = [e.data["text"] for e in log.of(task_id, p.USER_MESSAGE)]
    assert len(users) == 2 and "not valid review JSON" in users[1]


async def test_review_malformed_twice_fails_clearly_and_keeps_the_raw_text(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    task_id, log = await review_with(server, git_repo, tmp_path / "home", "scripted:never-json")
    item = review_item(log, task_id)
    assert item["status"] == "failed"
    assert "after one repair request" in item["error"] and item["raw_text"] == "Still prose, sorry."
    notes = [e.data["message"] for e in log.of(task_id, p.NOTE)]
    assert any("not valid review JSON" in n for n in notes)


async def test_reviewer_cannot_edit_files(server: ScriptedServer, git_repo: Path, tmp_path: Path) -> None:
    break_add(git_repo)
    cfg = scripted_config(tmp_path / "home", server.base_url)
    async with started_manager(cfg, git_repo) as (manager, log):
        [task_id] = await submit(manager, "", kind="review", model="scripted:tries-to-write")
        await manager.wait_for(task_id)
        diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    assert not log.items(task_id, p.ITEM_FILE_CHANGE)  # apply_patch is not offered to a reviewer
    assert [f["path"] for f in diff.data["files"]] == ["calc.py"]  # still only the reviewed change


async def test_review_of_a_base_branch_and_of_a_commit(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    run_git(git_repo, "checkout", "-q", "-b", "feature")
    break_add(git_repo)
    run_git(git_repo, "commit", "-qam", "Subtract instead")
    sha = run_git(git_repo, "rev-parse", "HEAD").strip()
    cfg = scripted_config(tmp_path / "home", server.base_url, review_model="scripted:reviewer")
    async with started_manager(cfg, git_repo) as (manager, log):
        [base_task] = await submit(manager, "", kind="review", review={"target": "base", "base": "main"})
        [commit_task] = await submit(manager, "", kind="review", review={"target": "commit", "commit": sha})
        bad = await manager.submit(
            p.Op(
                p.OP_SUBMIT,
                data={"prompt": "", "kind": "review", "review": {"target": "base", "base": "nope"}},
            )
        )
        for task_id in (base_task, commit_task):
            await manager.wait_for(task_id)
        prompts = {t: log.of(t, p.USER_MESSAGE)[0].data["text"] for t in (base_task, commit_task)}
    assert not bad.ok and "nope" in bad.message
    assert "base branch 'main'" in prompts[base_task]
    assert sha in prompts[commit_task] and "Subtract instead" in prompts[commit_task]
    for task_id in (base_task, commit_task):
        assert review_item(log, task_id)["status"] == "completed"


async def test_review_of_two_attempts_gives_each_its_verdict(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    cfg = scripted_config(tmp_path / "home", server.base_url, review_model="scripted:reviewer")
    async with started_manager(cfg, git_repo) as (manager, log):
        attempts = await submit(manager, "add a feature", attempts=2, models=["scripted:coder"])
        for task_id in attempts:
            await manager.wait_for(task_id)
        reviews = await submit(manager, "", kind="review", review={"target": "task", "task_ids": attempts})
        for task_id in reviews:
            await manager.wait_for(task_id)
        summaries = {s["id"]: s for s in manager.tasks()}
        pr = await manager.submit(p.Op(p.OP_GET_PR, attempts[0]))
    assert len(reviews) == 2
    reviewed = {summaries[r]["review_target"]["task_id"] for r in reviews}
    assert reviewed == set(attempts)
    for review_id in reviews:
        assert summaries[review_id]["review"]["verdict"] == "patch is incorrect"
        [command] = log.items(review_id, p.ITEM_COMMAND)
        assert "feature.py" in command["aggregated_output"] or command["exit_code"] == 0
    assert pr.ok and "add() subtracts" in pr.data["body"]


async def test_ask_task_answers_read_only_and_turns_into_code(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    cfg = scripted_config(tmp_path / "home", server.base_url)
    async with started_manager(cfg, git_repo) as (manager, log):
        [task_id] = await submit(manager, "where is add()?", kind="ask", model="scripted:asker")
        await manager.wait_for(task_id)
        task = manager.get_task(task_id)
        assert task is not None
        record = task.record
        assert record.kind == "ask" and record.mode == "read-only"
        read = await manager.submit(p.Op(p.OP_READ_FILE, task_id, {"path": "calc.py"}))
        escape = await manager.submit(p.Op(p.OP_READ_FILE, task_id, {"path": "../../etc/passwd"}))
        switched = await manager.submit(p.Op(p.OP_SET_KIND, task_id, {"kind": "code"}))
        follow = await manager.submit(p.Op(p.OP_USER_MESSAGE, task_id, {"text": "Now do it."}))
        await log.until(lambda e: e.task_id == task_id and e.type == p.TURN_COMPLETED and e.data["turn"] == 2)
        await manager.wait_for(task_id)
        diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    assert read.ok and read.data["text"].startswith("def add")
    assert not escape.ok
    assert switched.ok and follow.ok
    assert record.kind == "code" and record.mode == "auto"
    assert [f["path"] for f in diff.data["files"]] == ["NOTES.md"]
    answer = log.items(task_id, p.ITEM_AGENT_MESSAGE)[0]["text"]
    assert "`calc.py:1-2`" in answer


@pytest.mark.docker
async def test_review_in_docker_runs_the_tests_but_cannot_write_the_checkout(
    git_repo: Path, isolated_home: Path, sandbox_image: str
) -> None:
    break_add(git_repo)
    checks = (
        "python3 -m unittest -q test_calc 2>&1 | tail -1; touch /workspace/planted 2>&1 || echo read-only"
    )
    reviewer = scenario(
        "docker-reviewer",
        {"tool_calls": [shell_call("sh", "-c", checks, timeout_ms=60_000)]},
        {"json": review_json(finding("[P1] add() subtracts", "/workspace/calc.py", 2, 2))},
    )
    async with ScriptedServer([reviewer]) as srv:
        cfg = scripted_config(
            isolated_home, srv.base_url, sandbox_backend="docker", sandbox_image=sandbox_image
        )
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "", kind="review", model="scripted:docker-reviewer")
            await manager.wait_for(task_id, timeout=180)
            diff = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    [command] = log.items(task_id, p.ITEM_COMMAND)
    output = command["aggregated_output"]
    assert "FAILED (failures=1)" in output  # the reviewer ran the tests against the change
    assert "read-only" in output or "Read-only file system" in output
    item = review_item(log, task_id)
    assert item["findings"][0]["code_location"]["path"] == "calc.py"  # /workspace/calc.py, made relative
    assert [f["path"] for f in diff.data["files"]] == ["calc.py"]
