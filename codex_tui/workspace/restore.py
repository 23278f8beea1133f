"""Put a checkpoint's files back into a task's checkout (undo), through safe_fs, in bounded batches."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from codex_tui.boundary.safe_fs import CheckoutRoot
from codex_tui.workspace.gitrun import WorkspaceError
from codex_tui.workspace.hostgit import MODE_EXEC, MODE_GITLINK, MODE_LINK, HostGit, Tree

RESTORE_BATCH_BYTES: Final = 64 * 1024 * 1024
"""Restoring holds about this much file content in memory at once (one file may be more): a checkpoint
of sparse files costs the sandbox no disk but holds their full size."""


def restore_files(root: CheckoutRoot, host: HostGit, current: Tree, wanted: Tree) -> None:
    """Make the checkout's files match `wanted` (paths not in either snapshot are left alone)."""
    gone = sorted((p for p in current if p not in wanted), key=lambda p: p.count("/"), reverse=True)
    for path in gone:
        if current[path][0] != MODE_GITLINK:
            root.remove(path)
            root.prune_empty_dirs(path)
    changed = [p for p, entry in wanted.items() if current.get(p) != entry and entry[0] != MODE_GITLINK]
    sizes = host.blob_sizes([wanted[p][1] for p in changed])
    for batch in _batches(changed, lambda p: sizes.get(wanted[p][1], 0), RESTORE_BATCH_BYTES):
        blobs = host.blobs([wanted[p][1] for p in batch])
        for path in batch:
            mode, sha = wanted[path]
            data = blobs.get(sha)
            if data is None:
                raise WorkspaceError(f"the checkpoint's copy of {path} is missing from the task's store")
            if mode == MODE_LINK:
                root.write_symlink(path, os.fsdecode(data), replace=True)
            else:
                root.write_file(path, data, executable=mode == MODE_EXEC, replace=True)


def _batches(items: list[str], size: Callable[[str], int], limit: int) -> list[list[str]]:
    """`items` in order, grouped so each group's total size stays within `limit` (or is one item)."""
    groups: list[list[str]] = []
    total = limit + 1
    for item in items:
        weight = size(item)
        if total + weight > limit:
            groups.append([])
            total = 0
        groups[-1].append(item)
        total += weight
    return groups
