"""The agent loop when things go wrong: bad tool arguments, retries, dead servers, cut streams, bugs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codex_tui.agent.context import unanswered_calls
from codex_tui.models.base import ToolSpec
from codex_tui.tools import default_tools
from codex_tui.tools.base import ToolContext, ToolResult
from tests.test_agent_harness import agent_harness


async def test_malformed_json_arguments_reach_the_model_as_a_parse_error_and_the_turn_continues(
    git_repo: Path,
) -> None:
    scenario = {
        "name": "badjson",
        "turns": [
            {"tool_calls": [{"name": "shell", "arguments": '{"command": ["ls", '}]},
            {"tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]},
            {"text": "listed"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("list files")
    assert result.status == "completed" and result.final_message == "listed"
    first_output = h.tool_outputs(1)[0]
    assert "failed to parse function arguments" in first_output
    assert "calc.py" in h.tool_outputs(2)[1]


async def test_unknown_tool_gets_an_error_result_and_the_turn_continues(git_repo: Path) -> None:
    scenario = {
        "name": "unknown",
        "turns": [{"tool_calls": [{"name": "teleport", "arguments": {}}]}, {"text": "sorry"}],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("go")
    assert result.status == "completed"
    assert "unsupported call: teleport" in h.tool_outputs(1)[0]


@pytest.mark.parametrize("wire", ["responses", "chat"])
async def test_patch_that_does_not_apply_tells_the_model_why_and_its_corrected_patch_works(
    git_repo: Path, wire: str
) -> None:
    def patch(old: str) -> dict[str, Any]:
        body = (
            "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n"
            f"-{old}\n+    return b + a\n*** End Patch\n"
        )
        return {"name": "apply_patch", "input": body}

    scenario = {
        "name": "repatch",
        "turns": [
            {"tool_calls": [patch("    return a - b")]},
            {"tool_calls": [patch("    return a + b")]},
            {"text": "fixed on the second try"},
        ],
    }
    async with agent_harness(git_repo, [scenario], wire=wire) as h:
        result = await h.agent.run_turn("swap the operands")
    assert result.status == "completed"
    assert h.tool_outputs(1) == [
        "Failed to find expected lines in calc.py:\ndef add(a, b):\n    return a - b"
    ]
    assert h.tool_outputs(2)[-1] == "Success. Updated the following files:\nM calc.py\n"
    changes = [d["item"] for d in h.of("item.completed", "file_change")]
    assert [c["status"] for c in changes] == ["failed", "completed"]
    assert "Failed to find expected lines" in changes[0]["error"]
    assert (git_repo / "calc.py").read_text() == "def add(a, b):\n    return b + a\n"


async def test_429_then_success_shows_a_retry_note(git_repo: Path) -> None:
    scenario = {
        "name": "ratelimit",
        "turns": [{"text": "hello after waiting", "errors": [{"status": 429, "retry_after": 0.05}]}],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("hi")
    assert result.status == "completed" and result.final_message == "hello after waiting"
    notes = [d for d in h.of("note") if d["level"] == "warning"]
    assert len(notes) == 1
    assert notes[0]["message"].startswith("model request failed (")
    assert "retrying in 0.1 s" in notes[0]["message"]
    assert len(h.requests()) == 2


@pytest.mark.parametrize("wire", ["responses", "chat"])
async def test_500_until_retries_run_out_fails_the_turn_with_the_server_message(
    git_repo: Path, wire: str
) -> None:
    error = {"status": 500, "message": "The engine room is flooded"}
    scenario = {"name": "down", "turns": [{"text": "finally", "errors": [error, error, error]}]}
    async with agent_harness(git_repo, [scenario], wire=wire, max_retries=2) as h:
        result = await h.agent.run_turn("hi")
        assert result.status == "failed"
        assert result.error is not None and "The engine room is flooded" in result.error
        failed = h.of("turn.failed")
        assert len(failed) == 1 and "The engine room is flooded" in failed[0]["error"]["message"]
        assert len([n for n in h.notes() if "retrying" in n]) == 2
        assert h.agent.history[-1]["role"] == "user"
        follow_up = await h.agent.run_turn("try again please")
    assert follow_up.status == "completed" and follow_up.final_message == "finally"


@pytest.mark.parametrize("cut_after", [16, 27], ids=["in-arguments", "after-call-item-done"])
async def test_stream_cut_mid_tool_call_is_retried_without_running_the_tool_twice(
    git_repo: Path, cut_after: int
) -> None:
    # Responses events of this answer: 0-1 created, 2-11 reasoning, 12 call added, 13-25 argument
    # deltas, 26 arguments done, 27 call item done, 28 completed.
    scenario = {
        "name": "cut",
        "turns": [
            {
                "reasoning": "Let me record a run.",
                "tool_calls": [
                    {"name": "shell", "arguments": {"command": ["bash", "-c", "echo run >> runs.txt"]}}
                ],
                "chunk_chars": 4,
                "cut_after_events": cut_after,
            },
            {"text": "recorded"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("record a run")
    assert result.status == "completed"
    assert (git_repo / "runs.txt").read_text() == "run\n"
    assert any("retrying" in n for n in h.notes())
    reasoning = h.of("item.completed", "reasoning")
    assert reasoning[0]["item"].get("discarded") is True
    assert reasoning[-1]["item"]["text"] == "Let me record a run." and not reasoning[-1]["item"].get(
        "discarded"
    )
    assert len(h.of("item.started", "command_execution")) == 1


@pytest.mark.parametrize(
    "arguments",
    [
        '{"command": ["bash", "-c", "echo run >> runs.txt"',
        {"command": ["bash", "-c", "echo run >> runs.txt"]},
    ],
    ids=["truncated-json", "json-that-parses"],
)
async def test_chat_answer_cut_off_at_the_output_limit_fails_the_turn_without_running_its_tool_call(
    git_repo: Path, arguments: Any
) -> None:
    call = {"name": "shell", "arguments": arguments}
    turn = {"text": "Recording a run.", "tool_calls": [call], "finish_reason": "length"}
    scenario = {"name": "cutoff", "turns": [turn, {"text": "recorded"}]}
    async with agent_harness(git_repo, [scenario], wire="chat") as h:
        result = await h.agent.run_turn("record a run")
    assert result.status == "failed"
    assert result.error is not None and "cut off at its output limit (finish_reason=length)" in result.error
    failed = h.of("turn.failed")
    assert len(failed) == 1 and "finish_reason=length" in failed[0]["error"]["message"]
    assert not (git_repo / "runs.txt").exists()
    assert not h.of("item.started", "command_execution")
    assert len(h.requests()) == 1
    assert h.agent.history[-1]["role"] == "user" and not unanswered_calls(h.agent.history)


class ExplodingTool:
    """A tool whose handler has a bug: it raises."""

    def __init__(self) -> None:
        self.spec = ToolSpec("explode", "Raises.", {"type": "object", "properties": {}})

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Start an item, then fail like a buggy handler would."""
        ctx.emit(
            "item.started",
            {"item": {"id": ctx.new_item_id(), "type": "command_execution", "status": "in_progress"}},
        )
        raise RuntimeError("disk on fire")


