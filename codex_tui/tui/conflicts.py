"""Conflict warnings: unapplied tasks of the same repository whose diffs change the same file.

Pure (no Textual). Attempts of one group are left out against each other: they are alternatives
by design (the user applies one of them), so their overlap is no news.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from codex_tui.tui.state import TaskModel

CONFLICT_STATUSES = frozenset({"starting", "running", "waiting_approval", "ready"})
"""Tasks whose changes are still on their way to the working tree (running, or done and not applied)."""

Conflicts = dict[str, list[tuple[str, str]]]
"""task id → [(path, other task id), …], sorted."""


def touched_paths(task: TaskModel) -> set[str]:
    """Every path the task's diff changes (a rename touches its old path too)."""
    paths: set[str] = set()
    for entry in task.files:
        for key in ("path", "old_path"):
            value = entry.get(key)
            if isinstance(value, str) and value:
                paths.add(value)
    return paths


def find_conflicts(tasks: Iterable[TaskModel]) -> Conflicts:
    """For each task, the files it changes that another unapplied task of its repository changes too."""
    by_path: dict[tuple[str, str], list[TaskModel]] = defaultdict(list)
    for task in tasks:
        if task.status in CONFLICT_STATUSES and task.kind == "code":  # a review's diff is not applied
            for path in touched_paths(task):
                by_path[(task.repo, path)].append(task)
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for (_repo, path), sharing in by_path.items():
        for task in sharing:
            for other in sharing:
                if other.id != task.id and not _same_group(task, other):
                    found[task.id].add((path, other.id))
    return {task_id: sorted(pairs) for task_id, pairs in found.items()}


def conflict_summary(pairs: list[tuple[str, str]], titles: dict[str, str] | None = None) -> str:
    """`calc.py also changed by t-2` (one line; `+N more` when there are several)."""
    if not pairs:
        return ""
    path, other = pairs[0]
    name = (titles or {}).get(other) or other
    more = f" (+{len(pairs) - 1} more)" if len(pairs) > 1 else ""
    return f"{path} also changed by {name}{more}"


def _same_group(a: TaskModel, b: TaskModel) -> bool:
    return bool(a.group_id) and a.group_id == b.group_id


class ConflictFinder:
    """`find_conflicts`, recomputed only when a task's status, diff, kind, repository or group
    changed: the app asks after every flush (30 Hz while tasks stream), diffs rarely change."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, str, int, str, str, str], ...] | None = None
        self._found: Conflicts = {}

    def __call__(self, tasks: Iterable[TaskModel]) -> Conflicts:
        tasks = list(tasks)
        key = tuple((t.id, t.status, t.diff_rev, t.kind, t.repo, t.group_id) for t in tasks)
        if key != self._key:
            self._key, self._found = key, find_conflicts(tasks)
        return self._found
