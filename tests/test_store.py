"""The rollout store: batched event files, atomic index and histories, crash-tolerant reading."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from codex_tui.protocol import Event
from codex_tui.tasks.store import Checkpoint, RolloutStore, TaskRecord


def _record(task_id: str, **fields: object) -> TaskRecord:
    now = time.time()
    return TaskRecord(id=task_id, title=task_id, prompt="p", repo="/r", created=now, updated=now, **fields)  # type: ignore[arg-type]


async def test_events_are_buffered_then_written_in_order(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path, flush_interval_s=60)
    await store.open()
    for seq in range(1, 6):
        store.append(Event("note", "t-1", seq, {"n": seq}))
    assert not store.rollout_path("t-1").exists(), "nothing is written before the batch is due"
    assert [e.seq for e in await store.read_events("t-1")] == [1, 2, 3, 4, 5]
    await store.flush()
    lines = store.rollout_path("t-1").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    await store.close()


async def test_urgent_event_is_written_without_waiting_for_the_interval(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path, flush_interval_s=60)
    await store.open()
    store.append(Event("task.status", "t-1", 1, {"status": "ready"}), urgent=True)
    for _ in range(200):
        if store.rollout_path("t-1").exists():
            break
        await asyncio.sleep(0.005)
    assert "ready" in store.rollout_path("t-1").read_text()
    await store.close()


async def test_close_flushes_every_buffered_event_and_the_index(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path, flush_interval_s=60)
    await store.open()
    store.put(_record("t-1", checkpoints=[Checkpoint("c1", 2, 1)]))
    for seq in range(1, 1001):
        store.append(Event("command.output_delta", "t-1", seq, {"text": "x" * 50}))
    await store.close()
    assert len(store.rollout_path("t-1").read_text().splitlines()) == 1000
    reopened = RolloutStore(tmp_path)
    records = reopened.read_records()
    assert records["t-1"].checkpoints == [Checkpoint("c1", 2, 1)]


async def test_torn_last_line_is_skipped_and_last_seq_found(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path)
    await store.open()
    path = store.rollout_path("t-1")
    good = [Event("note", "t-1", s).to_json() for s in (1, 2, 3)]
    path.write_text("\n".join(good) + '\n{"type":"note","task_id":"t-1","se')
    assert [e.seq for e in await store.read_events("t-1")] == [1, 2, 3]
    assert await store.last_seqs(["t-1", "t-missing"]) == {"t-1": 3, "t-missing": 0}
    await store.close()


async def test_history_is_rewritten_atomically_and_bad_files_read_as_empty(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path)
    await store.open()
    await store.save_history("t-1", [{"type": "message", "role": "user", "content": []}])
    await store.save_history("t-1", [{"type": "message", "role": "assistant", "content": []}])
    assert (await store.load_history("t-1"))[0]["role"] == "assistant"
    assert list(store.rollouts_dir.glob("*.tmp")) == []
    store.history_path("t-2").write_text("{not json")
    assert await store.load_history("t-2") == []
    await store.close()


async def test_index_keeps_tasks_another_process_added(tmp_path: Path) -> None:
    ours = RolloutStore(tmp_path)
    await ours.open()
    theirs = RolloutStore(tmp_path)
    await theirs.open()
    theirs.put(_record("t-theirs"))
    await theirs.flush()
    ours.put(_record("t-ours"))
    await ours.flush()
    rows = json.loads((tmp_path / "index.json").read_text())["tasks"]
    assert sorted(r["id"] for r in rows) == ["t-ours", "t-theirs"]
    await ours.delete_task_files("t-ours")
    rows = json.loads((tmp_path / "index.json").read_text())["tasks"]
    assert [r["id"] for r in rows] == ["t-theirs"]
    await ours.close()
    await theirs.close()


async def test_corrupt_index_starts_empty_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{{{")
    store = RolloutStore(tmp_path)
    await store.open()
    assert store.records == {}
    assert "unreadable" in store.last_error
    await store.close()


def test_record_round_trip_ignores_unknown_keys() -> None:
    record = _record("t-1", attempt=2, attempts=3, checkpoints=[Checkpoint("c", 4, 2)])
    raw = {**record.to_dict(), "from_the_future": True}
    assert TaskRecord.from_dict(raw) == record
    summary = record.summary()
    assert summary["attempt"] == 2 and "checkpoints" not in summary and "workspace" not in summary


async def test_failed_write_is_reported_once_and_retried(tmp_path: Path) -> None:
    errors: list[tuple[str, str]] = []
    store = RolloutStore(tmp_path, flush_interval_s=60, on_error=lambda tid, msg: errors.append((tid, msg)))
    await store.open()
    blocker = store.rollout_path("t-1")
    blocker.mkdir()  # appending to a folder fails like a full or broken disk would
    store.append(Event("note", "t-1", 1))
    await store.flush()
    store.append(Event("note", "t-1", 2))
    await store.flush()
    assert [tid for tid, _ in errors] == ["t-1"] and "cannot write" in errors[0][1]
    blocker.rmdir()
    await store.close()
    assert [json.loads(line)["seq"] for line in blocker.read_text().splitlines()] == [1, 2]
