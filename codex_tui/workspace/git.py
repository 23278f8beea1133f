"""Task workspaces: a private git checkout per task, its diff, checkpoints, and applying it back.

Two places per task, on either side of the sandbox boundary:

- the **checkout** (``worktrees/<id>``), mounted into the sandbox: a `git clone --shared` of the
  user's repository with their uncommitted changes replayed, so `git status/diff/log/commit` work
  inside. Once the sandbox has started, everything in it, its `.git` above all, is untrusted: the
  host never runs git on it and touches its files only through :mod:`codex_tui.boundary.safe_fs`;
- the **state folder** (``worktrees/<id>.state``), never mounted: the task's metadata
  (`workspace.json`: source repository, sub-folder, mounts, decided once at creation) and the
  host's own git directory (:mod:`codex_tui.workspace.hostgit`) holding the starting snapshot
  (`refs/codex/base`), the checkpoints (`refs/codex/checkpoints/<n>`) and every snapshot's objects.

Snapshots (:mod:`codex_tui.workspace.snapshot`) read the checkout's files safely and write trees in
the host git directory; diff, checkpoints, apply and commit-to-branch are object operations there.
Undo writes the checkpoint's files back through safe_fs (no link followed, atomic renames).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui.boundary.identity import needs_chown, sandbox_ids
from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath, remove_tree
from codex_tui.workspace.applyback import ApplyReport, execute_plans, plan_apply, report_for
from codex_tui.workspace.branch import branch_problem, commit_tree_to_branch, slugify
from codex_tui.workspace.checkout import (
    BASE_REF,
    DIFF_OPTS,
    alternates_of,
    check_destination,
    clone_checkout,
    copy_plain_folder,
    copy_uncommitted,
    discard_checkout,
    find_repo,
)
from codex_tui.workspace.diffstat import DiffResult, FileDiff, cut_patch, diff_result, parse_raw_numstat
from codex_tui.workspace.gitrun import (
    IDENTITY,
    WorkspaceError,
    git_text,
    one_line,
    rev_or_empty,
    run_git,
    run_git_capped,
    run_git_code,
    split_z,
)
from codex_tui.workspace.hostgit import HostGit, Tree
from codex_tui.workspace.restore import restore_files
from codex_tui.workspace.snapshot import Snapshot, Snapshotter

if TYPE_CHECKING:
    from codex_tui.workspace.review_target import ResolvedTarget

__all__ = [
    "BASE_CHECKPOINT",
    "ApplyReport",
    "DiffResult",
    "FileDiff",
    "Workspace",
    "WorkspaceError",
    "restore_files",
    "slugify",
]

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "refs/codex/checkpoints/"
BASE_CHECKPOINT = "base"
"""The checkpoint id of the starting snapshot: `restore("base")` undoes everything."""
META_FILE = "workspace.json"
LATEST_REF = "refs/codex/latest"
"""The newest snapshot's tree, set just before a prune: it keeps the files as they are now."""
PRUNE_AFTER_BYTES = 512 * 1024 * 1024
"""Snapshot objects pile up (every changed file, after every tool call): past this much more than
after the last prune, objects no checkpoint or the newest snapshot needs are deleted."""
PRUNE_GRACE = "10.minutes.ago"
"""Younger objects survive a prune (another codex-tui process may be writing a snapshot here)."""
MAX_PATCH_BYTES = 32 * 1024 * 1024
"""A task's patch text is cut (at a file boundary) past this size: hard links make it cost no disk."""


def state_dir_for(checkout: Path) -> Path:
    """The host-private folder of a checkout: beside it, never inside it (so never mounted)."""
    return checkout.with_name(checkout.name + ".state")


