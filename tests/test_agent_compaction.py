"""Compaction: automatic near the context window, manual with /compact, deferred while running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from codex_tui.agent.context import COMPACT_REQUEST, SUMMARY_PREFIX, message_text
from tests.test_agent_harness import agent_harness

SHELL = {"name": "shell", "arguments": {"command": ["echo", "hello"]}}


def _first_text(item: dict[str, object]) -> str:
    content = item["content"]
    assert isinstance(content, list)
    return str(content[0]["text"])


async def test_compaction_triggers_near_the_window_and_the_turn_goes_on(git_repo: Path) -> None:
    scenario = {
        "name": "big",
        "turns": [
            {"tool_calls": [SHELL], "usage": {"input_tokens": 2800, "output_tokens": 50}},
            {"text": "all done", "usage": {"input_tokens": 300, "output_tokens": 10}},
        ],
    }
    async with agent_harness(git_repo, [scenario], context_window=3000) as h:
        result = await h.agent.run_turn("say hello in the shell")

    assert result.status == "completed" and result.final_message == "all done"
    requests = h.requests()
    assert len(requests) == 3
    summary_request = requests[1].body
    assert not summary_request.get("tools")
    assert _first_text(summary_request["input"][-1]) == COMPACT_REQUEST
    compacted = h.of("context.compacted")
    assert len(compacted) == 1
    event = compacted[0]
    assert event["before_tokens"] >= 2850 > event["after_tokens"]
    assert event["summary"].startswith("Summary of the work so far")
    after = h.conversation(2)
    assert _first_text(after[0]).startswith(SUMMARY_PREFIX + "Summary of the work so far")
    assert _first_text(after[1]) == "say hello in the shell"
    assert message_text(h.agent.history[0]).startswith(SUMMARY_PREFIX)
    assert h.of("context.updated")[-1]["used_tokens"] == 310


async def test_manual_compact_replaces_history_with_summary_and_recent_messages(git_repo: Path) -> None:
    scenario = {"name": "manual", "turns": [{"text": "first"}, {"text": "second"}, {"text": "third"}]}
    async with agent_harness(git_repo, [scenario]) as h:
        ok, message = await h.agent.compact()
        assert not ok and "nothing to compact" in message
        assert h.requests() == [] and "nothing to compact" in h.notes()[0]
        await h.agent.run_turn("request one")
        await h.agent.run_turn("request two")
        assert await h.agent.compact() == (True, "compacted")
        history = [message_text(item) for item in h.agent.history]
        assert history[0].startswith(SUMMARY_PREFIX)
        assert history[1:] == ["request one", "request two"]
        assert len(h.of("context.compacted")) == 1
        result = await h.agent.run_turn("request three")
    assert result.final_message == "third"
    assert message_text(h.agent.history[0]).startswith(SUMMARY_PREFIX)


async def test_compact_during_a_turn_runs_before_the_next_model_request(git_repo: Path) -> None:
    scenario = {
        "name": "deferred",
        "turns": [
            {"tool_calls": [{"name": "shell", "arguments": {"command": ["sleep", "0.3"]}}]},
            {"text": "finished"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        turn = asyncio.create_task(h.agent.run_turn("wait a bit"))
        await h.wait_for("item.started", "command_execution")
        ok, message = await h.agent.compact()
        assert ok and "before the next model request" in message
        assert h.of("context.compacted") == []
        result = await turn
    assert result.status == "completed" and result.final_message == "finished"
    requests = h.requests()
    assert len(requests) == 3 and not requests[1].body.get("tools")
    assert len(h.of("context.compacted")) == 1
