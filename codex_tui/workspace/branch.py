"""Commit a task's result to a branch of the user's repository without touching their work tree.

The objects the user's repository lacks travel as one pack (`pack-objects --revs` in the task's host
git directory, `index-pack` in the repository); the commit is made with `commit-tree` and the branch
moved with a compare-and-swap `update-ref`, so the user's index, working tree and current branch never move.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from codex_tui.boundary.terminal import strip_controls
from codex_tui.workspace.applyback import ApplyReport
from codex_tui.workspace.diffstat import FileDiff, parse_raw_numstat
from codex_tui.workspace.gitrun import (
    IDENTITY,
    GitFailed,
    commit_tree,
    git_text,
    one_line,
    rev_or_empty,
    run_git,
    run_git_code,
    zero_oid,
)
from codex_tui.workspace.hostgit import HostGit


def slugify(title: str) -> str:
    """A branch-name-safe slug of a task title: lower case ASCII words joined by '-', at most 48 chars."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > 48:
        cut = slug[:48]
        slug = cut.rsplit("-", 1)[0] if "-" in cut[20:] else cut
    return slug.strip("-") or "task"


def branch_problem(repo: Path, name: str) -> str:
    """Why `name` cannot receive the task's commit ("" when it can)."""
    code, _out, _err = run_git_code(repo, "check-ref-format", f"refs/heads/{name}")
    if code != 0 or name.startswith("-"):
        return f"{name!r} is not a valid branch name"
    out = git_text(repo, "worktree", "list", "--porcelain")
    if f"branch refs/heads/{name}" in out.splitlines():
        return f"branch {name} is checked out in your repository; choose another branch name"
    return ""


def commit_tree_to_branch(
    host: HostGit, repo: Path, start: str, tree: str, name: str, *, title: str, message: str | None
) -> ApplyReport:
    """Create or advance branch `name` of `repo` to a commit of `tree` (from the task's host git dir).

    A new branch starts at `start` (the commit the task started from, "" for an unborn HEAD).
    """
    if start and not rev_or_empty(repo, f"{start}^{{commit}}"):
        return ApplyReport(
            ok=False, message=f"the commit the task started from ({start[:10]}) is no longer in {repo}"
        )
    old = rev_or_empty(repo, f"refs/heads/{name}^{{commit}}")
    parent = old or start
    empty = host.write_object("tree", b"")
    parent_tree = rev_or_empty(repo, f"{parent}^{{tree}}") if parent else empty
    if tree == parent_tree:
        if old:
            return ApplyReport(ok=True, message=f"already committed to {name}", branch=name, commit=old)
        return ApplyReport(ok=False, message="nothing to commit: the task made no changes", branch=name)
    files = _changed_files(host, start or empty, tree)
    copy_objects(host, repo, tree, start)
    text = message or commit_message(title, files)
    commit = commit_tree(repo, tree, [parent] if parent else [], text, env=_identity_env(repo))
    reflog = f"codex-tui: {shown_text(title)}"
    try:
        run_git(repo, "update-ref", "-m", reflog, f"refs/heads/{name}", commit, old or zero_oid(commit))
    except GitFailed as exc:
        return ApplyReport(
            ok=False, message=f"could not update branch {name}: {exc.stderr.strip()}", branch=name
        )
    return ApplyReport(
        ok=True,
        applied=[f.path for f in files],
        message=f"committed {len(files)} file(s) to {name} ({commit[:10]})",
        branch=name,
        commit=commit,
    )


def copy_objects(host: HostGit, repo: Path, tree: str, start: str) -> None:
    """Send the objects of `tree` that `repo` lacks (those not reachable from `start`) as one pack."""
    carrier = host.commit(tree, [start] if start else [], "codex-tui: transfer")
    revs = f"{carrier}\n^{start}\n" if start else f"{carrier}\n"
    pack = host.run("pack-objects", "--revs", "--stdout", "-q", input=revs.encode())
    run_git(repo, "index-pack", "--stdin", input=pack)


def _changed_files(host: HostGit, old: str, new: str) -> list[FileDiff]:
    out = host.run("diff-tree", "-r", "-M", "--raw", "--numstat", "-z", old, new)
    return parse_raw_numstat(out)


def commit_message(title: str, files: list[FileDiff], *, body: str | None = None) -> str:
    """`codex: <title>` and one line per changed file; with a PR `body`, the PR's title and body."""
    if body is not None:
        return f"{one_line(title)}\n\n{body.strip()}\n" if body.strip() else f"{one_line(title)}\n"
    lines = [f"codex: {shown_text(title)}", ""]
    for f in files:
        where = f"{shown_text(f.old_path)} -> {shown_text(f.path)}" if f.old_path else shown_text(f.path)
        counts = "binary" if f.binary else f"+{f.added} -{f.removed}"
        lines.append(f"- {where} ({f.status}, {counts})")
    return "\n".join(lines) + "\n"


def shown_text(text: str) -> str:
    """Untrusted text (a file name from the task) fit for a commit message: one line, valid UTF-8 (other
    bytes become U+FFFD), no control sequences (`git log` prints messages as they are)."""
    valid = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return one_line(strip_controls(valid))


def _identity_env(repo: Path) -> dict[str, str]:
    """codex-tui as author/committer only when the user's repository has no identity configured."""
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        code, _out, _err = run_git_code(repo, "var", var)
        if code != 0:
            name, email = IDENTITY["user.name"], IDENTITY["user.email"]
            return {
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email,
            }
    return {}
