"""A command's output is persisted bounded (head, "… N bytes omitted …", tail) and `tasks show` streams.

The live front ends still see every delta; the rollout keeps the first and the last 64 KiB of each
command, so a replay shows a sensible log and a command printing hundreds of megabytes costs the
data folder about 128 KiB.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import tracemalloc
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.cli import main
from codex_tui.protocol import Event
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.output_bound import OUTPUT_HEAD_BYTES, OUTPUT_TAIL_BYTES, omitted_marker
from codex_tui.tasks.store import RolloutStore, TaskRecord
from codex_tui.tui.state import AppState
from tests.test_tasks_support import scenario, scripted_config, shell_call, started_manager, submit

KIB = 1024


def numbered_lines(count: int, width: int = 64) -> str:
    """`count` distinct lines of `width` bytes (newline included), so any cut is visible."""
    return "".join(f"{i:08d} {'x' * (width - 10)}\n" for i in range(count))


def command_events(task_id: str, text: str, chunk: int, *, item_id: str = "c1") -> list[Event]:
    """item.started, the text as output deltas of `chunk` characters, item.completed."""
    item = {"id": item_id, "type": p.ITEM_COMMAND, "command": "noisy", "status": "in_progress"}
    events = [Event(p.ITEM_STARTED, task_id, 1, {"item": item})]
    for start in range(0, len(text), chunk):
        data = {"item_id": item_id, "stream": "stdout", "text": text[start : start + chunk]}
        events.append(Event(p.OUTPUT_DELTA, task_id, len(events) + 1, data))
    done = {**item, "status": "completed", "exit_code": 0}
    events.append(Event(p.ITEM_COMPLETED, task_id, len(events) + 1, {"item": done}))
    return events


def output_of(events: list[Event], item_id: str = "c1") -> str:
    """The output a replay shows for one command: its deltas in seq order."""
    deltas = [e for e in events if e.type == p.OUTPUT_DELTA and e.data.get("item_id") == item_id]
    return "".join(str(e.data["text"]) for e in sorted(deltas, key=lambda e: e.seq))


async def persisted(tmp_path: Path, events: list[Event]) -> tuple[list[Event], int]:
    """Append `events` to a store, close it, and read them back from disk: (events, file size)."""
    store = RolloutStore(tmp_path, flush_interval_s=0.01)
    await store.open()
    for event in events:
        store.append(event)
    await store.close()
    reread = RolloutStore(tmp_path)
    await reread.open()
    stored = await reread.read_events(events[0].task_id)
    await reread.close()
    return stored, reread.rollout_path(events[0].task_id).stat().st_size


async def test_long_output_is_persisted_as_head_marker_and_tail(tmp_path: Path) -> None:
    text = numbered_lines(50_000)  # 3.2 MB in 16 KiB deltas
    stored, size = await persisted(tmp_path, command_events("t-1", text, 16 * KIB))
    assert size < 160 * KIB, "3 MB of output costs the rollout about 128 KiB"
    shown = output_of(stored)
    head, _, rest = shown.partition("… ")
    omitted = int(rest.split(" ", 1)[0])
    tail = rest.split("…\n", 1)[1]
    assert text.startswith(head) and len(head) <= OUTPUT_HEAD_BYTES and head.endswith("\n")
    assert text.endswith(tail) and OUTPUT_TAIL_BYTES - 64 < len(tail) <= OUTPUT_TAIL_BYTES
    assert len(head) + omitted + len(tail) == len(text), "the marker counts exactly what is left out"
    assert omitted_marker(omitted) in shown
    assert stored[-1].type == p.ITEM_COMPLETED, "the tail is written before the command's completion"
    assert len({e.seq for e in stored}) == len(stored), "every seq is written once"


async def test_one_huge_chunk_keeps_its_first_and_last_64_kib(tmp_path: Path) -> None:
    text = numbered_lines(20_000)  # 1.28 MB in a single delta
    stored, size = await persisted(tmp_path, command_events("t-1", text, len(text)))
    shown = output_of(stored)
    assert size < 160 * KIB
    assert shown.startswith(text[:OUTPUT_HEAD_BYTES]) and shown.endswith(text[-OUTPUT_TAIL_BYTES:])
    assert f"… {len(text) - OUTPUT_HEAD_BYTES - OUTPUT_TAIL_BYTES} bytes omitted …" in shown


async def test_output_within_head_and_tail_budgets_is_kept_whole(tmp_path: Path) -> None:
    text = numbered_lines(1_500)  # 96 KB: more than the head, less than head + tail
    stored, _ = await persisted(tmp_path, command_events("t-1", text, 5_000))
    assert output_of(stored) == text


async def test_tail_keeps_stdout_and_stderr_apart(tmp_path: Path) -> None:
    events = command_events("t-1", "o" * (200 * KIB), 8 * KIB)
    completed = events.pop()
    for seq, stream in enumerate(("stderr", "stdout", "stderr"), len(events) + 1):
        events.append(Event(p.OUTPUT_DELTA, "t-1", seq, {"item_id": "c1", "stream": stream, "text": stream}))
    events.append(Event(p.ITEM_COMPLETED, "t-1", len(events) + 1, completed.data))
    stored, _ = await persisted(tmp_path, events)
    tail = [e for e in stored if e.type == p.OUTPUT_DELTA][-3:]
    assert [(e.data["stream"], e.data["text"]) for e in tail] == [
        ("stderr", "stderr"),
        ("stdout", "stdout"),
        ("stderr", "stderr"),
    ]


async def test_held_tail_is_written_at_close_and_seq_numbering_continues_after_it(tmp_path: Path) -> None:
    events = command_events("t-1", numbered_lines(5_000), 4 * KIB)[:-1]  # the command never completed
    events.append(Event(p.NOTE, "t-1", len(events) + 1, {"message": "after the output"}))
    stored, _ = await persisted(tmp_path, events)
    assert output_of(stored).endswith(numbered_lines(5_000)[-100:])
    store = RolloutStore(tmp_path)
    assert await store.last_seqs(["t-1"]) == {"t-1": len(events)}


# --- through the real manager and model -----------------------------------------------------------

NOISY_MB = 20
NOISY = scenario(
    "noisy",
    {
        "tool_calls": [
            shell_call(
                "python3",
                "-c",
                "import sys\n"
                f"for i in range({NOISY_MB * 16384}): sys.stdout.write(f'{{i:08d}} {{\"y\" * 54}}\\n')",
                timeout_ms=120_000,
            )
        ]
    },
    {"text": "Printed a lot."},
)


async def test_a_command_printing_megabytes_leaves_a_small_rollout_that_replays_head_and_tail(
    git_repo: Path, isolated_home: Path
) -> None:
    async with ScriptedServer([NOISY]) as srv:
        cfg = scripted_config(isolated_home, srv.base_url, model="scripted:noisy")
        async with started_manager(cfg, git_repo) as (manager, log):
            [task_id] = await submit(manager, "print a lot")
            assert await manager.wait_for(task_id, timeout=120) == "ready"
    live = sum(len(str(e.data["text"])) for e in log.of(task_id, p.OUTPUT_DELTA))
    assert live == NOISY_MB * 1024 * KIB, "the live front ends saw every byte"
    rollout = cfg.data_dir / "rollouts" / f"{task_id}.jsonl"
    assert rollout.stat().st_size < 256 * KIB
    state = AppState()
    reader = RolloutStore(cfg.data_dir)
    for event in await reader.read_events(task_id):
        state.apply(event)
    model = state.tasks[task_id]
    [command] = [c for c in model.commands.values() if c.command.startswith("python3")]
    text = "".join(op[3] for op in model.log if op[0] == "out" and op[1] == command.item_id)
    assert text.startswith("00000000 y") and text.endswith(f"{NOISY_MB * 16384 - 1:08d} {'y' * 54}\n")
    assert " bytes omitted …\n" in text and command.done and command.exit_code == 0


async def _index_one_task(data: Path, task_id: str) -> RolloutStore:
    store = RolloutStore(data)
    await store.open()
    now = time.time()
    store.put(TaskRecord(task_id, "big", "p", "/r", now, now, status="ready"))
    await store.close()
    return store


def test_tasks_show_streams_a_large_rollout_in_small_memory(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = asyncio.run(_index_one_task(isolated_home / "data", "t-big"))
    delta = {"item_id": "m1", "delta": "z" * 2000}
    with store.rollout_path("t-big").open("w") as handle:
        for seq in range(1, 10_001):  # 20 MB of streamed model text
            handle.write(Event(p.MESSAGE_DELTA, "t-big", seq, delta).to_json() + "\n")
        answer = {"item": {"id": "m1", "type": p.ITEM_AGENT_MESSAGE, "text": "the end"}}
        handle.write(Event(p.ITEM_COMPLETED, "t-big", 10_001, answer).to_json() + "\n")
    for module in ("codex_tui.tasks.manager", "codex_tui.tasks.task"):
        importlib.import_module(module)  # what `tasks show` imports is not what it reads
    tracemalloc.start()
    try:
        assert main(["tasks", "show", "t-big"]) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "the end" in capsys.readouterr().out
    assert peak < 4 * 1024 * KIB, f"tasks show held {peak} bytes for a 20 MB rollout"
