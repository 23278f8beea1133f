"""Which tasks offer attach_artifact: Code and Ask tasks do, a review does not (its answer is findings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_tui.scripted import ScriptedServer
from tests.test_review_tasks import SCENARIOS, break_add
from tests.test_tasks_support import scripted_config, started_manager, submit


def tool_names(body: dict[str, Any]) -> set[str]:
    return {str(tool.get("name")) for tool in body.get("tools") or []}


async def offered_tools(git_repo: Path, home: Path, **data: Any) -> set[str]:
    srv = ScriptedServer(SCENARIOS).start_in_thread()
    try:
        async with started_manager(scripted_config(home, srv.base_url), git_repo) as (manager, _log):
            [task_id] = await submit(manager, "look", **data)
            await manager.wait_for(task_id)
        return tool_names(srv.model_requests()[0].body)
    finally:
        srv.stop()


async def test_code_and_ask_tasks_offer_attach_artifact(git_repo: Path, tmp_path: Path) -> None:
    assert "attach_artifact" in await offered_tools(git_repo, tmp_path / "a", model="scripted:coder")
    asked = await offered_tools(git_repo, tmp_path / "b", kind="ask", model="scripted:asker")
    assert "attach_artifact" in asked and "apply_patch" not in asked


async def test_review_does_not_offer_attach_artifact(git_repo: Path, tmp_path: Path) -> None:
    break_add(git_repo)
    names = await offered_tools(git_repo, tmp_path / "c", kind="review", model="scripted:reviewer")
    assert "shell" in names and "attach_artifact" not in names
