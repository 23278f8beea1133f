"""A task's artifacts: copies of files the agent attached, kept in the data folder (never in the
checkout) as `<data>/artifacts/<task id>/NNN-<name>` with a `manifest.json` listing their items.

The folder is the host's own (trusted); the copies outlive the checkout (pruning a task's checkout
leaves them). Sizes are capped per task; the manifest is rewritten atomically after each copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Final

from codex_tui.tools.artifact import MAX_TASK_ARTIFACT_BYTES, ArtifactError

MANIFEST: Final = "manifest.json"
MAX_TASK_ARTIFACTS: Final = 500
"""Files one task may keep: empty files cost no bytes, but each one rewrites the manifest and shows."""
_NEW_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def artifacts_folder(data_dir: Path, task_id: str) -> Path:
    """Where a task's artifact copies live."""
    return Path(data_dir) / "artifacts" / task_id


def list_artifacts(data_dir: Path, task_id: str) -> list[dict[str, Any]]:
    """The task's artifact items, oldest first ([] when it has none or the manifest is unreadable)."""
    return _read_manifest(artifacts_folder(data_dir, task_id) / MANIFEST)


class ArtifactStore:
    """One task's artifact folder: saves copies, records them, and enforces the per-task cap."""

    def __init__(
        self, data_dir: Path, task_id: str, *, max_total_bytes: int = MAX_TASK_ARTIFACT_BYTES
    ) -> None:
        self.folder = artifacts_folder(data_dir, task_id)
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()

    def items(self) -> list[dict[str, Any]]:
        """The saved artifact items, oldest first."""
        return _read_manifest(self.folder / MANIFEST)

    def used_bytes(self) -> int:
        """Bytes already kept for this task."""
        return sum(_size(item) for item in self.items())

    def remaining_bytes(self) -> int:
        """How many more bytes this task may keep."""
        return max(0, self.max_total_bytes - self.used_bytes())

    def save(self, item: dict[str, Any], data: bytes) -> dict[str, Any]:
        """Write `data` as a new copy named after `item['name']`, add the item (with `path`) to the
        manifest and return it; raises ArtifactError past the task's cap or when the disk refuses."""
        with self._lock:
            items = self.items()
            if len(items) >= MAX_TASK_ARTIFACTS:
                raise ArtifactError(
                    f"cannot attach {item.get('name')}: this task already keeps {MAX_TASK_ARTIFACTS} "
                    "artifacts (the limit); nothing was copied"
                )
            used = sum(_size(known) for known in items)
            if used + len(data) > self.max_total_bytes:
                limit = self.max_total_bytes // 1_048_576
                raise ArtifactError(
                    f"cannot attach {item.get('name')}: this task's artifacts would pass {limit} MB "
                    f"({used / 1_048_576:.1f} MB kept already); nothing was copied"
                )
            try:
                path = self._write_copy(len(items) + 1, str(item["name"]), data)
            except OSError as error:
                raise ArtifactError(
                    f"cannot keep {item.get('name')}: {error.strerror or error} (in {self.folder})"
                ) from None
            saved = {**item, "path": str(path)}
            try:
                self._write_manifest([*items, saved])
            except OSError as error:
                path.unlink(missing_ok=True)
                raise ArtifactError(
                    f"cannot record {item.get('name')}: {error.strerror or error} (in {self.folder})"
                ) from None
            return saved

    def _write_copy(self, number: int, name: str, data: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for attempt in range(number, number + 1000):
            path = self.folder / f"{attempt:03d}-{name}"
            try:
                fd = os.open(path, _NEW_FILE_FLAGS, 0o600)
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return path
        raise OSError(f"no free name for {name}")

    def _write_manifest(self, items: list[dict[str, Any]]) -> None:
        target = self.folder / MANIFEST
        tmp = target.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"artifacts": items}, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = raw.get("artifacts") if isinstance(raw, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _size(item: dict[str, Any]) -> int:
    size = item.get("size")
    return size if isinstance(size, int) and size > 0 else 0