class Workspace:
    """One task's private checkout of the user's repository (or of a plain folder)."""

    def __init__(self, *, path: Path, meta: dict[str, Any], host: HostGit, base: Tree) -> None:
        self.path = path
        self.state_dir = state_dir_for(path)
        self.task_id: str = meta["task_id"]
        self.source = Path(meta["source"])
        self.source_is_git: bool = meta["source_is_git"]
        self.title: str = meta.get("title", "")
        """Used for the branch name and commit message of `commit_to_branch`."""
        self.subdir: str = meta.get("subdir", "")
        """Where `source` was inside the repository ("" for its top level): the task's cwd."""
        self.extra_ro_mounts: list[Path] = [Path(p) for p in meta.get("mounts", [])]
        """Host folders the checkout's git needs inside the sandbox (decided at creation)."""
        self.host = host
        self._snapshots = Snapshotter(host, path, base, set())
        self._lock = asyncio.Lock()
        self._latest = ""
        """The tree of the newest snapshot."""
        self._pruned_at = 0
        """Loose object bytes left by the last prune (0 before any)."""

    def __repr__(self) -> str:
        return f"Workspace(task_id={self.task_id!r}, path={str(self.path)!r}, source={str(self.source)!r})"

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        source: Path,
        dest: Path,
        task_id: str,
        *,
        include_uncommitted: bool = True,
        allow_non_git: bool = False,
        title: str = "",
    ) -> Workspace:
        """Make the checkout of `source` (HEAD + uncommitted changes by default) at `dest`."""
        return await asyncio.to_thread(
            _create_sync, Path(source), Path(dest), task_id, include_uncommitted, allow_non_git, title
        )

    @classmethod
    async def create_review(
        cls,
        source: Path,
        dest: Path,
        task_id: str,
        target: ResolvedTarget,
        *,
        reviewed: Workspace | None = None,
        title: str = "",
    ) -> Workspace:
        """Make a review checkout whose diff is the change `target` names (see review_target.py)."""
        from codex_tui.workspace.review_target import create_review_sync  # it builds on this module

        files = None
        if reviewed is not None:
            async with reviewed._lock:
                files = (await asyncio.to_thread(reviewed._snapshot)).entries
        args = (Path(source), Path(dest), task_id, target, reviewed, files, title)
        return await asyncio.to_thread(create_review_sync, *args)

    @classmethod
    async def open(cls, source: Path, dest: Path, task_id: str) -> Workspace:
        """Re-open the checkout of a task made earlier (after a restart of the app)."""
        return await asyncio.to_thread(_open_sync, Path(source), Path(dest), task_id)

    async def remove(self) -> None:
        """Delete the checkout and its state folder from disk."""
        async with self._lock:
            await asyncio.to_thread(self._remove_sync)

    # --- diff and checkpoints -------------------------------------------------------------------

    async def diff(self) -> DiffResult:
        """The task's changes against its starting snapshot (untracked files in, ignored files out)."""
        async with self._lock:
            return await asyncio.to_thread(self._diff_sync)

    async def tidy(self) -> int:
        """Delete snapshot objects nothing needs any more once they add up; the bytes freed."""
        async with self._lock:
            return await asyncio.to_thread(self._tidy_sync)

    async def checkpoint(self, label: str) -> str:
        """Snapshot the current files (untracked included); returns the id to give `restore`."""
        async with self._lock:
            return await asyncio.to_thread(self._checkpoint_sync, label)

    async def restore(self, checkpoint_id: str) -> None:
        """Put the files back exactly as in that checkpoint (files created since are removed)."""
        async with self._lock:
            await asyncio.to_thread(self._restore_sync, checkpoint_id)

    # --- bringing the work back -----------------------------------------------------------------

    async def preflight(self) -> ApplyReport:
        """Dry run of `apply_to_source`: what would apply, conflict or be skipped; changes nothing."""
        async with self._lock:
            return await asyncio.to_thread(self._apply_sync, True)

    async def apply_to_source(self) -> ApplyReport:
        """Three-way apply to the user's folder, all or nothing; applying twice is harmless."""
        async with self._lock:
            return await asyncio.to_thread(self._apply_sync, False)

    async def commit_to_branch(self, branch: str | None = None, message: str | None = None) -> ApplyReport:
        """Commit the task's files to `codex/<slug>` in the user's repo without touching their tree."""
        async with self._lock:
            return await asyncio.to_thread(self._commit_sync, branch, message)

    # --- blocking implementations (run in a thread) ---------------------------------------------

    def _snapshot(self) -> Snapshot:
        if not self.path.is_dir() or self.path.is_symlink():
            raise WorkspaceError(f"the checkout at {self.path} is gone")
        snapshot = self._snapshots.take()
        self._latest = snapshot.tree
        if snapshot.skipped:
            shown = ", ".join(snapshot.skipped[:3]) + (" …" if len(snapshot.skipped) > 3 else "")
            log.warning("task %s: left out of the snapshot: %s", self.task_id, shown)
        return snapshot

    def _diff_sync(self) -> DiffResult:
        tree = self._snapshot().tree
        base = ("diff-tree", "-r", "-M", *DIFF_OPTS)
        stats = self.host.run(*base, "--raw", "--numstat", "-z", BASE_REF, tree)
        patch, cut = run_git_capped(
            self.host.gitdir, *base, "-p", BASE_REF, tree, max_bytes=MAX_PATCH_BYTES, env=self.host.env()
        )
        if cut:
            log.warning(
                "task %s: the diff is larger than %d bytes; its patch was cut", self.task_id, len(patch)
            )
            patch = cut_patch(patch)
        text = patch.decode("utf-8", "replace")
        return diff_result(parse_raw_numstat(stats), text, truncated=cut)

    def _tidy_sync(self) -> int:
        before = self.host.loose_bytes()
        if before < self._pruned_at + PRUNE_AFTER_BYTES:
            return 0
        if self._latest:  # the files as they are now survive the prune
            self.host.update_ref(LATEST_REF, self._latest)
        self.host.prune(PRUNE_GRACE)
        self._snapshots.forget_objects()
        self._pruned_at = self.host.loose_bytes()
        log.info("task %s: pruned %d bytes of old snapshots", self.task_id, before - self._pruned_at)
        return before - self._pruned_at

    def _checkpoint_sync(self, label: str) -> str:
        tree = self._snapshot().tree
        numbers = self._checkpoint_numbers()
        number = max(numbers, default=0) + 1
        parent = f"{CHECKPOINT_PREFIX}{max(numbers)}" if numbers else BASE_REF
        text = f"codex-tui checkpoint {number}: {one_line(label)}"
        commit = self.host.commit(tree, [self.host.rev(parent)], text)
        self.host.update_ref(f"{CHECKPOINT_PREFIX}{number}", commit)
        return str(number)

    def _checkpoint_numbers(self) -> list[int]:
        out = self.host.text("for-each-ref", "--format=%(refname)", CHECKPOINT_PREFIX)
        names = [line.removeprefix(CHECKPOINT_PREFIX) for line in out.splitlines()]
        return [int(name) for name in names if name.isdigit()]

    def _restore_sync(self, checkpoint_id: str) -> None:
        if checkpoint_id == BASE_CHECKPOINT:
            ref = BASE_REF
        elif checkpoint_id.isdigit():
            ref = f"{CHECKPOINT_PREFIX}{checkpoint_id}"
        else:
            raise WorkspaceError(f"unknown checkpoint {checkpoint_id!r} for task {self.task_id}")
        commit = self.host.rev(f"{ref}^{{commit}}")
        if not commit:
            raise WorkspaceError(f"unknown checkpoint {checkpoint_id!r} for task {self.task_id}")
        wanted = self.host.ls_tree(commit)
        current = self._snapshot().entries
        try:
            with CheckoutRoot(self.path) as root:
                restore_files(root, self.host, current, wanted)
        except UnsafePath as exc:
            raise WorkspaceError(f"could not restore the checkpoint: {exc}") from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise WorkspaceError(f"could not restore the checkpoint: {exc.strerror}{where}") from None

    def _apply_sync(self, dry_run: bool) -> ApplyReport:
        if not self.source.is_dir():
            return ApplyReport(ok=False, message=f"{self.source} no longer exists")
        tree = self._snapshot().tree
        try:
            plans = plan_apply(self.host, BASE_REF, tree, self.source, target_is_git=self.source_is_git)
        except OSError as exc:
            return ApplyReport(ok=False, message=f"cannot read {exc.filename}: {exc.strerror}")
        except WorkspaceError as exc:
            return ApplyReport(ok=False, message=str(exc))
        report = report_for(plans, dry_run=dry_run)
        if dry_run or not report.ok or not report.applied:
            return report
        try:
            execute_plans(self.source, plans)
        except WorkspaceError as exc:
            return ApplyReport(ok=False, message=str(exc))
        return report

    def _commit_sync(self, branch: str | None, message: str | None) -> ApplyReport:
        if not self.source_is_git:
            return ApplyReport(
                ok=False, message=f"{self.source} is not a git repository: there is no branch to commit to"
            )
        if not self.source.is_dir():
            return ApplyReport(ok=False, message=f"{self.source} no longer exists")
        name = branch or f"codex/{slugify(self.title or self.task_id)}"
        problem = branch_problem(self.source, name)
        if problem:
            return ApplyReport(ok=False, message=problem, branch=name)
        tree = self._snapshot().tree
        start = self.host.rev(f"{BASE_REF}^")
        title = self.title or self.task_id
        return commit_tree_to_branch(self.host, self.source, start, tree, name, title=title, message=message)

    def _remove_sync(self) -> None:
        if self.path == self.source or self.source.is_relative_to(self.path):
            raise WorkspaceError(f"refusing to delete {self.path}: it holds the user's own folder")
        if not os.path.lexists(self.path) and not os.path.lexists(self.state_dir):
            return
        meta = _read_meta(self.state_dir)
        if meta.get("task_id") != self.task_id:
            raise WorkspaceError(
                f"refusing to delete {self.path}: it is not the checkout of task {self.task_id}"
            )
        for folder in (self.path, self.state_dir):
            try:
                remove_tree(folder)
            except OSError as exc:
                raise WorkspaceError(f"could not delete {exc.filename or folder}: {exc.strerror}") from None


