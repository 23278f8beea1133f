"""Attacks on apply, commit-to-branch, the diff, checkpoints and undo, from the bytes of a checkout.

The sandbox controls every byte of its checkout; these tests write those bytes directly into the
checkout on the host (exactly what a command inside would leave there) and check that the host's
operations keep the user's repository, the host's memory and disk, and the user's terminal safe.
Each attack here worked against an earlier implementation.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codex_tui.boundary import safe_fs
from codex_tui.workspace import applyback, restore, snapshot
from codex_tui.workspace.applyback import FilePlan, execute_plans
from codex_tui.workspace.git import MAX_PATCH_BYTES, Workspace, WorkspaceError
from codex_tui.workspace.hostgit import HostGit
from tests.conftest import make_repo, run_git

MB = 1024 * 1024


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The user's repository."""
    return make_repo(tmp_path / "repo", {"app.py": "print('hi')\n", "docs/guide.md": "# guide\n"})


async def task_of(repo: Path, tmp_path: Path) -> Workspace:
    """A task checkout of `repo` (its files are the attacker's from here on)."""
    return await Workspace.create(repo, tmp_path / "worktrees" / "t1", "t1")


def sparse_file(path: Path, size: int, marker: bytes) -> None:
    """A file of `size` bytes that takes almost no disk: a hole, then `marker` at its end."""
    with open(path, "wb") as handle:
        handle.truncate(size - len(marker))
        handle.seek(size - len(marker))
        handle.write(marker)


def folder_bytes(folder: Path) -> int:
    """Total size of the regular files under `folder`."""
    return sum(
        os.lstat(os.path.join(top, name)).st_size for top, _dirs, files in os.walk(folder) for name in files
    )


# --- links and .git ------------------------------------------------------------------------------


async def test_link_through_a_link_to_the_repository_cannot_point_out_of_it(
    repo: Path, tmp_path: Path
) -> None:
    ws = await task_of(repo, tmp_path)
    os.symlink(".", ws.path / "here")
    os.symlink("here/..", ws.path / "up")  # reads as the repository, is its parent folder
    os.symlink("../here/../../..", ws.path / "docs" / "deep")
    os.symlink("../app.py", ws.path / "docs" / "app-link")  # a plain relative link stays allowed

    preflight = await ws.preflight()
    report = await ws.apply_to_source()

    assert sorted(preflight.conflicts) == ["docs/deep", "up"]
    assert "pointing out of the repository" in preflight.details["up"]
    assert not report.ok and "nothing was changed" in report.message
    assert not os.path.lexists(repo / "up") and not os.path.lexists(repo / "here")
    assert run_git(repo, "status", "--porcelain") == ""


async def test_paths_and_links_some_file_systems_read_as_git_are_refused(repo: Path, tmp_path: Path) -> None:
    ws = await task_of(repo, tmp_path)
    hfs = ".g\u200cit"  # HFS+ drops U+200C: this is .git on a Mac
    for name in (hfs, ".git.", "GIT~1"):
        (ws.path / name / "hooks").mkdir(parents=True)
        (ws.path / name / "hooks" / "pre-commit").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    (ws.path / "vendor").mkdir()
    os.symlink("../docs/.git/hooks", ws.path / "vendor" / "hooks")
    (ws.path / "ok.txt").write_text("fine\n")

    preflight = await ws.preflight()
    report = await ws.apply_to_source()

    assert sorted(preflight.conflicts) == sorted(
        [f"{hfs}/hooks/pre-commit", ".git./hooks/pre-commit", "GIT~1/hooks/pre-commit", "vendor/hooks"]
    )
    assert not report.ok
    assert sorted(os.listdir(repo)) == [".git", "app.py", "docs"]


def test_apply_never_writes_through_a_link_an_earlier_step_made(tmp_path: Path) -> None:
    """What a case-insensitive file system makes of `Lib -> …` then `lib/x`: the write is stopped."""
    target = tmp_path / "tree"
    target.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    plans = [
        FilePlan("lib", "write", content=os.fsencode(outside), symlink=True),
        FilePlan("lib/evil.txt", "write", content=b"pwned\n"),
    ]

    with pytest.raises(WorkspaceError, match="your folder was left as it was"):
        execute_plans(target, plans)

    assert list(outside.iterdir()) == []
    assert list(target.iterdir()) == []


