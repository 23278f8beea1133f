"""Checkouts for code review: what to review (a target), resolved in the user's repo, and built so.

A review task runs in a read-only sandbox on a checkout of the change under review. The checkout
is built in three steps, so the ordinary diff machinery shows that change with no code of its own:

1. the checkout is made to hold the change's BEFORE state (with git, in the fresh checkout, which
   no sandbox has seen yet);
2. that state is recorded as the task's starting snapshot (`refs/codex/base` in its host git dir);
3. the checkout's files move to the AFTER state.

`Workspace.diff()` of the review task is then the reviewed change, and stays so (the sandbox is
read-only). Inside the checkout, git tells the same story: `git diff`, `git show`, `git log` work.

- uncommitted: HEAD is the user's HEAD; the working tree and index hold the user's changes.
- base: on the user's branch at their HEAD plus their uncommitted changes; the merge base with the
  other branch is an ancestor, so `git diff <merge-base>` works.
- commit: HEAD detached at the commit (its first parent, or nothing for a root commit, before it).
- task: HEAD is a commit holding the reviewed task's starting snapshot; the working tree holds that
  task's current files, uncommitted. They come from a fresh snapshot of its checkout (read through
  safe_fs, never with git) and its host git directory.

The user's repository is only read: no refs, index or files are written there, and no git command
runs with hooks.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath
from codex_tui.boundary.terminal import strip_controls
from codex_tui.protocol import REVIEW_TARGETS
from codex_tui.workspace.checkout import (
    BASE_REF,
    NO_HOOKS,
    alternates_of,
    check_destination,
    clone_checkout,
    clone_shared,
    copy_uncommitted,
    discard_checkout,
    find_repo,
)
from codex_tui.workspace.git import (
    Workspace,
    hand_over,
    host_git_for,
    index_entries,
    restore_files,
    snapshot_base,
    state_dir_for,
    write_meta,
)
from codex_tui.workspace.gitrun import (
    IDENTITY,
    WorkspaceError,
    commit_tree,
    git_text,
    one_line,
    rev_or_empty,
    run_git,
    run_git_code,
)
from codex_tui.workspace.hostgit import MODE_GITLINK, HostGit, Tree

TargetType = Literal["uncommitted", "base", "commit", "task"]

_REQUIRED: dict[str, str] = {"base": "base", "commit": "commit", "task": "task_id"}
"""The field each target type needs (uncommitted needs none)."""
_CHECKOUT_CONFIG = {**IDENTITY, "gc.auto": "0"}
_SHOWN_BRANCHES = 10


@dataclass(frozen=True, slots=True)
class ReviewTarget:
    """What a review looks at, as the user picked it (Codex's /review presets)."""

    type: TargetType
    base: str = ""
    """The branch to compare with (type base)."""
    commit: str = ""
    """A sha or ref (type commit)."""
    task_id: str = ""
    """Another codex-tui task (type task)."""

    def __post_init__(self) -> None:
        if self.type not in REVIEW_TARGETS:
            raise ValueError(
                f"unknown review target {self.type!r}; expected one of: {', '.join(REVIEW_TARGETS)}"
            )
        for name in ("base", "commit", "task_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"review target field {name!r} must be text, not {type(value).__name__}")
            if value.startswith("-"):
                raise ValueError(f"review target field {name!r} cannot start with '-': {value!r}")
        needed = _REQUIRED.get(self.type)
        if needed and not getattr(self, needed).strip():
            raise ValueError(f"a {self.type} review needs {needed!r}")

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form: {type, base?, commit?, task_id?} (empty fields left out)."""
        out: dict[str, str] = {"type": self.type}
        out.update(
            {k: v for k, v in (("base", self.base), ("commit", self.commit), ("task_id", self.task_id)) if v}
        )
        return out

    @classmethod
    def from_dict(cls, raw: object) -> ReviewTarget:
        """Parse {type, base?, commit?, task_id?} (`target` is accepted for `type`, as in OP_SUBMIT)."""
        if not isinstance(raw, Mapping):
            raise ValueError('a review target must be an object such as {"type": "uncommitted"}')
        kind = raw.get("type") or raw.get("target")
        if not isinstance(kind, str) or kind not in REVIEW_TARGETS:
            raise ValueError(f"unknown review target {kind!r}; expected one of: {', '.join(REVIEW_TARGETS)}")
        values: dict[str, str] = {}
        for name in ("base", "commit", "task_id"):
            value = raw.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"review target field {name!r} must be text, not {type(value).__name__}")
            if name == _REQUIRED.get(kind):
                values[name] = value.strip()
        return cls(type=cast(TargetType, kind), **values)


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A target resolved in the user's repository: everything the review prompt and checkout need."""

    target: ReviewTarget
    label: str
    """For people: "uncommitted changes", "changes against main", "commit 1a2b3c4: Fix parser"…"""
    base_sha: str = ""
    """Where the change starts: HEAD (uncommitted), the merge base (base), the parent (commit)."""
    head_sha: str = ""
    """Where it ends: HEAD (uncommitted, base), the commit (commit)."""
    commit_title: str = ""
    """The reviewed commit's subject line (type commit)."""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form: the target's fields plus label and the non-empty resolved values."""
        out = {**self.target.to_dict(), "label": self.label}
        extra = (
            ("base_sha", self.base_sha),
            ("head_sha", self.head_sha),
            ("commit_title", self.commit_title),
        )
        out.update({k: v for k, v in extra if v})
        return out

    @classmethod
    def from_dict(cls, raw: object) -> ResolvedTarget:
        """Parse what :meth:`to_dict` wrote (ValueError on bad data)."""
        target = ReviewTarget.from_dict(raw)
        if not isinstance(raw, Mapping):  # checked by ReviewTarget.from_dict: narrows the type
            raise ValueError("a resolved review target must be an object")
        values = {k: raw.get(k) or "" for k in ("label", "base_sha", "head_sha", "commit_title")}
        if not all(isinstance(v, str) for v in values.values()):
            raise ValueError("a resolved review target's label and shas must be text")
        return cls(target=target, **values)


# --- resolving in the user's repository -------------------------------------------------------


def resolve_target(repo: Path, target: ReviewTarget, *, task_title: str = "") -> ResolvedTarget:
    """Check `target` against the repository holding `repo` and describe it (blocking: use a thread)."""
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise WorkspaceError(f"{repo} is not a folder")
    if target.type == "task":
        title = one_line(strip_controls(task_title))
        label = f"task {target.task_id}: {title}" if title else f"task {target.task_id}"
        return ResolvedTarget(target=target, label=label)
    top, _subdir = find_repo(repo.resolve())
    if top is None:
        raise WorkspaceError(f"{repo} is not a git repository: there are no changes to review")
    head = rev_or_empty(top, "HEAD^{commit}")
    if target.type == "uncommitted":
        if not _has_uncommitted(top):
            raise WorkspaceError(f"no uncommitted changes to review in {top}")
        return ResolvedTarget(target=target, label="uncommitted changes", base_sha=head, head_sha=head)
    if target.type == "base":
        return _resolve_base(top, target, head)
    return _resolve_commit(top, target)


def _has_uncommitted(top: Path) -> bool:
    out = run_git(top, "status", "--porcelain", "-z", "--untracked-files=all", "--ignore-submodules=all")
    return bool(out.strip(b"\0"))


def _resolve_base(top: Path, target: ReviewTarget, head: str) -> ResolvedTarget:
    branch = target.base
    other = rev_or_empty(top, f"refs/heads/{branch}^{{commit}}") or rev_or_empty(
        top, f"refs/remotes/{branch}^{{commit}}"
    )
    if not other:
        raise WorkspaceError(f"branch {branch!r} not found; {_branch_list(top)}")
    if not head:
        raise WorkspaceError(f"{top} has no commits yet: there is no merge base with {branch!r}")
    code, out, err = run_git_code(top, "merge-base", head, other)
    merge_base = out.decode().strip()
    if code != 0 or not merge_base:
        if code == 1:
            raise WorkspaceError(f"HEAD and {branch!r} have no common ancestor: there is no merge base")
        raise WorkspaceError(f"cannot find the merge base of HEAD and {branch!r}: {err.strip()}")
    if merge_base == head and not _has_uncommitted(top):
        raise WorkspaceError(
            f"nothing to review against {branch!r}: HEAD has no commits of its own and no uncommitted changes"
        )
    return ResolvedTarget(
        target=target, label=f"changes against {branch}", base_sha=merge_base, head_sha=head
    )


def _branch_list(top: Path) -> str:
    names = git_text(top, "for-each-ref", "--format=%(refname:short)", "refs/heads").splitlines()
    if not names:
        return "the repository has no branches"
    shown = ", ".join(names[:_SHOWN_BRANCHES]) + (" …" if len(names) > _SHOWN_BRANCHES else "")
    return f"branches: {shown}"


def _resolve_commit(top: Path, target: ReviewTarget) -> ResolvedTarget:
    sha = rev_or_empty(top, f"{target.commit}^{{commit}}")
    if not sha:
        raise WorkspaceError(f"commit {target.commit!r} not found in {top}")
    parent = rev_or_empty(top, f"{sha}^1")
    title = _commit_title(top, sha)
    label = f"commit {sha[:7]}: {title}" if title else f"commit {sha[:7]}"
    return ResolvedTarget(target=target, label=label, base_sha=parent, head_sha=sha, commit_title=title)


def _commit_title(top: Path, sha: str) -> str:
    """The subject of a commit, read from the raw object (no pretty-format config applies)."""
    raw = run_git(top, "cat-file", "commit", sha)
    _headers, _sep, message = raw.partition(b"\n\n")
    for line in message.decode("utf-8", "replace").splitlines():
        if line.strip():
            return one_line(strip_controls(line))
    return ""


# --- building the checkout --------------------------------------------------------------------


def create_review_sync(
    source: Path,
    dest: Path,
    task_id: str,
    target: ResolvedTarget,
    reviewed: Workspace | None,
    reviewed_files: Tree | None,
    title: str,
) -> Workspace:
    """Build the review checkout of `target` at `dest` (blocking; see `Workspace.create_review`).

    For a task target, `reviewed` is that task's workspace and `reviewed_files` a fresh snapshot of
    its checkout's entries (taken under its lock by the caller).
    """
    if not source.is_dir():
        raise WorkspaceError(f"{source} is not a folder")
    source = source.resolve()
    dest = Path(os.path.abspath(dest.expanduser()))
    top, subdir = find_repo(source)
    kind = target.target.type
    if kind == "task":
        if reviewed is None or reviewed_files is None:
            raise WorkspaceError(f"reviewing task {target.target.task_id} needs that task's checkout")
        if reviewed.task_id != target.target.task_id:
            raise WorkspaceError(
                f"the checkout given is that of task {reviewed.task_id}, not {target.target.task_id}"
            )
        if reviewed.source != (top or source):
            raise WorkspaceError(
                f"task {reviewed.task_id} was made from {reviewed.source}, not from {top or source}"
            )
    elif top is None:
        raise WorkspaceError(f"{source} is not a git repository: there are no changes to review")
    root = top or source
    state = state_dir_for(dest)
    check_destination(dest, root)
    check_destination(state, root)
    existed = dest.exists()
    try:
        if top is None:
            assert reviewed is not None and reviewed_files is not None
            host, base = _build_plain_task(dest, state, task_id, reviewed, reviewed_files)
        elif kind == "task":
            assert reviewed is not None and reviewed_files is not None
            host, base = _build_task(top, dest, state, task_id, reviewed, reviewed_files)
        elif kind == "uncommitted":
            host, base = _build_uncommitted(top, dest, state, task_id)
        elif kind == "base":
            host, base = _build_base(top, dest, state, task_id, target)
        else:
            host, base = _build_commit(top, dest, state, task_id, target)
        meta = {
            "task_id": task_id,
            "source": str(root),
            "source_is_git": top is not None,
            "title": one_line(title),
            "subdir": subdir,
            "mounts": [str(p) for p in alternates_of(dest)],
            "review_target": target.to_dict(),
        }
        write_meta(state, meta)
        os.chmod(state, 0o700)
        hand_over(dest)
    except (WorkspaceError, OSError, UnsafePath) as exc:
        discard_checkout(dest, existed)
        shutil.rmtree(state, ignore_errors=True)
        if isinstance(exc, OSError):
            raise WorkspaceError(f"cannot create the review checkout at {dest}: {exc.strerror}") from None
        if isinstance(exc, UnsafePath):
            raise WorkspaceError(f"cannot create the review checkout at {dest}: {exc}") from None
        raise
    return Workspace(path=dest, meta=meta, host=host, base=base)


def _build_uncommitted(top: Path, dest: Path, state: Path, task_id: str) -> tuple[HostGit, Tree]:
    clone_checkout(top, dest, _CHECKOUT_CONFIG)
    host = host_git_for(top, state, dest)
    base = snapshot_base(host, dest, task_id, index_entries(dest), rev_or_empty(dest, "HEAD^{commit}"))
    copy_uncommitted(top, dest)
    return host, base


def _build_base(
    top: Path, dest: Path, state: Path, task_id: str, target: ResolvedTarget
) -> tuple[HostGit, Tree]:
    if not target.base_sha or not target.head_sha:
        raise WorkspaceError(f"the review of {target.label} was not resolved (no merge base)")
    clone_shared(top, dest, _CHECKOUT_CONFIG)
    _switch(dest, target.base_sha)
    host = host_git_for(top, state, dest)
    base = snapshot_base(host, dest, task_id, index_entries(dest), target.base_sha)
    code, out, _err = run_git_code(top, "symbolic-ref", "-q", "--short", "HEAD")
    _switch(dest, target.head_sha, branch=out.decode().strip() if code == 0 else "")
    copy_uncommitted(top, dest)
    return host, base


def _build_commit(
    top: Path, dest: Path, state: Path, task_id: str, target: ResolvedTarget
) -> tuple[HostGit, Tree]:
    if not target.head_sha:
        raise WorkspaceError(f"the review of {target.label} was not resolved (no commit)")
    clone_shared(top, dest, _CHECKOUT_CONFIG)
    if target.base_sha:
        _switch(dest, target.base_sha)
    host = host_git_for(top, state, dest)
    tracked = index_entries(dest) if target.base_sha else {}
    base = snapshot_base(host, dest, task_id, tracked, target.base_sha)
    _switch(dest, target.head_sha)
    return host, base


def _build_task(
    top: Path, dest: Path, state: Path, task_id: str, reviewed: Workspace, files: Tree
) -> tuple[HostGit, Tree]:
    clone_shared(top, dest, _CHECKOUT_CONFIG)
    host = host_git_for(top, state, dest)
    return host, _task_before_then_after(dest, host, task_id, reviewed, files)


def _build_plain_task(
    dest: Path, state: Path, task_id: str, reviewed: Workspace, files: Tree
) -> tuple[HostGit, Tree]:
    """The review of a task on a folder that is not a git repository: a fresh repository."""
    dest.mkdir(parents=True, exist_ok=True)
    object_format = reviewed.host.object_format
    run_git(
        dest,
        *NO_HOOKS,
        "-c",
        "init.defaultBranch=main",
        "init",
        "--quiet",
        f"--object-format={object_format}",
    )
    for key, value in _CHECKOUT_CONFIG.items():
        run_git(dest, "config", key, value)
    host = HostGit.init(state / "git", object_format=object_format, borrow=[], excludes_file="")
    return host, _task_before_then_after(dest, host, task_id, reviewed, files)


def _task_before_then_after(
    dest: Path, host: HostGit, task_id: str, reviewed: Workspace, files: Tree
) -> Tree:
    """Check out the reviewed task's starting point, record it, then write its current files."""
    before = reviewed.host.ls_tree(f"{BASE_REF}^{{tree}}")
    parent = reviewed.host.rev(f"{BASE_REF}^")
    message = f"codex-tui: starting point of task {reviewed.task_id}"
    start = _commit_entries(dest, host, reviewed.host, before, parent, message)
    _switch(dest, start)
    head = parent if parent and host.rev(f"{parent}^{{commit}}") else ""
    base = snapshot_base(host, dest, task_id, index_entries(dest), head)
    with CheckoutRoot(dest) as root:
        restore_files(root, reviewed.host, base, files)
    return base


def _commit_entries(
    dest: Path, host: HostGit, source: HostGit, entries: Tree, parent: str, message: str
) -> str:
    """Commit `entries` in the checkout; blobs it lacks are copied from `source` to it and to `host`.

    The new task's host git dir gets them too: its snapshots take the checkout's tracked blobs as
    already stored.
    """
    blobs = list(dict.fromkeys(sha for mode, sha in entries.values() if mode != MODE_GITLINK))
    missing = _missing_objects(dest, blobs)
    if missing:
        pack = source.run("pack-objects", "--stdout", "-q", input=("\n".join(missing) + "\n").encode())
        run_git(dest, "unpack-objects", "-q", input=pack)
        host.run("unpack-objects", "-q", input=pack)
        still = _missing_objects(dest, missing)
        if still:
            raise WorkspaceError(f"{len(still)} file(s) of the reviewed task are missing from its store")
    index = dest / ".git" / "codex-tui-review-index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        info = "".join(f"{mode} {sha}\t{path}\0" for path, (mode, sha) in sorted(entries.items()))
        run_git(
            dest, "update-index", "-z", "--index-info", env=env, input=info.encode("utf-8", "surrogateescape")
        )
        tree = git_text(dest, "write-tree", env=env)
    finally:
        index.unlink(missing_ok=True)
    parents = [parent] if parent and rev_or_empty(dest, f"{parent}^{{commit}}") else []
    return commit_tree(dest, tree, parents, message)


def _missing_objects(repo: Path, shas: list[str]) -> list[str]:
    if not shas:
        return []
    out = run_git(repo, "cat-file", "--batch-check", input=("\n".join(shas) + "\n").encode())
    lines = out.decode().splitlines()
    return [line.split()[0] for line in lines if line.endswith(" missing")]


def _switch(dest: Path, commit: str, *, branch: str = "") -> None:
    """Check out `commit` in the fresh checkout (on `branch`, else detached), hooks off."""
    where = ("-B", branch) if branch else ("--detach",)
    run_git(dest, *NO_HOOKS, "checkout", "--quiet", "--force", *where, commit)
