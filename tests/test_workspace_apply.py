"""Bringing a task's work back: preflight, three-way apply to the user's tree, commit to a branch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_tui.workspace.applyback import FilePlan, execute_plans
from codex_tui.workspace.git import Workspace, WorkspaceError
from tests.conftest import make_repo, run_git
from tests.test_workspace_git import snapshot_files, status

CALC = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository with a module, a doc and a file the task will delete."""
    return make_repo(
        tmp_path / "repo",
        {"calc.py": CALC, "README.md": "# calc\n", "legacy.py": "OLD = True\n"},
    )


async def agent_edits(repo: Path, dest: Path, title: str = "Add subtraction") -> Workspace:
    """Create a task checkout and make the edits an agent typically makes."""
    ws = await Workspace.create(repo, dest, "t1", title=title)
    (ws.path / "calc.py").write_text(
        CALC.replace("return a * b", "return b * a") + "\n\ndef sub(a, b):\n    return a - b\n"
    )
    (ws.path / "legacy.py").unlink()
    (ws.path / "tests").mkdir()
    (ws.path / "tests" / "test_sub.py").write_text("from calc import sub\n")
    return ws


async def test_preflight_forecasts_a_clean_apply_and_changes_nothing(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    before = snapshot_files(repo)
    index = (repo / ".git" / "index").read_bytes()

    report = await ws.preflight()

    assert report.ok and report.conflicts == []
    assert sorted(report.applied) == ["calc.py", "legacy.py", "tests/test_sub.py"]
    assert report.message == "would apply 3 file(s)"
    assert snapshot_files(repo) == before and status(repo) == ""
    assert (repo / ".git" / "index").read_bytes() == index


async def test_apply_writes_the_task_changes_as_unstaged_edits(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")

    report = await ws.apply_to_source()

    assert report.ok and report.message == "applied 3 file(s)"
    assert snapshot_files(repo) == snapshot_files(ws.path)
    assert status(repo) == " M calc.py\n D legacy.py\n?? tests/test_sub.py\n"
    assert run_git(repo, "diff", "--cached") == ""


async def test_applying_twice_reports_already_applied(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    assert (await ws.apply_to_source()).ok
    applied = snapshot_files(repo)

    again = await ws.apply_to_source()

    assert again.ok and again.message == "already applied"
    assert again.applied == [] and sorted(again.skipped) == ["calc.py", "legacy.py", "tests/test_sub.py"]
    assert snapshot_files(repo) == applied
    assert (await ws.preflight()).message == "already applied"


async def test_conflicting_user_edit_is_reported_and_nothing_is_half_applied(
    repo: Path, tmp_path: Path
) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    (repo / "calc.py").write_text(CALC.replace("return a * b", "return a * b  # user"))
    before = snapshot_files(repo)

    forecast = await ws.preflight()
    report = await ws.apply_to_source()

    for result in (forecast, report):
        assert not result.ok
        assert result.conflicts == ["calc.py"]
        assert "calc.py (you and the task changed the same lines)" in result.message
    assert sorted(forecast.applied) == ["legacy.py", "tests/test_sub.py"]
    assert report.message.endswith("nothing was changed")
    assert snapshot_files(repo) == before
    assert not (repo / "tests").exists()


async def test_user_edit_elsewhere_in_the_same_file_is_merged(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    (repo / "calc.py").write_text('"""Calculator."""\n' + CALC)

    report = await ws.apply_to_source()

    assert report.ok and report.details["calc.py"] == "merged with your changes"
    text = (repo / "calc.py").read_text()
    assert text.startswith('"""Calculator."""\n') and "return b * a" in text and "def sub" in text


async def test_apply_to_a_dirty_but_non_conflicting_tree(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    (repo / "README.md").write_text("# calc\n\nUser's own edit.\n")
    run_git(repo, "add", "README.md")
    (repo / "scratch.txt").write_text("user's untracked file\n")

    report = await ws.apply_to_source()

    assert report.ok and sorted(report.applied) == ["calc.py", "legacy.py", "tests/test_sub.py"]
    assert (repo / "README.md").read_text() == "# calc\n\nUser's own edit.\n"
    assert (repo / "scratch.txt").read_text() == "user's untracked file\n"
    assert run_git(repo, "diff", "--cached", "--name-only") == "README.md\n"
    assert "def sub" in (repo / "calc.py").read_text()


async def test_task_started_from_uncommitted_changes_applies_on_top_of_them(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "calc.py").write_text(CALC + "\n\ndef div(a, b):\n    return a / b\n")
    ws = await Workspace.create(repo, tmp_path / "task", "t1")
    (ws.path / "calc.py").write_text((ws.path / "calc.py").read_text().replace("a / b", "a / b if b else 0"))

    report = await ws.apply_to_source()

    assert report.ok and report.applied == ["calc.py"]
    assert (repo / "calc.py").read_text() == (ws.path / "calc.py").read_text()


async def test_untracked_user_file_in_the_way_is_a_conflict(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_sub.py").write_text("# the user's own test\n")
    before = snapshot_files(repo)

    report = await ws.apply_to_source()

    assert not report.ok and report.conflicts == ["tests/test_sub.py"]
    assert report.details["tests/test_sub.py"] == "you have a different file at this path"
    assert snapshot_files(repo) == before


async def test_binary_files_modes_and_symlinks_are_applied(repo: Path, tmp_path: Path) -> None:
    ws = await Workspace.create(repo, tmp_path / "task", "t1")
    (ws.path / "logo.png").write_bytes(bytes(range(256)) * 4)
    os.chmod(ws.path / "calc.py", 0o755)
    os.symlink("calc.py", ws.path / "calculator.py")

    report = await ws.apply_to_source()

    assert report.ok and sorted(report.applied) == ["calc.py", "calculator.py", "logo.png"]
    assert (repo / "logo.png").read_bytes() == bytes(range(256)) * 4
    assert os.access(repo / "calc.py", os.X_OK)
    assert os.readlink(repo / "calculator.py") == "calc.py"


async def test_commit_to_branch_leaves_the_user_branch_and_tree_alone(repo: Path, tmp_path: Path) -> None:
    (repo / "README.md").write_text("# calc\n\nwork in progress\n")
    head = run_git(repo, "rev-parse", "HEAD").strip()
    ws = await agent_edits(repo, tmp_path / "task", title="Add subtraction!")
    before_files, before_status = snapshot_files(repo), status(repo)

    report = await ws.commit_to_branch()

    assert report.ok and report.branch == "codex/add-subtraction" and report.commit
    assert run_git(repo, "rev-parse", "HEAD").strip() == head
    assert run_git(repo, "branch", "--show-current").strip() == "main"
    assert snapshot_files(repo) == before_files and status(repo) == before_status
    assert run_git(repo, "rev-parse", f"{report.commit}^").strip() == head
    message = run_git(repo, "log", "-1", "--format=%B", "codex/add-subtraction")
    assert message.startswith("codex: Add subtraction!\n\n")
    assert "- calc.py (modified, +5 -1)" in message and "- legacy.py (deleted, +0 -1)" in message
    assert run_git(repo, "show", "codex/add-subtraction:tests/test_sub.py") == "from calc import sub\n"
    assert run_git(repo, "show", "codex/add-subtraction:README.md") == "# calc\n\nwork in progress\n"
    run_git(repo, "fsck", "--no-dangling")


async def test_commit_to_branch_again_advances_or_reports_already_committed(
    repo: Path, tmp_path: Path
) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    first = await ws.commit_to_branch()

    same = await ws.commit_to_branch()
    (ws.path / "README.md").write_text("# calc\n\nNow with sub.\n")
    second = await ws.commit_to_branch(message="codex: document sub")

    assert same.ok and same.message == "already committed to codex/add-subtraction"
    assert same.commit == first.commit
    assert second.ok and run_git(repo, "rev-parse", f"{second.commit}^").strip() == first.commit
    assert run_git(repo, "log", "-1", "--format=%s", "codex/add-subtraction").strip() == "codex: document sub"


async def test_commit_to_checked_out_or_invalid_branch_is_refused(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    head = run_git(repo, "rev-parse", "HEAD")

    checked_out = await ws.commit_to_branch("main")
    invalid = await ws.commit_to_branch("bad..name")

    assert not checked_out.ok and "is checked out" in checked_out.message
    assert not invalid.ok and "not a valid branch name" in invalid.message
    assert run_git(repo, "rev-parse", "HEAD") == head
    assert run_git(repo, "branch", "--list") == "* main\n"


async def test_non_git_folder_applies_back_by_copying_changed_files(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "old.py").write_text("pass\n")
    ws = await Workspace.create(folder, tmp_path / "task", "t1", allow_non_git=True)
    (ws.path / "main.py").write_text("print('hello')\n")
    (ws.path / "old.py").unlink()
    (ws.path / "lib").mkdir()
    (ws.path / "lib" / "util.py").write_text("X = 1\n")

    report = await ws.apply_to_source()
    branch = await ws.commit_to_branch()

    assert report.ok and sorted(report.applied) == ["lib/util.py", "main.py", "old.py"]
    assert snapshot_files(folder) == {"lib/util.py": b"X = 1\n", "main.py": b"print('hello')\n"}
    assert not (folder / ".git").exists()
    assert not branch.ok and "not a git repository" in branch.message
    assert (await ws.apply_to_source()).message == "already applied"


async def test_apply_never_writes_through_a_symlinked_folder(repo: Path, tmp_path: Path) -> None:
    ws = await agent_edits(repo, tmp_path / "task")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, repo / "tests")

    report = await ws.apply_to_source()

    assert not report.ok and report.details["tests/test_sub.py"] == "tests is a symbolic link in your tree"
    assert list(outside.iterdir()) == []
    assert (repo / "legacy.py").exists()


def test_failed_write_puts_back_everything_already_written(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    (target / "a.txt").write_text("user a\n")
    (target / "gone.txt").write_text("user gone\n")
    (target / "blocker").write_text("a file where the plan expects a folder\n")
    plans = [
        FilePlan("gone.txt", "delete"),
        FilePlan("a.txt", "write", content=b"task a\n"),
        FilePlan("new/dir/b.txt", "write", content=b"task b\n"),
        FilePlan("blocker/c.txt", "write", content=b"task c\n"),
    ]

    with pytest.raises(WorkspaceError, match="your folder was left as it was"):
        execute_plans(target, plans)

    assert snapshot_files(target) == {
        "a.txt": b"user a\n",
        "blocker": b"a file where the plan expects a folder\n",
        "gone.txt": b"user gone\n",
    }
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "blocker", "gone.txt"]