# --- creating and opening ---------------------------------------------------------------------


def _create_sync(
    source: Path, dest: Path, task_id: str, include_uncommitted: bool, allow_non_git: bool, title: str
) -> Workspace:
    if not source.is_dir():
        raise WorkspaceError(f"{source} is not a folder")
    source = source.resolve()
    dest = Path(os.path.abspath(dest.expanduser()))
    top, subdir = find_repo(source)
    if top is None and not allow_non_git:
        raise WorkspaceError(
            f"{source} is not a git repository; run `git init` first or pass --allow-non-git"
        )
    root = top or source
    check_destination(dest, root)
    state = state_dir_for(dest)
    check_destination(state, root)
    existed = dest.exists()
    try:
        if top is None:
            copy_plain_folder(source, dest, {**IDENTITY, "gc.auto": "0"}, task_id)
            host = HostGit.init(state / "git", object_format="sha1", borrow=[], excludes_file="")
            tracked: Tree = {}
            head = ""
        else:
            clone_checkout(top, dest, {**IDENTITY, "gc.auto": "0"})
            if include_uncommitted:
                copy_uncommitted(top, dest)
            host = host_git_for(top, state, dest)
            tracked = index_entries(dest)
            head = rev_or_empty(dest, "HEAD^{commit}")
        meta = {
            "task_id": task_id,
            "source": str(root),
            "source_is_git": top is not None,
            "title": one_line(title),
            "subdir": subdir,
            "mounts": [str(p) for p in alternates_of(dest)],
        }
        base = snapshot_base(host, dest, task_id, tracked, head)
        write_meta(state, meta)
        os.chmod(state, 0o700)
        hand_over(dest)
    except (WorkspaceError, OSError) as exc:
        discard_checkout(dest, existed)
        shutil.rmtree(state, ignore_errors=True)
        if isinstance(exc, OSError):
            raise WorkspaceError(f"cannot create the checkout at {dest}: {exc.strerror}") from None
        raise
    return Workspace(path=dest, meta=meta, host=host, base=base)


