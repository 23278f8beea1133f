"""The rollout store: one JSON-lines file of events per task, the agent history, and a task index.

Layout under the data dir::

    rollouts/<task_id>.jsonl          every event of the task, in seq order
    rollouts/<task_id>.history.json   the agent's conversation history (rewritten atomically)
    index.json                        one record per task (rewritten atomically)

Events are buffered in memory and written by one background writer every `flush_interval_s`
(and at once when a caller asks, e.g. on a status change); file I/O never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import aiofiles

from codex_tui.protocol import Event

INDEX_VERSION = 1


@dataclass(slots=True)
class Checkpoint:
    """The state before one turn: a workspace checkpoint id and how long the history was."""

    id: str
    history_len: int
    turn: int


@dataclass(slots=True)
class TaskRecord:
    """Everything the store keeps about one task (the index row)."""

    id: str
    title: str
    prompt: str
    repo: str
    created: float
    updated: float
    status: str = "queued"
    message: str = ""
    images: list[str] = field(default_factory=list)
    attempt: int = 1
    attempts: int = 1
    group_id: str = ""
    mode: str = "auto"
    model: str = ""
    provider: str = ""
    """The model provider the task was started with ("" = the config's)."""
    effort: str = "medium"
    added: int = 0
    removed: int = 0
    tokens: int = 0
    turns: int = 0
    archived: bool = False
    workspace: str = ""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    approve_all: bool = False
    pruned: bool = False
    """The checkout was deleted by `tasks prune`; the rollout stays browsable."""
    owner_pid: int = 0
    """The process that last ran a turn of this task (tells a crash from another live app)."""
    owner_start: str = ""
    """That process's start time (`process_start_ticks`), so a reused pid is not taken for it."""
    unsent: str = ""
    """A message whose turn failed before it reached the agent (sandbox down…): sent with the next one."""

    def summary(self) -> dict[str, Any]:
        """Plain JSON summary for front ends (no checkout paths or checkpoints)."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "message": self.message,
            "attempt": self.attempt,
            "attempts": self.attempts,
            "group_id": self.group_id,
            "created": self.created,
            "updated": self.updated,
            "added": self.added,
            "removed": self.removed,
            "tokens": self.tokens,
            "turns": self.turns,
            "mode": self.mode,
            "model": self.model,
            "provider": self.provider,
            "repo": self.repo,
        }

    def to_dict(self) -> dict[str, Any]:
        """The full record as JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TaskRecord:
        """Rebuild a record from `to_dict` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        data["checkpoints"] = [Checkpoint(**c) for c in raw.get("checkpoints") or []]
        return cls(**data)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_events(lines: Iterable[str]) -> list[Event]:
    """Events from rollout lines; a torn or corrupt line (crash mid-write) is skipped."""
    events: list[Event] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            events.append(Event.from_json(line))
        except (ValueError, KeyError, TypeError):
            continue
    return events


def _read_last_seq(path: Path) -> int:
    """The seq of the last intact event line of a rollout file (0 when empty or missing)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return 0
    events = parse_events(tail.splitlines()[-50:])
    if events:
        return max(e.seq for e in events)
    if size > 65536:
        return max((e.seq for e in parse_events(path.read_text("utf-8", "replace").splitlines())), default=0)
    return 0


class RolloutStore:
    """Persists events, histories and the task index under one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        flush_interval_s: float = 0.1,
        on_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.rollouts_dir = self.data_dir / "rollouts"
        self.index_path = self.data_dir / "index.json"
        self.flush_interval_s = flush_interval_s
        self.records: dict[str, TaskRecord] = {}
        self._pending: dict[str, deque[Event]] = {}
        self._index_dirty = False
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._closed = False
        self._deleted: set[str] = set()
        self.last_error: str = ""
        self.on_error = on_error
        """Told (task id or "", message) when a write fails; each distinct message once."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the folders, load the index and start the background writer."""
        await asyncio.to_thread(self.rollouts_dir.mkdir, parents=True, exist_ok=True)
        self.records = await asyncio.to_thread(self.read_records)
        self._closed = False
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="rollout-writer")

    async def close(self) -> None:
        """Flush everything and stop the writer; safe to call twice."""
        self._closed = True
        if self._writer is not None:
            self._wake.set()
            writer, self._writer = self._writer, None
            await writer  # never cancelled: a write in a worker thread would outlive the cancel
        await self.flush()

    # --- events ------------------------------------------------------------------------------

    def append(self, event: Event, *, urgent: bool = False) -> None:
        """Queue an event for its task's rollout; `urgent` wakes the writer at once."""
        self._pending.setdefault(event.task_id, deque()).append(event)
        if urgent:
            self._wake.set()

    def pending_events(self, task_id: str) -> list[Event]:
        """Events appended but not yet fully written (including the batch being written)."""
        return list(self._pending.get(task_id, ()))

    async def read_events(self, task_id: str) -> list[Event]:
        """Every event of a task: what is on disk plus what is still buffered, in seq order."""
        pending = self.pending_events(task_id)
        on_disk = await asyncio.to_thread(self._read_rollout, task_id)
        merged = {e.seq: e for e in on_disk}
        merged.update({e.seq: e for e in pending})
        return [merged[s] for s in sorted(merged)]

    async def last_seqs(self, task_ids: Iterable[str]) -> dict[str, int]:
        """The last persisted seq of each task (read from the tail of its rollout)."""
        ids = list(task_ids)
        return await asyncio.to_thread(lambda: {tid: _read_last_seq(self.rollout_path(tid)) for tid in ids})

    def rollout_path(self, task_id: str) -> Path:
        """Where a task's events are written."""
        return self.rollouts_dir / f"{task_id}.jsonl"

    def history_path(self, task_id: str) -> Path:
        """Where a task's agent history is written."""
        return self.rollouts_dir / f"{task_id}.history.json"

    # --- records, index, histories -----------------------------------------------------------

    def put(self, record: TaskRecord, *, urgent: bool = False) -> None:
        """Add or update a task record; the index is rewritten by the writer soon after."""
        self.records[record.id] = record
        self._index_dirty = True
        if urgent:
            self._wake.set()

    async def save_history(self, task_id: str, history: list[dict[str, Any]]) -> None:
        """Rewrite a task's history file atomically (in a thread)."""
        text = json.dumps(history, ensure_ascii=False)
        await asyncio.to_thread(write_atomic, self.history_path(task_id), text)

    async def load_history(self, task_id: str) -> list[dict[str, Any]]:
        """A task's saved history, or [] when there is none or it is unreadable."""
        return await asyncio.to_thread(self._read_history, task_id)

    async def delete_task_files(self, task_id: str) -> None:
        """Remove a task's rollout and history files and its record."""
        self.records.pop(task_id, None)
        self._pending.pop(task_id, None)
        self._deleted.add(task_id)
        self._index_dirty = True
        for path in (self.rollout_path(task_id), self.history_path(task_id)):
            await asyncio.to_thread(path.unlink, missing_ok=True)
        await self.flush()

    # --- writing -----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every buffered event and, if changed, the index."""
        async with self._flush_lock:
            for task_id in list(self._pending):
                await self._flush_task(task_id)
            if self._index_dirty:
                self._index_dirty = False
                rows = [r.to_dict() for r in self.records.values()]
                try:
                    await asyncio.to_thread(self._write_index, rows, set(self._deleted))
                except OSError as exc:
                    self._index_dirty = True
                    self._report("", f"cannot write {self.index_path}: {exc.strerror}")

    async def _flush_task(self, task_id: str) -> None:
        queue = self._pending.get(task_id)
        if not queue:
            return
        batch = list(queue)
        payload = "".join(e.to_json() + "\n" for e in batch)
        try:
            async with aiofiles.open(self.rollout_path(task_id), "a", encoding="utf-8") as handle:
                await handle.write(payload)
        except OSError as exc:
            self._report(task_id, f"cannot write {self.rollout_path(task_id)}: {exc.strerror}")
            return
        for _ in batch:
            queue.popleft()

    async def _write_loop(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the writer must survive anything; the error is reported
                self._report("", f"rollout writer: {exc}")

    def _report(self, task_id: str, message: str) -> None:
        if message == self.last_error:
            return
        self.last_error = message
        if self.on_error is not None:
            self.on_error(task_id, message)

    def _write_index(self, rows: list[dict[str, Any]], deleted: set[str]) -> None:
        """Write the index, keeping rows another process added since we loaded it."""
        known = {row["id"] for row in rows} | deleted
        others = [row for row in self._read_index_rows() if row.get("id") not in known]
        text = json.dumps({"version": INDEX_VERSION, "tasks": rows + others}, ensure_ascii=False, indent=1)
        write_atomic(self.index_path, text)

    # --- reading (threads) -------------------------------------------------------------------

    def _read_index_rows(self, *, report: bool = False) -> list[dict[str, Any]]:
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            if report:
                self.last_error = f"{self.index_path} is unreadable ({exc}); starting with an empty index"
            return []
        rows = raw.get("tasks", []) if isinstance(raw, dict) else []
        return [row for row in rows if isinstance(row, dict) and isinstance(row.get("id"), str)]

    def read_records(self) -> dict[str, TaskRecord]:
        """The task records of index.json (blocking; `open` runs it in a thread)."""
        records: dict[str, TaskRecord] = {}
        for row in self._read_index_rows(report=True):
            try:
                record = TaskRecord.from_dict(row)
            except (TypeError, ValueError, KeyError):
                continue
            records[record.id] = record
        return records

    def _read_rollout(self, task_id: str) -> list[Event]:
        try:
            text = self.rollout_path(task_id).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return parse_events(text.splitlines())

    def _read_history(self, task_id: str) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.history_path(task_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return data if isinstance(data, list) else []