async def test_file_named_with_a_leading_quote_is_compared_as_itself(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {'"notes.txt"': "same\n", "notes.txt": "same\n"})
    ws = await task_of(repo, tmp_path)
    (repo / '"notes.txt"').write_text("the user's edit\n")
    (ws.path / '"notes.txt"').write_text("the task's version\n")

    report = await ws.apply_to_source()

    assert not report.ok and report.conflicts == ['"notes.txt"']
    assert (repo / '"notes.txt"').read_text() == "the user's edit\n"


# --- the ignore-rules mirror ---------------------------------------------------------------------


async def test_a_gitignore_that_turns_into_a_folder_and_back_breaks_neither_diff_nor_undo(
    repo: Path, tmp_path: Path
) -> None:
    ws = await task_of(repo, tmp_path)
    ignore = ws.path / "pkg" / ".gitignore"
    ignore.parent.mkdir()
    ignore.write_text("*.log\n")
    await ws.diff()
    ignore.unlink()
    ignore.mkdir()
    (ignore / "inner.txt").write_text("x\n")
    await ws.diff()
    (ignore / "inner.txt").unlink()
    ignore.rmdir()
    ignore.write_text("*.log\n")
    (ws.path / "pkg" / "debug.log").write_text("noise\n")

    diff = await ws.diff()
    await ws.restore("base")

    assert [f.path for f in diff.files] == ["pkg/.gitignore"]
    assert not (ws.path / "pkg" / ".gitignore").exists()


