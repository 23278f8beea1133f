"""Review checkouts: each target's checkout has the reviewed change as its diff, in git too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from codex_tui.sandbox.base import Stream
from codex_tui.workspace.git import DiffResult, Workspace, WorkspaceError
from codex_tui.workspace.review_target import ResolvedTarget, ReviewTarget, resolve_target
from tests.conftest import make_repo, run_git
from tests.conftest_docker import MakeDockerSandbox

Changes = dict[str, tuple[str, int, int]]


def changes(diff: DiffResult) -> Changes:
    """{path: (status, added, removed)} of a review's or a task's diff."""
    return {f.path: (f.status, f.added, f.removed) for f in diff.files}


def user_state(repo: Path) -> tuple[str, ...]:
    """Everything a review must leave alone: status, refs, HEAD, the index and the .git listing."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        argv = ["git", "-C", str(repo), *args]
        return subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout

    listing = sorted(str(p.relative_to(repo)) for p in (repo / ".git").rglob("*"))
    files = sorted(
        f"{p.relative_to(repo)}:{p.read_bytes()!r}"
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    )
    return (
        git("status", "--porcelain", "--untracked-files=all"),
        git("for-each-ref"),
        (repo / ".git" / "HEAD").read_text(),
        repr((repo / ".git" / "index").read_bytes()),
        "\n".join(listing),
        "\n".join(files),
    )


async def review_of(
    repo: Path, dest: Path, target: ReviewTarget, reviewed: Workspace | None = None, task_title: str = ""
) -> Workspace:
    """Resolve `target` in `repo` and build its review checkout (task r1) at `dest`."""
    resolved = resolve_target(repo, target, task_title=task_title)
    return await Workspace.create_review(repo, dest, "r1", resolved, reviewed=reviewed)


@pytest.fixture
def dirty_repo(tmp_path: Path) -> Path:
    """A repository with unstaged, staged, deleted, untracked and ignored changes."""
    repo = make_repo(
        tmp_path / "repo",
        {"calc.py": "a = 1\n", "README.md": "# calc\n", "old.txt": "bye\n", ".gitignore": "*.log\n"},
    )
    (repo / "calc.py").write_text("a = 1\nb = 2\nc = 3\n")
    (repo / "README.md").write_text("# calc\nstaged\n")
    run_git(repo, "add", "README.md")
    (repo / "old.txt").unlink()
    (repo / "notes").mkdir()
    (repo / "notes" / "todo.txt").write_text("note\n")
    (repo / "debug.log").write_text("ignored\n")
    return repo


@pytest.fixture
def branch_repo(tmp_path: Path) -> Path:
    """main moved on after `feature` forked; feature has two commits and uncommitted work."""
    repo = make_repo(tmp_path / "branchy", {"a.txt": "one\n", "c.txt": "main\n"})
    run_git(repo, "checkout", "-q", "-b", "feature")
    (repo / "a.txt").write_text("one\ntwo\n")
    run_git(repo, "commit", "-q", "-am", "feature: a")
    (repo / "b.txt").write_text("b\n")
    run_git(repo, "add", "b.txt")
    run_git(repo, "commit", "-q", "-m", "feature: b")
    run_git(repo, "checkout", "-q", "main")
    (repo / "c.txt").write_text("main\nmoved on\n")
    run_git(repo, "commit", "-q", "-am", "main: c")
    run_git(repo, "checkout", "-q", "feature")
    (repo / "b.txt").write_text("b\nuncommitted\n")
    (repo / "u.txt").write_text("untracked\n")
    return repo


