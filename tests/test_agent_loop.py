"""The agent loop end to end: real scripted server, real openai client, real local sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from codex_tui.agent.context import unanswered_calls
from tests.conftest import make_repo
from tests.test_agent_harness import agent_harness, write_png

PATCH = """*** Begin Patch
*** Update File: calc.py
@@
 def add(a, b):
     return a + b
+
+
+def sub(a, b):
+    return a - b
*** End Patch
"""
FINAL = "Added sub() to calc.py; the tests pass."


def _plan(status: str = "in_progress") -> dict[str, Any]:
    return {
        "plan": [
            {"step": "Add sub()", "status": status},
            {"step": "Run the tests", "status": "pending"},
        ]
    }


FULL_TURN = {
    "name": "full",
    "turns": [
        {"reasoning": "I should plan first.", "tool_calls": [{"name": "update_plan", "arguments": _plan()}]},
        {"tool_calls": [{"name": "shell", "arguments": {"command": ["cat", "calc.py"]}}]},
        {"text": "Adding sub().", "tool_calls": [{"name": "apply_patch", "input": PATCH}]},
        {
            "tool_calls": [
                {
                    "name": "shell",
                    "arguments": {"command": ["python3", "-c", "import calc; print(calc.sub(5, 3))"]},
                }
            ]
        },
        {"text": FINAL, "chunk_chars": 2},
    ],
}


def _types(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = []
    for kind, data in events:
        item = data.get("item")
        out.append(f"{kind}:{item['type']}" if isinstance(item, dict) else kind)
    return out


def _in_order(seq: list[str], wanted: list[str]) -> bool:
    it = iter(seq)
    return all(any(x == w for x in it) for w in wanted)


@pytest.mark.parametrize("wire", ["responses", "chat"])
async def test_full_turn_plan_shell_patch_shell_final_emits_events_in_order(
    git_repo: Path, wire: str
) -> None:
    async with agent_harness(git_repo, [FULL_TURN], wire=wire) as h:
        result = await h.agent.run_turn("Add a sub function to calc.py")

    assert result.status == "completed", result.error
    assert result.final_message == FINAL
    assert "def sub(a, b):" in (git_repo / "calc.py").read_text()
    types = _types(h.events)
    assert types[:2] == ["user.message", "turn.started"]
    assert h.events[0][1] == {"text": "Add a sub function to calc.py", "images": [], "kind": "prompt"}
    assert _in_order(
        types,
        [
            "item.started:reasoning",
            "item.completed:reasoning",
            "item.started:todo_list",
            "item.completed:command_execution",
            "item.completed:agent_message",
            "item.completed:file_change",
            "item.completed:command_execution",
            "item.started:agent_message",
            "item.completed:agent_message",
            "item.completed:todo_list",
            "turn.completed",
        ],
    ), types
    assert types[-1] == "turn.completed"
    commands = h.of("item.completed", "command_execution")
    assert [c["item"]["exit_code"] for c in commands] == [0, 0]
    assert "2" in commands[1]["item"]["aggregated_output"]
    final = h.of("item.completed", "agent_message")[-1]["item"]
    assert final["text"] == FINAL and not final.get("discarded")
    # deltas are batched (FINAL arrives in ~20 two-character chunks) and add up to the text
    deltas = [d for d in h.of("message.delta") if d["item_id"] == final["id"]]
    assert 1 <= len(deltas) < 10
    assert "".join(d["delta"] for d in deltas) == FINAL
    assert len(h.requests()) == 5
    assert h.files_changed >= 1
    context = h.of("context.updated")
    assert len(context) == 5 and context[-1]["window_tokens"] == 272_000
    assert context[-1]["used_tokens"] > 0
    done = h.of("turn.completed")[0]
    assert done["turn"] == 1 and done["usage"]["input_tokens"] == context[-1]["total"]["input_tokens"]
    assert unanswered_calls(h.agent.history) == []


@pytest.mark.parametrize("wire", ["responses", "chat"])
async def test_history_is_resent_as_an_exact_prefix(git_repo: Path, wire: str) -> None:
    async with agent_harness(git_repo, [FULL_TURN], wire=wire) as h:
        await h.agent.run_turn("Add a sub function to calc.py")
        await h.agent.run_turn("Thanks, anything else?")

    requests = h.requests()
    assert len(requests) == 6
    for i in range(len(requests) - 1):
        before, after = h.conversation(i), h.conversation(i + 1)
        assert after[: len(before)] == before, f"request {i + 1} rewrote request {i}'s history"
        assert len(after) > len(before)
    instructions = {h.instructions(i) for i in range(len(requests))}
    assert len(instructions) == 1
    bodies = [r.body for r in requests]
    if wire == "responses":
        assert {b.get("prompt_cache_key") for b in bodies} == {"t-agent"}


async def test_parallel_tool_calls_produce_results_in_call_order(git_repo: Path) -> None:
    write_png(git_repo / "shot.png")
    scenario = {
        "name": "parallel",
        "turns": [
            {
                "tool_calls": [
                    {"name": "shell", "arguments": {"command": ["bash", "-c", "sleep 0.3; echo first-out"]}},
                    {"name": "view_image", "arguments": {"path": "shot.png"}},
                    {"name": "update_plan", "arguments": _plan()},
                    {"name": "shell", "arguments": {"command": ["bash", "-c", "echo second-out"]}},
                ]
            },
            {"text": "done"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("do things in parallel")

    assert result.status == "completed"
    outputs = h.tool_outputs(1)
    assert len(outputs) == 4
    assert "first-out" in outputs[0]
    assert "shot.png" in outputs[1]
    assert outputs[2] == "Plan updated"
    assert "second-out" in outputs[3]
    conversation = h.conversation(1)
    calls = [i["call_id"] for i in conversation if i.get("type") == "function_call"]
    results = [i["call_id"] for i in conversation if i.get("type") == "function_call_output"]
    assert calls == results
    last = conversation[-1]
    assert last["role"] == "user"
    assert any(p.get("type") == "input_image" for p in last["content"])


async def test_several_view_image_calls_attach_their_images_in_call_order(git_repo: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        write_png(git_repo / name)
    scenario = {
        "name": "images",
        "turns": [
            {
                "tool_calls": [
                    {"name": "view_image", "arguments": {"path": n}} for n in ("a.png", "b.png", "c.png")
                ]
            },
            {"text": "seen"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        result = await h.agent.run_turn("look at the images")
    assert result.status == "completed"
    images = h.of("item.completed", "image_view")
    assert sorted(i["item"]["path"] for i in images) == ["a.png", "b.png", "c.png"]
    last_user = h.conversation(1)[-1]
    assert last_user["content"][0]["text"] == "Images attached by view_image: a.png, b.png, c.png"
    assert len([p for p in last_user["content"] if p.get("type") == "input_image"]) == 3


async def test_steer_joins_the_next_request_of_the_running_turn(git_repo: Path) -> None:
    scenario = {
        "name": "steer",
        "turns": [
            {"tool_calls": [{"name": "shell", "arguments": {"command": ["sleep", "0.5"]}}]},
            {"text": "ok, I will also add docs"},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        turn = asyncio.create_task(h.agent.run_turn("fix the bug"))
        await h.wait_for("item.started", "command_execution")
        assert h.agent.running
        h.agent.steer("please also add docs")
        result = await turn

    assert result.status == "completed"
    assert len(h.requests()) == 2
    first, second = h.conversation(0), h.conversation(1)
    assert all("please also add docs" not in json.dumps(i) for i in first)
    assert second[-1]["role"] == "user"
    assert second[-1]["content"][0]["text"] == "please also add docs"
    assert second[-2]["type"] == "function_call_output"
    steer_events = [d for d in h.of("user.message") if d["kind"] == "steer"]
    assert steer_events == [{"text": "please also add docs", "images": [], "kind": "steer"}]


async def test_steer_during_a_final_answer_gets_its_own_model_request(git_repo: Path) -> None:
    scenario = {
        "name": "steer-final",
        "turns": [
            {"text": "All done. " * 30, "chunk_chars": 5, "chunk_delay_ms": 5},
            {"text": "Added the docs too."},
        ],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        turn = asyncio.create_task(h.agent.run_turn("fix it"))
        await h.wait_for("message.delta")
        h.agent.steer("add docs as well")
        result = await turn
    assert result.status == "completed" and result.final_message == "Added the docs too."
    assert len(h.requests()) == 2
    assert h.conversation(1)[-1]["content"][0]["text"] == "add docs as well"
    assert len(h.of("turn.completed")) == 1


async def test_interrupt_during_long_sleep_returns_fast_and_next_turn_works(git_repo: Path) -> None:
    scenario = {
        "name": "interrupt",
        "turns": [
            {
                "text": "Sleeping.",
                "tool_calls": [{"name": "shell", "arguments": {"command": ["sleep", "30"]}}],
            },
            {"text": "resumed fine"},
        ],
    }
    async with agent_harness(git_repo, [scenario], shell_timeout_ms=60_000) as h:
        turn = asyncio.create_task(h.agent.run_turn("sleep a while"))
        await h.wait_for("item.started", "command_execution")
        started = time.monotonic()
        h.agent.interrupt()
        result = await turn
        elapsed = time.monotonic() - started

        assert result.status == "interrupted"
        assert elapsed < 3.0
        children = psutil.Process().children(recursive=True)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not h.agent.running
        completed = h.of("item.completed", "command_execution")
        assert len(completed) == 1 and completed[0]["item"]["status"] == "failed"
        assert h.of("turn.failed")[-1]["error"] == {"message": "interrupted"}
        assert unanswered_calls(h.agent.history) == []
        assert h.agent.history[-1]["output"] == "aborted: interrupted by the user"

        again = await h.agent.run_turn("carry on")
    assert again.status == "completed" and again.final_message == "resumed fine"
    assert "aborted: interrupted by the user" in h.tool_outputs(1)
    assert [d["turn"] for d in h.of("turn.started")] == [1, 2]
    assert h.of("user.message")[-1]["kind"] == "follow_up"


async def test_interrupt_while_streaming_keeps_the_partial_answer(git_repo: Path) -> None:
    scenario = {
        "name": "slow",
        "turns": [{"text": "word " * 400, "chunk_chars": 5, "chunk_delay_ms": 5}, {"text": "next"}],
    }
    async with agent_harness(git_repo, [scenario]) as h:
        turn = asyncio.create_task(h.agent.run_turn("talk"))
        await h.wait_for("message.delta")
        h.agent.interrupt()
        result = await turn
        assert result.status == "interrupted"
        assert result.final_message.startswith("word")
        message = h.of("item.completed", "agent_message")[-1]["item"]
        assert message["text"] == result.final_message and not message.get("discarded")
        assert h.agent.history[-1] == {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": result.final_message}],
        }
        assert (await h.agent.run_turn("go on")).status == "completed"


async def test_image_attached_to_a_prompt_is_sent(git_repo: Path, tmp_path: Path) -> None:
    image = write_png(tmp_path / "screen.png")
    scenario = {"name": "img", "turns": [{"text": "I see a red square"}]}
    for wire in ("responses", "chat"):
        async with agent_harness(git_repo, [scenario], wire=wire) as h:
            result = await h.agent.run_turn("what is this?", images=[image])
        assert result.status == "completed"
        assert h.of("user.message")[0]["images"] == ["screen.png"]
        content = h.conversation(0)[-1]["content"]
        if wire == "responses":
            urls = [p["image_url"] for p in content if p["type"] == "input_image"]
        else:
            urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
        assert len(urls) == 1 and urls[0].startswith("data:image/png;base64,")


async def test_missing_or_non_image_attachment_is_a_clear_error_and_nothing_is_sent(
    git_repo: Path, tmp_path: Path
) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    scenario = {"name": "img", "turns": [{"text": "never"}]}
    async with agent_harness(git_repo, [scenario]) as h:
        missing = await h.agent.run_turn("look", images=[tmp_path / "nope.png"])
        wrong = await h.agent.run_turn("look", images=[text_file])
        with pytest.raises(ValueError, match="image not found"):
            h.agent.steer("and this", images=[tmp_path / "nope.png"])
    assert missing.status == "failed" and missing.error is not None
    assert "image not found" in missing.error and "nope.png" in missing.error
    assert wrong.status == "failed" and wrong.error is not None and "not an image" in wrong.error
    assert h.requests() == [] and h.events == [] and h.agent.history == []


async def test_agents_md_from_root_and_subfolder_reach_the_model_root_first(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "AGENTS.md": "ROOT-RULE: keep it simple\n",
            "web/AGENTS.md": "SUB-RULE: use tabs\n",
            "web/x.js": "1\n",
        },
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "AGENTS.md").write_text("GLOBAL-RULE: be brief\n")
    scenario = {"name": "docs", "turns": [{"text": "ok"}]}
    for wire in ("responses", "chat"):
        async with agent_harness(repo, [scenario], wire=wire, cwd=repo / "web", home=home) as h:
            await h.agent.run_turn("hello")
        text = h.instructions(0)
        positions = [text.index(rule) for rule in ("GLOBAL-RULE", "ROOT-RULE", "SUB-RULE")]
        assert positions == sorted(positions)
        assert "web/AGENTS.md" in text
        assert str(repo) in text  # the local sandbox's working directory


async def test_resumed_agent_continues_an_existing_history(git_repo: Path) -> None:
    scenario = {"name": "resume", "turns": [{"text": "first answer"}, {"text": "second answer"}]}
    async with agent_harness(git_repo, [scenario]) as h:
        await h.agent.run_turn("first")
        saved = json.loads(json.dumps(h.agent.history))
    async with agent_harness(git_repo, [scenario], history=saved) as h2:
        result = await h2.agent.run_turn("second")
    assert result.final_message == "second answer"
    assert h2.of("turn.started") == [{"turn": 2}]
    assert h2.of("user.message")[0]["kind"] == "follow_up"
