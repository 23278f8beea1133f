"""The demo: sample repository, scripted scenarios, and the demo tasks run through the manager."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.demo import (
    ADD_FEATURE,
    DEMO_PROMPTS,
    FIX_BUG,
    REVIEW_MODEL,
    SAMPLE_REPO,
    SCENARIOS_DIR,
    WRITE_DOCS,
    prepare_demo,
)
from codex_tui.tools.apply_patch import apply_patch
from tests.test_tasks_support import EventLog

SCENARIO_CHECKS = {
    "fix-median": ["discover", "-s", "tests"],
    "reading-time-a": ["tests.test_stats.ReadingTimeTest"],
    "reading-time-b": ["tests.test_reading"],
    "docs-slug": ["tests.test_slug"],
}


def unittest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the sample project's unittest suite (or part of it) in `folder`."""
    return subprocess.run(
        [sys.executable, "-m", "unittest", *args], cwd=folder, capture_output=True, text=True, timeout=60
    )


def test_prepare_demo_makes_a_committed_repo_whose_tests_fail(isolated_home: Path) -> None:
    demo = prepare_demo(Config(home=isolated_home))
    try:
        status = subprocess.run(
            ["git", "-C", str(demo.repo), "status", "--porcelain"], capture_output=True, text=True
        )
        assert status.stdout == ""
        assert unittest_in(demo.repo, "discover", "-s", "tests").returncode == 1
        provider = demo.config.provider
        assert (provider.base_url, provider.wire_api, provider.requires_api_key) == (
            demo.server.base_url,
            "responses",
            False,
        )
        assert demo.config.data_dir.is_relative_to(demo.root)
        models = json.load(urllib.request.urlopen(f"{demo.server.base_url}/models", timeout=5))
        assert {m["id"] for m in models["data"]} >= {"scripted:fix-median", "scripted:docs-slug"}
    finally:
        demo.close()
    assert not demo.root.exists()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{demo.server.base_url}/models", timeout=2)


@pytest.mark.parametrize("name", sorted(SCENARIO_CHECKS))
def test_demo_scenario_patches_apply_and_their_tests_pass(name: str, tmp_path: Path) -> None:
    repo = tmp_path / "textkit"
    shutil.copytree(SAMPLE_REPO, repo)
    scenario = json.loads((SCENARIOS_DIR / f"{name}.json").read_text())
    patches = [
        c["input"] for t in scenario["turns"] for c in t.get("tool_calls", []) if c["name"] == "apply_patch"
    ]
    assert patches
    for patch in patches:
        result = apply_patch(patch, repo)
        assert result.success, result.output
    check = unittest_in(repo, *SCENARIO_CHECKS[name])
    assert check.returncode == 0, check.stderr


def test_demo_prompts_name_existing_scenarios_and_one_has_two_attempts() -> None:
    names = {path.stem for path in SCENARIOS_DIR.glob("*.json")}
    by_prompt = {m.partition(":")[2] for prompt in DEMO_PROMPTS for m in prompt.models}
    assert by_prompt | {REVIEW_MODEL.partition(":")[2], "demo-ask"} == names
    assert ADD_FEATURE.attempts == 2 and len(set(ADD_FEATURE.models)) == 2
    assert ADD_FEATURE.submission()["models"] == ADD_FEATURE.models
    docs = json.loads((SCENARIOS_DIR / "docs-slug.json").read_text())
    calls = [c for t in docs["turns"] for c in t.get("tool_calls", [])]
    assert any(c["arguments"].get("with_escalated_permissions") for c in calls if c["name"] == "shell")