@pytest.fixture
def history_repo(tmp_path: Path) -> Path:
    """Three commits (the second titled "Fix parser") and an uncommitted edit."""
    repo = make_repo(tmp_path / "history", {"parser.py": "x = 1\n", "README.md": "# p\n"})
    (repo / "parser.py").write_text("x = 2\n")
    (repo / "helper.py").write_text("def h():\n    pass\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "Fix parser\n\nLonger body.")
    (repo / "README.md").write_text("# p\nmore\n")
    run_git(repo, "commit", "-q", "-am", "Docs")
    (repo / "parser.py").write_text("x = 3\n")
    return repo


# --- targets ----------------------------------------------------------------------------------


def test_targets_round_trip_and_bad_data_is_a_clear_error() -> None:
    target = ReviewTarget.from_dict({"target": "commit", "commit": " abc123 ", "base": "ignored"})
    assert target.to_dict() == {"type": "commit", "commit": "abc123"}
    assert ReviewTarget.from_dict(target.to_dict()) == target
    resolved = ResolvedTarget(target, "commit abc1234: Fix", base_sha="p", head_sha="h", commit_title="Fix")
    assert ResolvedTarget.from_dict(resolved.to_dict()) == resolved
    for bad, message in [
        ("uncommitted", "must be an object"),
        ({"type": "everything"}, "unknown review target 'everything'"),
        ({"type": "base"}, "a base review needs 'base'"),
        ({"type": "task", "task_id": 3}, "must be text"),
        ({"type": "commit", "commit": "--output=/tmp/x"}, "cannot start with '-'"),
    ]:
        with pytest.raises(ValueError, match=message):
            ReviewTarget.from_dict(bad)


def test_labels_describe_each_target(history_repo: Path, branch_repo: Path) -> None:
    commit = resolve_target(history_repo, ReviewTarget("commit", commit="HEAD~1"))
    sha = run_git(history_repo, "rev-parse", "HEAD~1").strip()
    assert commit.label == f"commit {sha[:7]}: Fix parser"
    assert (commit.head_sha, commit.commit_title) == (sha, "Fix parser")
    assert commit.base_sha == run_git(history_repo, "rev-parse", "HEAD~2").strip()
    assert resolve_target(history_repo, ReviewTarget("uncommitted")).label == "uncommitted changes"
    assert resolve_target(branch_repo, ReviewTarget("base", base="main")).label == "changes against main"
    task = resolve_target(history_repo, ReviewTarget("task", task_id="t-abc"), task_title="Add\x1b[2J it")
    assert task.label == "task t-abc: Add it"


def test_bad_targets_are_refused_with_clear_messages(
    branch_repo: Path, history_repo: Path, git_repo: Path, tmp_path: Path
) -> None:
    with pytest.raises(WorkspaceError, match=r"branch 'nope' not found; branches: feature, main"):
        resolve_target(branch_repo, ReviewTarget("base", base="nope"))
    with pytest.raises(WorkspaceError, match=r"commit 'deadbeef' not found"):
        resolve_target(history_repo, ReviewTarget("commit", commit="deadbeef"))
    with pytest.raises(WorkspaceError, match="no uncommitted changes to review"):
        resolve_target(git_repo, ReviewTarget("uncommitted"))
    with pytest.raises(WorkspaceError, match="nothing to review against 'main'"):
        resolve_target(git_repo, ReviewTarget("base", base="main"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(WorkspaceError, match="is not a git repository"):
        resolve_target(tmp_path / "plain", ReviewTarget("uncommitted"))
    run_git(branch_repo, "checkout", "-q", "--orphan", "lonely")
    run_git(branch_repo, "commit", "-q", "-m", "unrelated")
    with pytest.raises(WorkspaceError, match="no common ancestor"):
        resolve_target(branch_repo, ReviewTarget("base", base="main"))


def test_an_empty_commit_can_be_reviewed(git_repo: Path, tmp_path: Path) -> None:
    run_git(git_repo, "commit", "-q", "--allow-empty", "-m", "Empty")
    resolved = resolve_target(git_repo, ReviewTarget("commit", commit="HEAD"))
    assert resolved.commit_title == "Empty"


# --- uncommitted ------------------------------------------------------------------------------


async def test_uncommitted_review_diff_is_the_users_uncommitted_change(
    dirty_repo: Path, tmp_path: Path
) -> None:
    before = user_state(dirty_repo)
    review = await review_of(dirty_repo, tmp_path / "review", ReviewTarget("uncommitted"))

    assert changes(await review.diff()) == {
        "calc.py": ("modified", 2, 0),
        "README.md": ("modified", 1, 0),
        "old.txt": ("deleted", 0, 1),
        "notes/todo.txt": ("added", 1, 0),
    }
    checkout = review.path
    assert run_git(checkout, "rev-parse", "HEAD") == run_git(dirty_repo, "rev-parse", "HEAD")
    assert run_git(checkout, "branch", "--show-current").strip() == "main"
    assert run_git(checkout, "status", "--porcelain", "--untracked-files=all") == before[0]
    assert run_git(checkout, "diff", "HEAD", "--numstat") == run_git(dirty_repo, "diff", "HEAD", "--numstat")
    assert user_state(dirty_repo) == before


# --- base -------------------------------------------------------------------------------------


async def test_base_review_shows_the_branch_and_uncommitted_work_since_the_merge_base(
    branch_repo: Path, tmp_path: Path
) -> None:
    before = user_state(branch_repo)
    resolved = resolve_target(branch_repo, ReviewTarget("base", base="main"))
    review = await Workspace.create_review(branch_repo, tmp_path / "review", "r1", resolved)

    assert changes(await review.diff()) == {
        "a.txt": ("modified", 1, 0),
        "b.txt": ("added", 2, 0),
        "u.txt": ("added", 1, 0),
    }
    checkout = review.path
    merge_base = run_git(branch_repo, "merge-base", "HEAD", "main").strip()
    assert resolved.base_sha == merge_base
    assert run_git(checkout, "branch", "--show-current").strip() == "feature"
    assert run_git(checkout, "rev-parse", "HEAD") == run_git(branch_repo, "rev-parse", "HEAD")
    assert run_git(checkout, "merge-base", "HEAD", "origin/main").strip() == merge_base
    numstat = run_git(checkout, "diff", merge_base, "--numstat")
    assert numstat == run_git(branch_repo, "diff", merge_base, "--numstat")
    assert "c.txt" not in numstat
    assert run_git(checkout, "status", "--porcelain") == " M b.txt\n?? u.txt\n"
    assert user_state(branch_repo) == before


# --- commit -----------------------------------------------------------------------------------


async def test_commit_review_shows_only_that_commit(history_repo: Path, tmp_path: Path) -> None:
    before = user_state(history_repo)
    review = await review_of(history_repo, tmp_path / "review", ReviewTarget("commit", commit="HEAD~1"))

    diff = await review.diff()
    assert changes(diff) == {"parser.py": ("modified", 1, 1), "helper.py": ("added", 2, 0)}
    assert "+x = 2" in diff.patch and "x = 3" not in diff.patch
    checkout = review.path
    sha = run_git(history_repo, "rev-parse", "HEAD~1").strip()
    assert run_git(checkout, "rev-parse", "HEAD").strip() == sha
    assert run_git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
    shown = run_git(checkout, "show", "--stat", "--format=%s", sha)
    assert shown.startswith("Fix parser") and "helper.py" in shown and "README" not in shown
    assert user_state(history_repo) == before


async def test_root_commit_review_is_against_the_empty_tree(history_repo: Path, tmp_path: Path) -> None:
    review = await review_of(history_repo, tmp_path / "review", ReviewTarget("commit", commit="HEAD~2"))

    assert changes(await review.diff()) == {"parser.py": ("added", 1, 0), "README.md": ("added", 1, 0)}
    assert run_git(review.path, "status", "--porcelain") == ""


async def test_review_never_runs_the_users_git_hooks(
    history_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "hook-ran"
    for name in ("post-checkout", "post-commit", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / name).chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))

    await review_of(history_repo, tmp_path / "r-commit", ReviewTarget("commit", commit="HEAD~1"))
    await review_of(history_repo, tmp_path / "r-unc", ReviewTarget("uncommitted"))

    assert not marker.exists()


# --- task -------------------------------------------------------------------------------------


async def reviewed_task(repo: Path, dest: Path, outside: Path) -> Workspace:
    """A task made while the user had uncommitted work, whose agent then changed every kind of thing."""
    task = await Workspace.create(repo, dest, "t1", title="Rework")
    files = task.path
    (files / "calc.py").write_text("a = 1\nb = 2\nc = 3\nd = 4\n")
    (files / "README.md").unlink()
    (files / "run.sh").chmod(0o755)
    (files / "pkg" / "deep").mkdir(parents=True)
    (files / "pkg" / "deep" / "new.py").write_text("new = True\n")
    os.symlink("/etc/passwd", files / "passwd-link")
    os.symlink(str(outside), files / "secret")
    return task


@pytest.fixture
def task_repo(tmp_path: Path) -> Path:
    """A repository with an executable-to-be script and uncommitted work when the task starts."""
    repo = make_repo(tmp_path / "repo", {"calc.py": "a = 1\n", "README.md": "# r\n", "run.sh": "echo hi\n"})
    (repo / "calc.py").write_text("a = 1\nb = 2\nc = 3\n")
    (repo / "draft.txt").write_text("draft\n")
    return repo


async def test_task_review_reproduces_the_tasks_change(task_repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("TOP SECRET\n")
    task = await reviewed_task(task_repo, tmp_path / "t1", outside)
    before = user_state(task_repo)

    target = ReviewTarget("task", task_id="t1")
    review = await review_of(task_repo, tmp_path / "review", target, task, task_title="Rework")

    reviewed_diff, diff = await task.diff(), await review.diff()
    assert (
        changes(diff)
        == changes(reviewed_diff)
        == {
            "calc.py": ("modified", 1, 0),
            "README.md": ("deleted", 0, 1),
            "run.sh": ("modified", 0, 0),
            "pkg/deep/new.py": ("added", 1, 0),
            "passwd-link": ("added", 1, 0),
            "secret": ("added", 1, 0),
        }
    )
    assert diff.patch == reviewed_diff.patch
    assert "TOP SECRET" not in diff.patch and "root:" not in diff.patch
    checkout = review.path
    assert os.readlink(checkout / "passwd-link") == "/etc/passwd"
    assert os.readlink(checkout / "secret") == str(outside)
    assert os.stat(checkout / "run.sh").st_mode & 0o111
    assert user_state(task_repo) == before


async def test_task_review_checkout_git_tells_the_same_story(task_repo: Path, tmp_path: Path) -> None:
    task = await reviewed_task(task_repo, tmp_path / "t1", tmp_path / "outside.txt")
    review = await review_of(task_repo, tmp_path / "review", ReviewTarget("task", task_id="t1"), task)

    checkout = review.path
    assert run_git(checkout, "log", "-1", "--format=%s").strip() == "codex-tui: starting point of task t1"
    assert run_git(checkout, "rev-parse", "HEAD^") == run_git(task_repo, "rev-parse", "HEAD")
    assert run_git(checkout, "show", "HEAD:calc.py") == "a = 1\nb = 2\nc = 3\n"
    assert run_git(checkout, "show", "HEAD:draft.txt") == "draft\n"
    assert run_git(checkout, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        " D README.md",
        " M calc.py",
        " M run.sh",
        "?? passwd-link",
        "?? pkg/deep/new.py",
        "?? secret",
    ]
    patch = run_git(checkout, "diff")
    assert "old mode 100644\nnew mode 100755" in patch and "+d = 4" in patch


async def test_task_review_runs_nothing_planted_in_the_reviewed_checkout(
    task_repo: Path, tmp_path: Path
) -> None:
    task = await reviewed_task(task_repo, tmp_path / "t1", tmp_path / "outside.txt")
    pwned = tmp_path / "pwned"
    hooks = task.path / ".git" / "evil-hooks"
    hooks.mkdir()
    for name in ("post-checkout", "pre-commit", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {pwned}\n")
        (hooks / name).chmod(0o755)
    with open(task.path / ".git" / "config", "a") as config:
        config.write(f"[core]\n\tfsmonitor = touch {pwned}\n\thooksPath = {hooks}\n")
    (task.path / ".gitattributes").write_text("* filter=evil\n")

    review = await review_of(task_repo, tmp_path / "review", ReviewTarget("task", task_id="t1"), task)

    assert not pwned.exists()
    assert ".gitattributes" in changes(await review.diff())
    run_git(task.path, "status")  # the control: git run on that checkout does run the plant
    assert pwned.exists()


async def test_task_review_of_a_plain_folder_task(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.txt").write_text("one\n")
    task = await Workspace.create(folder, tmp_path / "t1", "t1", allow_non_git=True)
    (task.path / "a.txt").write_text("one\ntwo\n")
    (task.path / "b.txt").write_text("b\n")

    review = await review_of(folder, tmp_path / "review", ReviewTarget("task", task_id="t1"), task)

    assert changes(await review.diff()) == changes(await task.diff())
    assert changes(await review.diff()) == {"a.txt": ("modified", 1, 0), "b.txt": ("added", 1, 0)}


async def test_task_review_needs_the_matching_task(task_repo: Path, tmp_path: Path) -> None:
    resolved = resolve_target(task_repo, ReviewTarget("task", task_id="t2"))
    with pytest.raises(WorkspaceError, match="needs that task's checkout"):
        await Workspace.create_review(task_repo, tmp_path / "review", "r1", resolved)
    task = await Workspace.create(task_repo, tmp_path / "t1", "t1")
    with pytest.raises(WorkspaceError, match="is that of task t1, not t2"):
        await Workspace.create_review(task_repo, tmp_path / "review", "r1", resolved, reviewed=task)
    assert not (tmp_path / "review").exists() and not (tmp_path / "review.state").exists()


# --- lifecycle --------------------------------------------------------------------------------


async def test_review_reopens_after_restart_with_the_same_diff_and_is_removed_cleanly(
    history_repo: Path, tmp_path: Path
) -> None:
    review = await review_of(history_repo, tmp_path / "review", ReviewTarget("commit", commit="HEAD~1"))
    first = await review.diff()

    again = await Workspace.open(history_repo, tmp_path / "review", "r1")

    assert changes(await again.diff()) == changes(first)
    assert (await again.diff()).patch == first.patch
    await again.remove()
    assert not (tmp_path / "review").exists() and not (tmp_path / "review.state").exists()


async def test_review_from_a_subfolder_keeps_it_as_the_tasks_folder(dirty_repo: Path, tmp_path: Path) -> None:
    review = await review_of(dirty_repo / "notes", tmp_path / "review", ReviewTarget("uncommitted"))

    assert review.subdir == "notes"
    assert review.source == dirty_repo.resolve()
    assert "calc.py" in changes(await review.diff())


async def test_review_destination_inside_the_repo_is_refused(dirty_repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="cannot be inside the folder it copies"):
        await review_of(dirty_repo, dirty_repo / "review", ReviewTarget("uncommitted"))


@pytest.mark.docker
async def test_reviewer_sees_the_tasks_change_with_git_in_a_read_only_container(
    task_repo: Path, tmp_path: Path, make_docker_sandbox: MakeDockerSandbox
) -> None:
    task = await reviewed_task(task_repo, tmp_path / "t1", tmp_path / "outside.txt")
    review = await review_of(task_repo, tmp_path / "review", ReviewTarget("task", task_id="t1"), task)
    sandbox = make_docker_sandbox(
        task_id="r1", workspace=review.path, extra_ro_mounts=review.extra_ro_mounts, mode="read-only"
    )
    await sandbox.start()
    output: list[bytes] = []

    def collect(_stream: Stream, chunk: bytes) -> None:
        output.append(chunk)

    script = "git log -1 --format=%s && git show HEAD:draft.txt && git diff --stat && git status --short"
    result = await sandbox.exec(["sh", "-c", script], timeout_s=30, on_output=collect)
    text = b"".join(output).decode()

    assert result.exit_code == 0, text
    assert text.startswith("codex-tui: starting point of task t1\ndraft\n"), text
    assert "3 files changed, 1 insertion(+), 1 deletion(-)" in text
    assert " M calc.py\n M run.sh\n?? passwd-link\n?? pkg/\n" in text
