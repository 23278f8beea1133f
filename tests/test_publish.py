"""Publishing a task's branch: pushed to the user's GitHub remote, PR opened with `gh` (a recording fake)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_tui.workspace import publish
from codex_tui.workspace.publish import PublishResult, github_repo_of, publish_pr, redact_url
from tests.conftest import run_git

BRANCH = "codex/fix-add"

FAKE_GH = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
body = open(args[args.index("--body-file") + 1]).read() if "--body-file" in args else None
prompts = os.environ.get("GH_PROMPT_DISABLED")
record = {{"argv": args, "body": body, "cwd": os.getcwd(), "no_prompts": prompts}}
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
mode = os.environ.get("FAKE_GH_MODE", "ok")
if mode == "fail":
    sys.stderr.write("\\x1b[31mpull request create failed: GraphQL: No commits between main and x\\x1b[0m\\n")
    sys.exit(1)
if mode == "exists":
    sys.stderr.write('a pull request for branch "x" into branch "main" already exists:\\n')
    sys.stderr.write("https://github.com/o/r/pull/7\\n")
    sys.exit(1)
if mode == "hang":
    time.sleep(60)
print("https://github.com/o/r/pull/42")
"""


@pytest.fixture
def fake_gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `gh` first on PATH that records each call (argv, body file text) in the returned log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable))
    gh.chmod(0o755)
    log = tmp_path / "gh-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GH_LOG", str(log))
    return log


