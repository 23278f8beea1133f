"""Task checkouts: creation from HEAD + uncommitted changes, diff, checkpoints, resume, removal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codex_tui.workspace.git import Workspace, WorkspaceError, slugify
from tests.conftest import make_repo, run_git


def status(repo: Path) -> str:
    """`git status --porcelain` of a repository, including untracked files one by one."""
    return run_git(repo, "status", "--porcelain", "--untracked-files=all")


def snapshot_files(root: Path) -> dict[str, bytes]:
    """Every file under root except .git, with its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not path.is_file():
            continue
        files[rel] = path.read_bytes()
    return files


@pytest.fixture
def dirty_repo(tmp_path: Path) -> Path:
    """A repository with unstaged, staged, deleted, untracked and ignored changes."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "calc.py": "def add(a, b):\n    return a + b\n",
            "README.md": "# calc\n",
            "old.txt": "to be deleted\n",
            ".gitignore": "build/\n*.log\n",
        },
    )
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    (repo / "README.md").write_text("# calc\n\nStaged line.\n")
    run_git(repo, "add", "README.md")
    (repo / "old.txt").unlink()
    (repo / "notes").mkdir()
    (repo / "notes" / "todo.txt").write_text("untracked note\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\0\1\2")
    (repo / "debug.log").write_text("ignored\n")
    return repo


async def test_checkout_has_head_uncommitted_and_untracked_changes(dirty_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")

    checkout = ws.path
    assert run_git(checkout, "rev-parse", "HEAD") == run_git(dirty_repo, "rev-parse", "HEAD")
    assert run_git(checkout, "branch", "--show-current").strip() == "main"
    assert status(checkout) == status(dirty_repo)
    assert (checkout / "calc.py").read_text() == (dirty_repo / "calc.py").read_text()
    assert (checkout / "notes" / "todo.txt").read_text() == "untracked note\n"
    assert not (checkout / "old.txt").exists()
    assert "Staged line." in run_git(checkout, "diff", "--cached")
    assert (await ws.diff()).files == []


async def test_ignored_files_are_not_copied(dirty_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")

    assert not (ws.path / "build").exists()
    assert not (ws.path / "debug.log").exists()


async def test_agent_edits_in_checkout_leave_user_tree_untouched(dirty_repo: Path, tmp_path: Path) -> None:
    before_files, before_status = snapshot_files(dirty_repo), status(dirty_repo)
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")

    (ws.path / "calc.py").write_text("broken\n")
    (ws.path / "README.md").unlink()
    (ws.path / "new.py").write_text("x = 1\n")
    run_git(ws.path, "add", "-A")
    run_git(ws.path, "commit", "-q", "-m", "agent commit")

    assert snapshot_files(dirty_repo) == before_files
    assert status(dirty_repo) == before_status
    assert run_git(dirty_repo, "log", "--oneline").count("\n") == 1


async def test_without_uncommitted_changes_checkout_is_clean_head(dirty_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1", include_uncommitted=False)

    assert status(ws.path) == ""
    assert (ws.path / "old.txt").read_text() == "to be deleted\n"
    assert not (ws.path / "notes").exists()


async def test_checkout_git_works_and_borrowed_objects_are_listed_as_mounts(
    git_repo: Path, tmp_path: Path
) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")

    assert ws.extra_ro_mounts == [git_repo.resolve() / ".git" / "objects"]
    assert "initial" in run_git(ws.path, "log", "--oneline")
    assert run_git(ws.path, "config", "user.name").strip() == "codex-tui"
    (ws.path / "calc.py").write_text("changed\n")
    assert status(ws.path) == " M calc.py\n"


async def test_diff_reports_each_kind_of_change(tmp_path: Path) -> None:
    body = "".join(f"line {i}\n" for i in range(20))
    repo = make_repo(
        tmp_path / "repo",
        {"a.py": "one\ntwo\nthree\n", "b.txt": "bye\n", "c.py": body, ".gitignore": "*.tmp\n"},
    )
    ws = await Workspace.create(repo, tmp_path / "task", "t1")

    (ws.path / "a.py").write_text("one\n2\nthree\nfour\n")
    (ws.path / "b.txt").unlink()
    (ws.path / "c.py").rename(ws.path / "d.py")
    (ws.path / "e.txt").write_text("new\nfile\n")
    (ws.path / "img.bin").write_bytes(bytes(range(256)))
    (ws.path / "scratch.tmp").write_text("ignored\n")
    diff = await ws.diff()

    by_path = {f.path: f for f in diff.files}
    assert set(by_path) == {"a.py", "b.txt", "d.py", "e.txt", "img.bin"}
    assert (by_path["a.py"].status, by_path["a.py"].added, by_path["a.py"].removed) == ("modified", 2, 1)
    assert (by_path["b.txt"].status, by_path["b.txt"].removed) == ("deleted", 1)
    assert (by_path["d.py"].status, by_path["d.py"].old_path) == ("renamed", "c.py")
    assert (by_path["e.txt"].status, by_path["e.txt"].added) == ("added", 2)
    assert by_path["img.bin"].binary and by_path["img.bin"].status == "added"
    assert (diff.added, diff.removed) == (4, 2)
    assert "Binary files /dev/null and b/img.bin differ" in diff.patch
    assert "rename from c.py" in diff.patch and "+four" in diff.patch
    summary = diff.summary_dict()
    assert summary["added"] == 4 and summary["removed"] == 2
    assert {"path": "e.txt", "status": "added", "added": 2, "removed": 0}.items() <= summary["files"][
        3
    ].items()


async def test_diff_is_against_the_start_even_after_agent_commits(dirty_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")

    (ws.path / "calc.py").write_text("def add(a, b):\n    return b + a\n")
    run_git(ws.path, "commit", "-q", "-am", "agent commit")
    diff = await ws.diff()

    assert [f.path for f in diff.files] == ["calc.py"]
    assert "-    return a - b" in diff.patch


async def test_diff_leaves_the_checkout_index_alone(git_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")
    (ws.path / "new.py").write_text("x = 1\n")
    (ws.path / "calc.py").write_text("changed\n")

    await ws.diff()
    await ws.checkpoint("turn 1")

    assert status(ws.path) == " M calc.py\n?? new.py\n"


async def test_restore_removes_created_files_and_brings_back_deleted_ones(
    dirty_repo: Path, tmp_path: Path
) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")
    start = snapshot_files(ws.path)
    first = await ws.checkpoint("before turn 1")

    (ws.path / "calc.py").unlink()
    (ws.path / "README.md").write_text("rewritten\n")
    (ws.path / "pkg" / "deep").mkdir(parents=True)
    (ws.path / "pkg" / "deep" / "mod.py").write_text("x = 1\n")
    after_turn = snapshot_files(ws.path)
    second = await ws.checkpoint("after turn 1")
    await ws.restore(first)

    assert snapshot_files(ws.path) == start
    assert not (ws.path / "pkg").exists()
    assert run_git(ws.path, "rev-parse", "HEAD") == run_git(dirty_repo, "rev-parse", "HEAD")
    assert (await ws.diff()).files == []
    await ws.restore(second)
    assert snapshot_files(ws.path) == after_turn
    await ws.restore("base")
    assert snapshot_files(ws.path) == start
    assert (first, second) == ("1", "2")


async def test_restore_of_unknown_checkpoint_is_a_clear_error(git_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")

    with pytest.raises(WorkspaceError, match="unknown checkpoint '7'"):
        await ws.restore("7")
    with pytest.raises(WorkspaceError, match="unknown checkpoint"):
        await ws.restore("HEAD; rm -rf /")


async def test_open_resumes_a_checkout_after_restart(git_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1", title="Fix add")
    (ws.path / "calc.py").write_text("changed\n")
    assert await ws.checkpoint("turn 1") == "1"

    again = await Workspace.open(git_repo, tmp_path / "task", "t1")

    assert (again.source, again.title, again.extra_ro_mounts) == (ws.source, "Fix add", ws.extra_ro_mounts)
    assert [f.path for f in (await again.diff()).files] == ["calc.py"]
    assert await again.checkpoint("turn 2") == "2"
    await again.restore("base")
    assert (again.path / "calc.py").read_text() == (git_repo / "calc.py").read_text()


async def test_open_refuses_a_missing_or_foreign_checkout(git_repo: Path, tmp_path: Path) -> None:
    await Workspace.create(git_repo, tmp_path / "task", "t1")

    with pytest.raises(WorkspaceError, match="holds the checkout of task t1, not t2"):
        await Workspace.open(git_repo, tmp_path / "task", "t2")
    with pytest.raises(WorkspaceError, match="no task checkout"):
        await Workspace.open(git_repo, tmp_path / "nowhere", "t1")


async def test_non_git_folder_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")

    with pytest.raises(WorkspaceError, match="is not a git repository; run `git init` first or pass"):
        await Workspace.create(folder, tmp_path / "task", "t1")
    assert not (tmp_path / "task").exists()


async def test_non_git_folder_is_supported_with_allow_non_git(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "main.py").write_text("print('hi')\n")

    ws = await Workspace.create(folder, tmp_path / "task", "t1", allow_non_git=True)
    (ws.path / "src" / "main.py").write_text("print('hello')\n")

    assert not (folder / ".git").exists()
    assert ws.extra_ro_mounts == []
    assert run_git(ws.path, "log", "--format=%s").strip().startswith("codex-tui: starting snapshot")
    assert status(ws.path) == " M src/main.py\n"
    assert [f.path for f in (await ws.diff()).files] == ["src/main.py"]


async def test_bad_sources_and_destinations_are_refused_clearly(git_repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    run_git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(bare))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")

    with pytest.raises(WorkspaceError, match="bare repository"):
        await Workspace.create(bare, tmp_path / "t-bare", "t1")
    with pytest.raises(WorkspaceError, match="already exists and is not empty"):
        await Workspace.create(git_repo, busy, "t1")
    with pytest.raises(WorkspaceError, match="cannot be inside the folder it copies"):
        await Workspace.create(git_repo, git_repo / ".codex" / "task", "t1")
    with pytest.raises(WorkspaceError, match="is not a folder"):
        await Workspace.create(tmp_path / "missing", tmp_path / "t-missing", "t1")
    assert (busy / "file").read_text() == "x"


async def test_repository_without_commits_gets_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "trunk")
    (repo / "app.py").write_text("x = 1\n")

    ws = await Workspace.create(repo, tmp_path / "task", "t1")
    (ws.path / "app.py").write_text("x = 2\n")

    assert run_git(ws.path, "symbolic-ref", "--short", "HEAD").strip() == "trunk"
    assert status(ws.path) == "?? app.py\n"
    assert [(f.path, f.status) for f in (await ws.diff()).files] == [("app.py", "modified")]


async def test_subfolder_source_checks_out_the_whole_repository(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "mod.py").write_text("x = 1\n")
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "pkg")

    ws = await Workspace.create(git_repo / "pkg", tmp_path / "task", "t1")

    assert (ws.source, ws.subdir) == (git_repo.resolve(), "pkg")
    assert (ws.path / "calc.py").exists() and (ws.path / "pkg" / "mod.py").exists()


async def test_remove_deletes_the_checkout_but_never_a_foreign_folder(git_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")
    locked = ws.path / "cache"
    locked.mkdir()
    (locked / "pinned.txt").write_text("read-only\n")
    os.chmod(locked, 0o555)

    await ws.remove()
    await ws.remove()

    assert not ws.path.exists()
    assert (git_repo / "calc.py").exists()
    other = await Workspace.create(git_repo, tmp_path / "other", "t9")
    stranger = Workspace(
        path=tmp_path / "foreign", meta={**_meta(other), "task_id": "t9"}, host=other.host, base={}
    )
    stranger.path.mkdir()
    (stranger.path / "keep.txt").write_text("mine\n")
    with pytest.raises(WorkspaceError, match="refusing to delete"):
        await stranger.remove()
    assert (stranger.path / "keep.txt").exists()


def _meta(ws: Workspace) -> dict[str, object]:
    return {"task_id": ws.task_id, "source": str(ws.source), "source_is_git": True}


def test_slugify_makes_short_branch_safe_names() -> None:
    assert slugify("Fix the login bug!") == "fix-the-login-bug"
    assert slugify("Ünïcödé: café / naïve") == "unicode-cafe-naive"
    assert slugify("   ") == "task"
    long = slugify("refactor the entire payment processing pipeline to use async io everywhere")
    assert len(long) <= 48 and not long.endswith("-") and long.startswith("refactor-the-entire")
    assert subprocess.run(["git", "check-ref-format", f"refs/heads/codex/{long}"]).returncode == 0


async def test_linked_worktree_source_checks_out_its_own_branch(git_repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    run_git(git_repo, "worktree", "add", "-q", "-b", "feature", str(worktree))
    (worktree / "calc.py").write_text("feature work\n")
    run_git(worktree, "commit", "-q", "-am", "feature commit")

    ws = await Workspace.create(worktree, tmp_path / "task", "t1")

    assert run_git(ws.path, "branch", "--show-current").strip() == "feature"
    assert run_git(ws.path, "log", "--format=%s", "-1").strip() == "feature commit"
    assert (ws.path / "calc.py").read_text() == "feature work\n"
    assert status(ws.path) == ""


async def test_odd_file_names_are_copied_and_snapshotted_exactly(git_repo: Path, tmp_path: Path) -> None:
    names = ["with space.txt", "star*.md", "[x].py", "ünïcode.txt", "tab\tname.txt"]
    (git_repo / "x.py").write_text("committed\n")
    run_git(git_repo, "add", "x.py")
    run_git(git_repo, "commit", "-q", "-m", "x")
    for name in names:
        (git_repo / name).write_text(f"{name}\n")

    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")
    (ws.path / "[x].py").write_text("changed\n")

    assert status(ws.path) == status(git_repo)
    assert all((ws.path / name).read_text() == f"{name}\n" for name in names if name != "[x].py")
    assert [f.path for f in (await ws.diff()).files] == ["[x].py"]


async def test_diff_and_restore_survive_the_agent_pruning_objects(git_repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")
    first = await ws.checkpoint("start")
    (ws.path / "fresh.py").write_text("only in the working tree\n")
    old = (ws.path / "fresh.py").stat().st_mtime - 60
    os.utime(ws.path / "fresh.py", (old, old))
    assert [f.path for f in (await ws.diff()).files] == ["fresh.py"]

    run_git(ws.path, "gc", "-q", "--prune=now")
    second = await ws.checkpoint("after gc")

    assert [f.path for f in (await ws.diff()).files] == ["fresh.py"]
    await ws.restore(first)
    assert not (ws.path / "fresh.py").exists()
    await ws.restore(second)
    assert (ws.path / "fresh.py").read_text() == "only in the working tree\n"


async def test_inherited_git_dir_cannot_redirect_the_workspace(
    dirty_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_files, before_status = snapshot_files(dirty_repo), status(dirty_repo)
    monkeypatch.setenv("GIT_DIR", str(dirty_repo / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "stray-index"))

    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t1")
    (ws.path / "calc.py").write_text("agent\n")
    diff = await ws.diff()
    await ws.restore("base")

    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert [f.path for f in diff.files] == ["calc.py"]
    assert snapshot_files(dirty_repo) == before_files and status(dirty_repo) == before_status
    assert not (tmp_path / "stray-index").exists()
    assert run_git(dirty_repo, "for-each-ref", "refs/codex") == ""


async def test_snapshots_follow_gits_ignore_rules_without_reading_the_checkouts_git(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    excludes = tmp_path / "global-ignore"
    excludes.write_text("*.swp\n")
    run_git(git_repo, "config", "core.excludesFile", str(excludes))
    (git_repo / ".git" / "info" / "exclude").write_text("local-only/\n")
    (git_repo / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (git_repo / "tracked.log").write_text("v1\n")
    run_git(git_repo, "add", "-f", ".gitignore", "tracked.log")
    run_git(git_repo, "commit", "-q", "-m", "ignores")
    ws = await Workspace.create(git_repo, tmp_path / "task", "t1")
    files = {
        "build/out.o": "x",
        "a.log": "x",
        "keep.log": "x",
        "x.swp": "x",
        "local-only/f": "x",
        "sub/.gitignore": "gen/\n",
        "sub/gen/code.py": "x",
        "sub/ok.py": "x",
        "tracked.log": "v2\n",
        "build": None,
    }
    for name, text in files.items():
        if text is not None:
            (ws.path / name).parent.mkdir(parents=True, exist_ok=True)
            (ws.path / name).write_text(text)
    run_git(ws.path, "config", "core.excludesFile", "/dev/null")

    diff = await ws.diff()

    expected = ["keep.log", "sub/.gitignore", "sub/ok.py", "tracked.log"]
    assert sorted(f.path for f in diff.files) == expected
    assert sorted(run_git(ws.path, "status", "--porcelain", "-uall").split()[1::2]) == expected