async def test_one_gitignore_hard_linked_into_many_folders_is_not_copied_for_each(
    repo: Path, tmp_path: Path
) -> None:
    ws = await task_of(repo, tmp_path)
    rules = ws.path / ".gitignore"
    rules.write_bytes(b"".join(b"# pad %013d\n" % i for i in range(MB // 20 - 1)) + b"*.log\n")
    for n in range(40):
        folder = ws.path / f"d{n:02d}"
        folder.mkdir()
        os.link(rules, folder / ".gitignore")
        (folder / "kept.txt").write_text("x\n")
        (folder / "noise.log").write_text("x\n")

    diff = await ws.diff()

    mirror = ws.host.gitdir / "ignore-mirror"
    assert folder_bytes(mirror) <= 17 * MB  # 40 copies would be 40 MB: the budget is 16 MB (+ one file)
    paths = [f.path for f in diff.files]
    assert "d39/kept.txt" in paths and not [p for p in paths if p.endswith(".log")]


async def test_a_fifo_where_a_folder_was_cannot_block_undo(repo: Path, tmp_path: Path) -> None:
    ws = await task_of(repo, tmp_path)
    (ws.path / "docs" / "guide.md").unlink()
    (ws.path / "docs").rmdir()
    os.mkfifo(ws.path / "docs")

    await ws.restore("base")

    assert (ws.path / "docs" / "guide.md").read_text() == "# guide\n"


async def test_folders_renamed_between_snapshots_do_not_pile_up_in_the_mirror(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await task_of(repo, tmp_path)
    monkeypatch.setattr(snapshot, "SPARE_MIRROR_FOLDERS", 0, raising=False)
    top = ws.path / "gen"
    for round_ in range(6):
        if top.exists():
            top.rename(ws.path / "old")
            for folder in (ws.path / "old").iterdir():
                (folder / "f.txt").unlink()
                folder.rmdir()
            (ws.path / "old").rmdir()
        for n in range(200):
            (top / f"r{round_}-{n}").mkdir(parents=True)
            (top / f"r{round_}-{n}" / "f.txt").write_text("x\n")
        await ws.diff()

    mirrored = [folder for folder, _dirs, _files in os.walk(ws.host.gitdir / "ignore-mirror")]
    assert len(mirrored) <= 3 * 202


# --- memory and disk -----------------------------------------------------------------------------


async def test_a_folder_too_wide_to_list_gives_a_clear_error_not_a_full_memory(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await task_of(repo, tmp_path)
    deep = ws.path.joinpath(*["d" * 250] * 8)
    deep.mkdir(parents=True)
    (deep / "one").write_text("x\n")
    for n in range(400):
        os.link(deep / "one", deep / f"{n:04d}{'n' * 240}")
    monkeypatch.setattr(safe_fs, "MAX_FOLDER_PATH_BYTES", 512 * 1024, raising=False)

    with pytest.raises(WorkspaceError, match="too many files or too long names"):
        await ws.diff()


async def test_hard_links_to_one_file_are_read_once(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await task_of(repo, tmp_path)
    (ws.path / "big.bin").write_bytes(os.urandom(MB))
    for n in range(50):
        os.link(ws.path / "big.bin", ws.path / f"copy-{n}.bin")
    reads: list[str] = []

    def counted(fd: int, limit: int, shown: str) -> bytes:
        reads.append(shown)
        return safe_fs.read_bounded(fd, limit, shown)

    monkeypatch.setattr(snapshot, "read_bounded", counted)

    diff = await ws.diff()

    assert len(diff.files) == 51
    assert [name for name in reads if name.endswith(".bin")] == ["big.bin"]


async def test_patch_of_a_file_hard_linked_many_times_is_cut_not_held_whole(
    repo: Path, tmp_path: Path
) -> None:
    ws = await task_of(repo, tmp_path)
    line = b"x" * 99 + b"\n"
    (ws.path / "big.txt").write_bytes(line * (3 * MB // 100))
    for n in range(12):
        os.link(ws.path / "big.txt", ws.path / f"copy-{n:02d}.txt")

    diff = await ws.diff()

    assert MB < len(diff.patch) <= MAX_PATCH_BYTES  # whole, it would be 13 x 3 MB
    assert len(diff.files) == 13 and diff.truncated
    assert diff.patch.endswith("\n") and diff.patch.count("diff --git ") < 13


async def test_sparse_files_too_large_to_apply_are_refused_before_being_loaded(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await task_of(repo, tmp_path)
    for n in range(3):
        sparse_file(ws.path / f"disk-{n}.img", 4 * MB, b"%d" % n)
    (ws.path / "app.py").write_text("print('changed')\n")
    monkeypatch.setattr(applyback, "MAX_APPLY_BYTES", 8 * MB, raising=False)
    loaded: list[int] = []
    real = HostGit.blobs
    monkeypatch.setattr(HostGit, "blobs", lambda self, shas: _count(loaded, real(self, shas)))

    preflight = await ws.preflight()
    report = await ws.apply_to_source()

    assert not preflight.ok and "more than the 8 MB" in preflight.message
    assert not report.ok and "nothing was changed" in report.message
    assert sum(loaded) < MB
    assert (repo / "app.py").read_text() == "print('hi')\n" and not (repo / "disk-0.img").exists()


async def test_undo_loads_a_checkpoint_of_sparse_files_in_bounded_batches(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = await task_of(repo, tmp_path)
    for n in range(3):
        sparse_file(ws.path / f"disk-{n}.img", 4 * MB, b"%d" % n)
    checkpoint = await ws.checkpoint("sparse")
    for n in range(3):
        (ws.path / f"disk-{n}.img").unlink()
    monkeypatch.setattr(restore, "RESTORE_BATCH_BYTES", 4 * MB)
    loaded: list[int] = []
    real = HostGit.blobs
    monkeypatch.setattr(HostGit, "blobs", lambda self, shas: _count(loaded, real(self, shas)))

    await ws.restore(checkpoint)

    assert max(loaded) <= 4 * MB and len(loaded) == 3
    assert (ws.path / "disk-2.img").read_bytes()[-1:] == b"2"


def _count(loaded: list[int], blobs: dict[str, bytes]) -> dict[str, bytes]:
    loaded.append(sum(len(data) for data in blobs.values()))
    return blobs


# --- text that reaches the user's terminal -------------------------------------------------------


async def test_branch_commit_message_carries_no_escape_sequences_or_invalid_utf8(
    repo: Path, tmp_path: Path
) -> None:
    ws = await task_of(repo, tmp_path)
    (ws.path / "evil\x1b]52;c;cm0gLXJmIH4=\x07\nname.txt").write_text("x\n")
    fd = os.open(os.path.join(os.fsencode(ws.path), b"caf\xe9.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)

    report = await ws.commit_to_branch("codex/attack")

    assert report.ok, report.message
    message = subprocess.run(
        ["git", "log", "-1", "--format=%B", "codex/attack"], cwd=repo, capture_output=True, check=True
    ).stdout
    assert b"\x1b" not in message and b"\x07" not in message
    assert "- evil name.txt (added" in message.decode("utf-8")
    assert "- caf\ufffd.txt (added" in message.decode("utf-8")
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "-z", "codex/attack"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert set(listed.split(b"\0")) >= {b"evil\x1b]52;c;cm0gLXJmIH4=\x07\nname.txt", b"caf\xe9.txt"}