def gh_calls(log: Path) -> list[dict[str, Any]]:
    """What the fake gh was called with."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def bare_remote(tmp_path: Path, host: str = "github.com") -> Path:
    """An empty bare repository at a path that looks like a GitHub URL (…/github.com/o/r.git)."""
    path = tmp_path / "remotes" / host / "o" / "r.git"
    path.mkdir(parents=True)
    run_git(path, "init", "-q", "--bare")
    return path


@pytest.fixture
def repo_with_branch(git_repo: Path) -> Path:
    """The user's repository with a task's branch committed next to main."""
    run_git(git_repo, "checkout", "-q", "-b", BRANCH)
    (git_repo / "calc.py").write_text("def add(a, b):\n    return a + b  # fixed\n")
    run_git(git_repo, "commit", "-q", "-am", "Fix add")
    run_git(git_repo, "checkout", "-q", "main")
    return git_repo


def publish_with_gh(mode: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PublishResult:
    """Publish BRANCH to a new GitHub-like origin; the fake gh answers as `mode` (exists, fail, hang)."""
    run_git(repo, "remote", "add", "origin", str(bare_remote(tmp_path)))
    monkeypatch.setenv("FAKE_GH_MODE", mode)
    return publish_pr(repo, BRANCH, "Fix add", "body")


def test_branch_is_pushed_and_gh_opens_the_pr_with_title_and_body(
    repo_with_branch: Path, tmp_path: Path, fake_gh: Path
) -> None:
    remote = bare_remote(tmp_path)
    run_git(repo_with_branch, "remote", "add", "origin", str(remote))
    body = "## Summary\n\nFixed `add`.\n"
    result = publish_pr(repo_with_branch, BRANCH, "Fix the\nadd function", body)
    assert result.ok, result.message
    assert result.url == "https://github.com/o/r/pull/42"
    assert result.message == f"pushed {BRANCH} to origin and opened https://github.com/o/r/pull/42"
    pushed = run_git(remote, "rev-parse", f"refs/heads/{BRANCH}")
    assert pushed == run_git(repo_with_branch, "rev-parse", BRANCH)
    [call] = gh_calls(fake_gh)
    assert call["argv"][:4] == ["pr", "create", "--head", BRANCH]
    assert call["argv"][call["argv"].index("--title") + 1] == "Fix the add function"
    assert call["argv"][call["argv"].index("--repo") + 1] == "github.com/o/r"
    assert call["body"] == body and call["no_prompts"] == "1"
    assert Path(call["cwd"]) == repo_with_branch
    assert not Path(call["argv"][call["argv"].index("--body-file") + 1]).exists()


def test_an_existing_pr_for_the_branch_is_reported_as_its_url(
    repo_with_branch: Path, tmp_path: Path, fake_gh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = publish_with_gh("exists", repo_with_branch, tmp_path, monkeypatch)
    assert result.ok and result.url == "https://github.com/o/r/pull/7"
    assert "its pull request is https://github.com/o/r/pull/7" in result.message


def test_gh_failure_is_its_stderr_without_control_sequences(
    repo_with_branch: Path, tmp_path: Path, fake_gh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = publish_with_gh("fail", repo_with_branch, tmp_path, monkeypatch)
    assert not result.ok and result.url == ""
    assert result.message == (
        f"pushed {BRANCH} to origin, but gh could not open the PR: "
        "pull request create failed: GraphQL: No commits between main and x"
    )


def test_gh_that_never_answers_is_stopped_at_the_timeout(
    repo_with_branch: Path, tmp_path: Path, fake_gh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "GH_TIMEOUT_S", 0.5)
    result = publish_with_gh("hang", repo_with_branch, tmp_path, monkeypatch)
    assert not result.ok and "gh did not finish within 0.5 s and was stopped" in result.message


def test_missing_gh_leaves_the_branch_for_the_user(
    repo_with_branch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = bare_remote(tmp_path)
    run_git(repo_with_branch, "remote", "add", "origin", str(remote))
    git_only = tmp_path / "git-only-bin"
    git_only.mkdir()
    (git_only / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(git_only))
    result = publish_pr(repo_with_branch, BRANCH, "Fix add", "body")
    assert not result.ok
    assert result.message == (
        f"the GitHub CLI (gh) is not installed; the branch {BRANCH} is ready: push it and open a PR yourself"
    )
    assert run_git(remote, "for-each-ref") == ""


def test_no_github_remote_names_the_remotes_found_without_their_tokens(
    repo_with_branch: Path, fake_gh: Path
) -> None:
    none = publish_pr(repo_with_branch, BRANCH, "Fix add", "body")
    assert not none.ok and "no GitHub remote to push to; the repository has no remotes" in none.message
    run_git(repo_with_branch, "remote", "add", "upstream", "https://me:s3cret@gitlab.com/o/r.git")
    run_git(repo_with_branch, "remote", "add", "mirror", "ssh://git@gitlab.example.com/o/r.git")
    result = publish_pr(repo_with_branch, BRANCH, "Fix add", "body")
    assert not result.ok and "s3cret" not in result.message
    assert result.message.startswith("no GitHub remote to push to; remotes found: ")
    assert "upstream (https://gitlab.com/o/r.git)" in result.message
    assert "mirror (ssh://git@gitlab.example.com/o/r.git)" in result.message
    named = publish_pr(repo_with_branch, BRANCH, "Fix add", "body", remote="nope")
    assert not named.ok and named.message.startswith("there is no remote named 'nope'; remotes found: ")
    assert gh_calls(fake_gh) == []


def test_push_failure_is_the_remotes_reason(repo_with_branch: Path, tmp_path: Path, fake_gh: Path) -> None:
    remote = bare_remote(tmp_path)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nprintf '\\033]0;title\\007branch protected by policy\\n' >&2\nexit 1\n")
    hook.chmod(0o755)
    run_git(repo_with_branch, "remote", "add", "origin", str(remote))
    result = publish_pr(repo_with_branch, BRANCH, "Fix add", "body")
    assert not result.ok and result.message.startswith(f"could not push {BRANCH} to origin: ")
    assert "branch protected by policy" in result.message and "\x1b" not in result.message
    assert "title" not in result.message and gh_calls(fake_gh) == []


def test_a_branch_that_does_not_exist_is_reported(repo_with_branch: Path, fake_gh: Path) -> None:
    result = publish_pr(repo_with_branch, "codex/nothing", "t", "b")
    assert not result.ok and result.message == f"there is no branch codex/nothing in {repo_with_branch}"


def test_the_origin_remote_is_preferred_and_a_named_remote_wins(
    repo_with_branch: Path, tmp_path: Path, fake_gh: Path
) -> None:
    other = bare_remote(tmp_path / "fork")
    origin = bare_remote(tmp_path)
    run_git(repo_with_branch, "remote", "add", "fork", str(other))
    run_git(repo_with_branch, "remote", "add", "origin", str(origin))
    assert publish_pr(repo_with_branch, BRANCH, "t", "b").ok
    assert run_git(origin, "for-each-ref", "--format=%(refname)") == f"refs/heads/{BRANCH}\n"
    assert publish_pr(repo_with_branch, BRANCH, "t", "b", remote="fork").ok
    assert run_git(other, "for-each-ref", "--format=%(refname)") == f"refs/heads/{BRANCH}\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r.git", "github.com/o/r"),
        ("git@github.com:o/r.git", "github.com/o/r"),
        ("ssh://git@github.com:22/o/r", "github.com/o/r"),
        ("https://me:token@github.example.com/team/app", "github.example.com/team/app"),
        ("/srv/mirrors/github.com/o/r.git", "github.com/o/r"),
        ("https://gitlab.com/o/r.git", ""),
    ],
)
def test_the_github_repository_is_read_from_the_remote_url(url: str, expected: str) -> None:
    assert github_repo_of(url) == expected


def test_redacted_urls_drop_user_and_token() -> None:
    assert redact_url("https://me:tok@github.com/o/r.git") == "https://github.com/o/r.git"
    assert redact_url("HTTPS://ghp_x@github.com/o/r") == "HTTPS://github.com/o/r"
    assert redact_url("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert redact_url("ssh://git@github.com/o/r.git") == "ssh://git@github.com/o/r.git"