def hand_over(checkout: Path) -> None:
    """Give the new checkout to the sandbox's uid when the host runs as root (commands never do)."""
    if not needs_chown():
        return
    uid, gid = sandbox_ids()
    os.lchown(checkout, uid, gid)
    for folder, dirs, files in os.walk(checkout):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)


def host_git_for(top: Path, state: Path, checkout: Path) -> HostGit:
    """The task's host git directory, borrowing the user's objects, with their ignore rules copied.

    The checkout's own git gets the same rules (`info/exclude` plus the global excludes file), so
    `git status` inside the sandbox hides what the user's hides (its HOME has no git config of theirs).
    """
    code, out, _err = run_git_code(top, "rev-parse", "--show-object-format")
    object_format = out.decode().strip() if code == 0 and out.strip() else "sha1"
    objects = Path(git_text(top, "rev-parse", "--path-format=absolute", "--git-path", "objects"))
    exclude = Path(git_text(top, "rev-parse", "--path-format=absolute", "--git-path", "info/exclude"))
    code, out, _err = run_git_code(top, "config", "--path", "--get", "core.excludesFile")
    excludes_file = out.decode("utf-8", "surrogateescape").strip() if code == 0 else _default_excludes()
    host = HostGit.init(
        state / "git", object_format=object_format, borrow=[objects], excludes_file=excludes_file
    )
    if exclude.is_file():
        shutil.copyfile(exclude, host.gitdir / "info" / "exclude")
    sources = [exclude, Path(excludes_file)] if excludes_file else [exclude]
    rules = [path.read_bytes() for path in sources if path.is_file()]
    if rules:
        info = checkout / ".git" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "exclude").write_bytes(b"\n".join(rules) + b"\n")
    return host


