"""A patch too large to hold is cut at a file boundary, and whoever asks for the diff is told so."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.scripted import ScriptedServer
from codex_tui.workspace import git as workspace_git
from tests.test_tasks_support import (
    add_file_patch,
    patch_call,
    scenario,
    scripted_config,
    started_manager,
    submit,
)


async def test_diff_of_a_task_past_the_patch_budget_says_it_was_cut(
    git_repo: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_git, "MAX_PATCH_BYTES", 4096)
    lines = ["x" * 99] * 30
    big = scenario(
        "big",
        {
            "tool_calls": [
                patch_call(add_file_patch("a.txt", *lines)),
                patch_call(add_file_patch("b.txt", *lines)),
            ]
        },
        {"text": "done"},
    )
    async with (
        ScriptedServer([big]) as srv,
        started_manager(scripted_config(isolated_home, srv.base_url), git_repo) as (manager, _log),
    ):
        [task_id] = await submit(manager, "two files", model="scripted:big")
        assert await manager.wait_for(task_id, timeout=30) == "ready"
        result = await manager.submit(p.Op(p.OP_GET_DIFF, task_id))
    assert result.ok and result.data["truncated"]
    assert [f["path"] for f in result.data["files"]] == ["a.txt", "b.txt"], "every file is listed"
    assert "a.txt" in result.data["patch"] and "b.txt" not in result.data["patch"]
    assert result.message.startswith("+60 −0 (the patch text stops after")