async def test_a_tool_that_raises_gives_the_model_an_error_and_the_user_a_note(git_repo: Path) -> None:
    scenario = {
        "name": "boom",
        "turns": [{"tool_calls": [{"name": "explode", "arguments": {}}]}, {"text": "ok"}],
    }
    tools: list[Any] = [*default_tools(), ExplodingTool()]
    async with agent_harness(git_repo, [scenario], tools=tools) as h:
        result = await h.agent.run_turn("explode")
    assert result.status == "completed"
    assert "RuntimeError: disk on fire" in h.tool_outputs(1)[0]
    assert any(n.startswith("tool explode failed unexpectedly") for n in h.notes())
    closed = h.of("item.completed", "command_execution")
    assert len(closed) == 1 and closed[0]["item"]["status"] == "failed"


async def test_the_per_turn_call_limit_fails_the_turn_with_a_consistent_history(git_repo: Path) -> None:
    call = {"tool_calls": [{"name": "shell", "arguments": {"command": ["true"]}}]}
    scenario = {"name": "loop", "turns": [call, call, call, {"text": "never"}]}
    async with agent_harness(git_repo, [scenario], max_model_calls_per_turn=2) as h:
        result = await h.agent.run_turn("loop forever")
    assert result.status == "failed"
    assert result.error is not None and "2 model calls" in result.error
    assert len(h.requests()) == 2
    assert len(h.of("item.started", "command_execution")) == 1
    assert unanswered_calls(h.agent.history) == []
    assert h.of("turn.failed")[0]["error"]["message"] == result.error


async def test_a_failing_files_changed_callback_becomes_a_note(git_repo: Path) -> None:
    scenario = {
        "name": "touch",
        "turns": [
            {
                "tool_calls": [
                    {
                        "name": "apply_patch",
                        "input": "*** Begin Patch\n*** Add File: new.txt\n+hi\n*** End Patch\n",
                    }
                ]
            },
            {"text": "added"},
        ],
    }

    async def broken() -> None:
        raise OSError("git index locked")

    async with agent_harness(git_repo, [scenario], on_files_changed=broken) as h:
        result = await h.agent.run_turn("add a file")
    assert result.status == "completed"
    assert (git_repo / "new.txt").read_text() == "hi\n"
    assert any("could not refresh the diff" in n and "git index locked" in n for n in h.notes())
