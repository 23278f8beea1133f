"""Snapshot objects nothing needs any more are pruned from the task's host git directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_tui.workspace import git as workspace_git
from codex_tui.workspace.git import Workspace
from tests.conftest import make_repo

MB = 1024 * 1024


def _rewrite(checkout: Path, name: str) -> None:
    (checkout / name).write_bytes(os.urandom(MB))  # random: no compression, each version costs 1 MB


async def test_old_snapshots_are_pruned_and_checkpoints_and_the_current_files_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_git, "PRUNE_AFTER_BYTES", 8 * MB)
    monkeypatch.setattr(workspace_git, "PRUNE_GRACE", "now")
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    ws = await Workspace.create(repo, tmp_path / "checkout", "t-prune")
    _rewrite(ws.path, "kept.bin")
    kept = (ws.path / "kept.bin").read_bytes()
    checkpoint = await ws.checkpoint("kept")
    for _ in range(12):  # 12 versions nobody keeps: diff snapshots only
        _rewrite(ws.path, "data.bin")
        await ws.diff()
    current = (ws.path / "data.bin").read_bytes()
    before = ws.host.loose_bytes()
    assert before > 12 * MB

    freed = await ws.tidy()

    assert freed > 9 * MB and ws.host.loose_bytes() < 4 * MB
    diff = await ws.diff()  # the current files: still whole (read again, written again if need be)
    assert sorted(f.path for f in diff.files) == ["data.bin", "kept.bin"]
    await ws.restore(checkpoint)
    assert (ws.path / "kept.bin").read_bytes() == kept and not (ws.path / "data.bin").exists()
    (ws.path / "data.bin").write_bytes(current)
    await ws.restore("base")
    assert sorted(os.listdir(ws.path)) == [".git", "README.md"]


async def test_tidy_does_nothing_below_the_threshold(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    ws = await Workspace.create(repo, tmp_path / "checkout", "t-small")
    _rewrite(ws.path, "data.bin")
    await ws.diff()
    _rewrite(ws.path, "data.bin")
    await ws.diff()
    assert await ws.tidy() == 0
    assert ws.host.loose_bytes() >= 2 * MB