def _default_excludes() -> str:
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(config_home, "git", "ignore")
    return path if os.path.isfile(path) else ""


def index_entries(checkout: Path) -> Tree:
    """The paths of the fresh checkout's index (HEAD plus staged files): tracked, so never ignored."""
    entries: Tree = {}
    for item in split_z(run_git(checkout, "ls-files", "-s", "-z")):
        meta, path = item.split("\t", 1)
        mode, sha, _stage = meta.split()
        entries[path] = (mode, sha)
    return entries


def snapshot_base(host: HostGit, checkout: Path, task_id: str, tracked: Tree, head: str) -> Tree:
    """Snapshot the new checkout as the starting point (`refs/codex/base`); returns its entries."""
    known: set[str] = set()
    if head:
        known = {sha for _mode, sha in host.ls_tree(head).values()}
    snapshotter = Snapshotter(host, checkout, tracked, known)
    snapshot = snapshotter.take()
    message = f"codex-tui: starting snapshot of task {task_id}"
    commit = host.commit(snapshot.tree, [head] if head else [], message)
    host.update_ref(BASE_REF, commit)
    return snapshot.entries


def write_meta(state: Path, meta: dict[str, Any]) -> None:
    """Write the task's `workspace.json` into its state folder (atomically)."""
    tmp = state / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, state / META_FILE)


def _read_meta(state: Path) -> dict[str, Any]:
    try:
        data = json.loads((state / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _open_sync(source: Path, dest: Path, task_id: str) -> Workspace:
    dest = Path(os.path.abspath(dest.expanduser()))
    state = state_dir_for(dest)
    meta = _read_meta(state)
    if not meta:
        raise WorkspaceError(f"there is no task checkout at {dest}")
    if meta.get("task_id") != task_id:
        raise WorkspaceError(
            f"{dest} holds the checkout of task {meta.get('task_id') or '(unknown)'}, not {task_id}"
        )
    if not dest.is_dir() or dest.is_symlink():
        raise WorkspaceError(f"the checkout of task {task_id} at {dest} is gone")
    host = HostGit(state / "git")
    base = host.rev(f"{BASE_REF}^{{commit}}")
    if not base:
        raise WorkspaceError(f"the checkout at {dest} has no starting snapshot ({BASE_REF})")
    root = Path(meta["source"])
    given = Path(source).expanduser().resolve()
    if given != root and not given.is_relative_to(root):
        raise WorkspaceError(f"the checkout at {dest} was made from {root}, not {given}")
    for borrowed in meta.get("mounts", []):
        if not Path(borrowed).is_dir():
            raise WorkspaceError(f"the checkout at {dest} needs {borrowed}, which no longer exists")
    return Workspace(path=dest, meta=meta, host=host, base=host.ls_tree(base))