async def test_demo_tasks_finish_with_distinct_attempts_and_a_fixed_suite(isolated_home: Path) -> None:
    from codex_tui.tasks.manager import TaskManager

    demo = await asyncio.to_thread(prepare_demo, Config(home=isolated_home))
    manager = TaskManager(demo.config, repo=demo.repo, sandbox_backend="local")
    log = EventLog()
    try:
        await manager.start()
        manager.subscribe(log, replay=False)
        ids: dict[str, list[str]] = {}
        for prompt in (FIX_BUG, ADD_FEATURE, WRITE_DOCS):
            result = await manager.submit(prompt.op())
            assert result.ok, result.message
            ids[prompt.title] = result.data["task_ids"]
        [docs_id] = ids[WRITE_DOCS.title]
        request = await log.until(
            lambda e: e.task_id == docs_id and e.type == p.APPROVAL_REQUESTED, timeout=60
        )
        await log.until(lambda e: e.task_id == docs_id and e.data.get("status") == "waiting_approval")
        decision = {"request_id": request.data["request_id"], "decision": "approve"}
        assert (await manager.submit(p.Op(p.OP_APPROVE, docs_id, decision))).ok
        every = [task_id for group in ids.values() for task_id in group]
        statuses = await asyncio.gather(*(manager.wait_for(t, timeout=90) for t in every))
        assert statuses == ["ready"] * 4
        a, b = ids[ADD_FEATURE.title]
        patch_a = (await manager.submit(p.Op(p.OP_GET_DIFF, a))).data
        patch_b = (await manager.submit(p.Op(p.OP_GET_DIFF, b))).data
        assert {f["path"] for f in patch_a["files"]} == {"textkit/stats.py", "tests/test_stats.py"}
        assert {f["path"] for f in patch_b["files"]} == {
            "textkit/reading.py",
            "tests/test_reading.py",
            "README.md",
        }
        [fix_id] = ids[FIX_BUG.title]
        checkout = demo.config.data_dir / "worktrees" / fix_id
        assert unittest_in(checkout, "discover", "-s", "tests").returncode == 0
        assert unittest_in(demo.repo, "discover", "-s", "tests").returncode == 1, (
            "the user's tree is untouched"
        )
    finally:
        await manager.close()
        await asyncio.to_thread(demo.close)


async def test_demo_reviews_both_attempts_and_answers_a_question_with_citations(isolated_home: Path) -> None:
    from codex_tui.tasks.manager import TaskManager

    demo = await asyncio.to_thread(prepare_demo, Config(home=isolated_home))
    manager = TaskManager(demo.config, repo=demo.repo, sandbox_backend="local")
    log = EventLog()
    try:
        await manager.start()
        manager.subscribe(log, replay=False)
        attempts = (await manager.submit(ADD_FEATURE.op())).data["task_ids"]
        await asyncio.gather(*(manager.wait_for(t, timeout=90) for t in attempts))
        review = {"target": "task", "task_ids": attempts}
        reviews = await manager.submit(
            p.Op(p.OP_SUBMIT, data={"prompt": "", "kind": "review", "review": review})
        )
        assert reviews.ok, reviews.message
        ask = await manager.submit(
            p.Op(p.OP_SUBMIT, data={"prompt": "Where are words counted?", "kind": "ask"})
        )
        every = [*reviews.data["task_ids"], *ask.data["task_ids"]]
        assert await asyncio.gather(*(manager.wait_for(t, timeout=90) for t in every)) == ["ready"] * 3
        for review_id in reviews.data["task_ids"]:
            [item] = log.items(review_id, p.ITEM_REVIEW)
            assert item["status"] == "completed" and item["overall_correctness"] == "patch is correct"
            assert item["findings"][0]["code_location"]["path"] == "textkit/stats.py"
            tests_run = log.items(review_id, p.ITEM_COMMAND)[1]
            assert "test_median" in tests_run["aggregated_output"]  # the reviewer really ran the suite
        [ask_id] = ask.data["task_ids"]
        answer = log.items(ask_id, p.ITEM_AGENT_MESSAGE)[-1]["text"]
        assert "`textkit/stats.py:13-15`" in answer
    finally:
        await manager.close()
        await asyncio.to_thread(demo.close)
