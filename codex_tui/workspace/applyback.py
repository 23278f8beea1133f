"""Apply a task's changes back to the user's folder: a per-file three-way apply, all or nothing.

Each changed path has three states: the task's starting snapshot (base), the task's result and the
user's file now. A path the user has not touched since the task started gets the task's version; a
path that already holds the task's version is skipped ("already applied"); a text file both sides
changed is merged with `git merge-file`; anything else is a conflict, and one conflict means nothing
is written. The user's index is never touched: applied changes show up as unstaged edits.

`git apply --3way` is not used because it implies `--index`: it refuses every file whose working
copy differs from the index, which is exactly the case of a task started from uncommitted changes,
and it would stage the result in the user's index.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from codex_tui.boundary.safe_fs import UnsafePath, split_relative
from codex_tui.workspace.gitrun import WorkspaceError, run_git, run_git_code, split_z
from codex_tui.workspace.hostgit import HostGit

MAX_APPLY_BYTES: Final = 1024 * 1024 * 1024
"""The most file content one apply loads and writes: more is refused before anything is read."""
_HFS_IGNORED: Final = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)
"""Code points HFS+ leaves out of names: `.git` with a zero-width joiner in it is `.git` there."""

Kind = Literal["missing", "file", "symlink", "gitlink", "dir", "other"]
Action = Literal["write", "delete", "chmod", "skip", "conflict"]

_MODE_KIND: dict[str, Kind] = {
    "000000": "missing",
    "100644": "file",
    "100755": "file",
    "120000": "symlink",
    "160000": "gitlink",
}


@dataclass(slots=True)
class ApplyReport:
    """The outcome (or, for a preflight, the forecast) of bringing a task's changes to the user."""

    ok: bool
    applied: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    message: str = ""
    branch: str | None = None
    commit: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    """Why each conflicting or skipped path is so, and which applied paths were merged."""


@dataclass(slots=True, frozen=True)
class FileState:
    """A path's state in one of the three trees; `sha` is the blob id of its (clean) content."""

    kind: Kind
    sha: str = ""
    executable: bool = False


@dataclass(slots=True)
class FilePlan:
    """What applying does to one path of the user's folder."""

    path: str
    action: Action
    reason: str = ""
    content: bytes = b""
    executable: bool = False
    symlink: bool = False


@dataclass(slots=True)
class TreeChange:
    """One path changed between the task's base and its result (from `git diff-tree --raw`)."""

    path: str
    base: FileState
    task: FileState


def tree_changes(host: HostGit, base: str, tree: str) -> list[TreeChange]:
    """The task's changes, path by path, without rename detection."""
    out = host.run("diff-tree", "-r", "-z", "--no-renames", base, tree)
    tokens = split_z(out)
    changes: list[TreeChange] = []
    for meta, path in zip(tokens[0::2], tokens[1::2], strict=True):
        old_mode, new_mode, old_sha, new_sha, _status = meta.lstrip(":").split()
        changes.append(TreeChange(path, _tree_state(old_mode, old_sha), _tree_state(new_mode, new_sha)))
    return changes


def _tree_state(mode: str, sha: str) -> FileState:
    kind = _MODE_KIND.get(mode, "other")
    return FileState(kind, "" if kind == "missing" else sha, mode == "100755")


def plan_apply(host: HostGit, base: str, tree: str, target: Path, *, target_is_git: bool) -> list[FilePlan]:
    """Decide, path by path, what applying the task's changes to `target` would do.

    Paths come from the task (untrusted): anything that would land outside `target` or under a
    `.git` folder, and links that point out of `target`, are refused before the user's tree is read.
    """
    changes = tree_changes(host, base, tree)
    if not changes:
        return []
    shas = [s.sha for c in changes for s in (c.base, c.task) if s.kind in ("file", "symlink")]
    check_apply_size(host, shas)
    blobs = host.blobs(shas)
    refused = {c.path: reason for c in changes if (reason := refusal(c, blobs))}
    plans = [FilePlan(path, "conflict", reason) for path, reason in refused.items()]
    changes = [c for c in changes if c.path not in refused]
    if not changes:
        return plans
    hash_len = len(changes[0].base.sha or changes[0].task.sha)
    users = user_states(target, [c.path for c in changes], target_is_git=target_is_git, hash_len=hash_len)
    deleted = {c.path for c in changes if c.task.kind == "missing"}
    return plans + [_plan_one(c, users[c.path], blobs, target, deleted) for c in changes]


def check_apply_size(host: HostGit, shas: list[str]) -> None:
    """Refuse (WorkspaceError) changes whose content exceeds MAX_APPLY_BYTES, before loading any of it.

    Sparse files cost the sandbox no disk but hold their full size as blobs: loading them all would
    exhaust the host's memory, and writing them the user's disk.
    """
    total = sum(host.blob_sizes(shas).values())
    if total > MAX_APPLY_BYTES:
        raise WorkspaceError(
            f"the task's changes hold {total // (1024 * 1024)} MB of file content, more than the"
            f" {MAX_APPLY_BYTES // (1024 * 1024)} MB that can be applied at once; nothing was changed"
        )


def refusal(change: TreeChange, blobs: dict[str, bytes]) -> str:
    """Why a changed path may never be applied ("" when it may): outside the tree, under .git, or a
    link pointing out of the repository."""
    try:
        parts = split_relative(change.path)
    except UnsafePath as exc:
        return f"refused: {exc}"
    if "/".join(parts) != change.path:
        return "refused: not a plain relative path"
    if any(is_git_dir_name(part) for part in parts):
        return "refused: a name some file systems read as .git"
    if change.task.kind == "symlink":
        link = os.fsdecode(blobs.get(change.task.sha, b""))
        if link_escapes(change.path, link):
            return f"refused: a symbolic link pointing out of the repository ({link})"
    return ""


def link_escapes(path: str, target: str) -> bool:
    """Does a symbolic link at `path` (relative to the repository) point outside the repository, or
    into a `.git` folder?

    Only leading `..` components are allowed, as many as the link's folder is deep: they climb real
    folders. A `..` after a name is refused, since that name may itself be a link (`s -> .` makes
    `s/..` the repository's parent, though it reads as the repository itself).
    """
    if not target or target.startswith("/") or "\0" in target:
        return True
    depth = path.count("/")
    named = False
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if named or depth == 0:
                return True
            depth -= 1
        elif is_git_dir_name(part):
            return True
        else:
            named = True
    return False


def is_git_dir_name(name: str) -> bool:
    """Is `name` a git folder's name on some file system: `.git` in any case, with HFS+'s ignored code
    points, or NTFS's trailing dots and spaces, stream suffix or short name (`GIT~1`)?"""
    folded = "".join(c for c in name if c not in _HFS_IGNORED).casefold()
    if folded == ".git":
        return True
    ntfs = folded.split(":", 1)[0].rstrip(". ")
    return ntfs in (".git", "git~1")


def user_states(
    target: Path, paths: list[str], *, target_is_git: bool, hash_len: int
) -> dict[str, FileState]:
    """The current state of each path in the user's folder (content hashed like git would)."""
    states: dict[str, FileState] = {}
    regular: list[str] = []
    for path in paths:
        try:
            st = os.lstat(target / path)
        except (FileNotFoundError, NotADirectoryError):
            states[path] = FileState("missing")
            continue
        if stat.S_ISLNK(st.st_mode):
            link = os.fsencode(os.readlink(target / path))
            states[path] = FileState("symlink", blob_sha(link, hash_len))
        elif stat.S_ISDIR(st.st_mode):
            states[path] = FileState("dir")
        elif stat.S_ISREG(st.st_mode):
            states[path] = FileState("file", "", bool(st.st_mode & stat.S_IXUSR))
            regular.append(path)
        else:
            states[path] = FileState("other")
    for path, sha in zip(regular, _hash_files(target, regular, target_is_git, hash_len), strict=True):
        states[path] = FileState("file", sha, states[path].executable)
    return states


def _hash_files(target: Path, paths: list[str], target_is_git: bool, hash_len: int) -> list[str]:
    """Blob ids of the user's files: by git (their filters apply) for names `--stdin-paths` reads
    verbatim, by Python for the others (a newline ends a name there, a leading quote is unquoted)."""
    by_git = [p for p in paths if target_is_git and "\n" not in p and not p.startswith('"')]
    found: dict[str, str] = {}
    if by_git:
        listed = "".join(f"{p}\n" for p in by_git).encode("utf-8", "surrogateescape")
        out = run_git(target, "hash-object", "--stdin-paths", input=listed)
        found = dict(zip(by_git, out.decode().split(), strict=True))
    return [found.get(p) or blob_sha((target / p).read_bytes(), hash_len) for p in paths]


def blob_sha(data: bytes, hash_len: int = 40) -> str:
    """The git blob id of `data` (SHA-1, or SHA-256 for repositories using it)."""
    algo = hashlib.sha256 if hash_len == 64 else hashlib.sha1
    return algo(b"blob %d\0" % len(data) + data).hexdigest()


def _plan_one(
    change: TreeChange, user: FileState, blobs: dict[str, bytes], target: Path, deleted: set[str]
) -> FilePlan:
    path, base, task = change.path, change.base, change.task
    if "gitlink" in (base.kind, task.kind):
        return FilePlan(path, "skip", "submodule changes are not applied")
    if user == task:
        return FilePlan(path, "skip", "already applied")
    blocked = _blocked_parent(target, path, deleted)
    if blocked:
        return FilePlan(path, "conflict", blocked)
    if user == base:
        return _take_task(path, task, blobs)
    if base.kind == task.kind == user.kind == "file":
        return _merge_file(path, base, task, user, blobs, target)
    return FilePlan(path, "conflict", _conflict_reason(base, task, user))


def _take_task(path: str, task: FileState, blobs: dict[str, bytes]) -> FilePlan:
    if task.kind == "missing":
        return FilePlan(path, "delete")
    content = blobs[task.sha]
    return FilePlan(
        path, "write", content=content, executable=task.executable, symlink=task.kind == "symlink"
    )


def _blocked_parent(target: Path, path: str, deleted: set[str]) -> str:
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        full = target / prefix
        if full.is_symlink():
            return f"{prefix} is a symbolic link in your tree"
        if full.exists() and not full.is_dir() and prefix not in deleted:
            return f"{prefix} is a file in your tree"
    return ""


def _conflict_reason(base: FileState, task: FileState, user: FileState) -> str:
    if user.kind == "dir":
        return "a folder is in the way in your tree"
    if base.kind == "missing":
        return "you have a different file at this path"
    if user.kind == "missing":
        return "you deleted this file; the task changed it"
    if task.kind == "missing":
        return "you changed this file; the task deletes it"
    if user.kind != base.kind:
        return f"you replaced this {base.kind} with a {user.kind}; the task changed it"
    if task.kind != base.kind:
        return f"you changed this {base.kind}; the task replaced it with a {task.kind}"
    return f"you and the task changed this {base.kind} differently"


def _merge_file(
    path: str, base: FileState, task: FileState, user: FileState, blobs: dict[str, bytes], target: Path
) -> FilePlan:
    executable = task.executable if task.executable != base.executable else user.executable
    if user.sha == base.sha:
        return FilePlan(path, "write", "kept your mode change", blobs[task.sha], executable)
    if task.sha == base.sha:
        return FilePlan(path, "chmod", "kept your edits", executable=executable)
    ours = (target / path).read_bytes()
    theirs, original = blobs[task.sha], blobs[base.sha]
    if any(b"\0" in data[:8000] for data in (ours, theirs, original)):
        return FilePlan(path, "conflict", "binary file changed both by you and by the task")
    merged = merge_text(ours, original, theirs)
    if merged is None:
        return FilePlan(path, "conflict", "you and the task changed the same lines")
    return FilePlan(path, "write", "merged with your changes", merged, executable)


def merge_text(ours: bytes, base: bytes, theirs: bytes) -> bytes | None:
    """Three-way merge of text with `git merge-file`; None when the two sides conflict."""
    with tempfile.TemporaryDirectory(prefix="codex-tui-merge-") as tmp:
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            file = Path(tmp) / name
            file.write_bytes(data)
            files.append(str(file))
        code, out, err = run_git_code(Path(tmp), "merge-file", "-p", *files)
    if code < 0 or code > 127:
        raise WorkspaceError(f"git merge-file failed: {err.strip()}")
    return out if code == 0 else None


def report_for(plans: list[FilePlan], *, dry_run: bool) -> ApplyReport:
    """Summarise plans as an ApplyReport (the forecast when `dry_run`, else what was done)."""
    report = ApplyReport(ok=True)
    for plan in plans:
        bucket = {"conflict": report.conflicts, "skip": report.skipped}.get(plan.action, report.applied)
        bucket.append(plan.path)
        if plan.reason:
            report.details[plan.path] = plan.reason
    report.ok = not report.conflicts
    report.message = _message(report, plans, dry_run)
    return report


def _message(report: ApplyReport, plans: list[FilePlan], dry_run: bool) -> str:
    if not plans:
        return "nothing to apply: the task made no changes"
    if report.conflicts:
        listed = ", ".join(f"{p} ({report.details[p]})" for p in report.conflicts[:5])
        more = f" and {len(report.conflicts) - 5} more" if len(report.conflicts) > 5 else ""
        tail = "" if dry_run else "; nothing was changed"
        return f"{len(report.conflicts)} conflicting file(s): {listed}{more}{tail}"
    if not report.applied:
        if all(report.details.get(p) == "already applied" for p in report.skipped):
            return "already applied"
        return "nothing to apply: " + "; ".join(sorted(set(report.details.values())))
    merged = sum(1 for p in report.applied if report.details.get(p) == "merged with your changes")
    verb = "would apply" if dry_run else "applied"
    note = f" ({merged} merged with your changes)" if merged else ""
    return f"{verb} {len(report.applied)} file(s){note}"


@dataclass(slots=True)
class _Backup:
    path: Path
    kind: Kind
    data: bytes = b""
    mode: int = 0


def execute_plans(target: Path, plans: list[FilePlan]) -> None:
    """Carry out writes, deletions and mode changes; on any failure put everything back and raise."""
    steps = [p for p in plans if p.action == "delete"] + [p for p in plans if p.action in ("write", "chmod")]
    done: list[_Backup] = []
    created_dirs: list[Path] = []
    try:
        for plan in steps:
            full = target / plan.path
            done.append(_backup(full))
            _carry_out(target, full, plan, created_dirs)
    except OSError as exc:
        leftovers = _roll_back(done, created_dirs)
        state = (
            "your folder was left as it was" if not leftovers else f"could not restore {', '.join(leftovers)}"
        )
        raise WorkspaceError(f"could not write {exc.filename or target}: {exc.strerror}; {state}") from None


def _backup(full: Path) -> _Backup:
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return _Backup(full, "missing")
    if stat.S_ISLNK(st.st_mode):
        return _Backup(full, "symlink", os.fsencode(os.readlink(full)))
    return _Backup(full, "file", full.read_bytes(), stat.S_IMODE(st.st_mode))


def _carry_out(target: Path, full: Path, plan: FilePlan, created_dirs: list[Path]) -> None:
    _check_no_link_above(target, plan.path)
    if plan.action == "delete":
        full.unlink()
        _remove_empty_parents(target, full.parent)
    elif plan.action == "chmod":
        os.chmod(full, _with_exec(os.stat(full).st_mode, plan.executable))
    else:
        _make_parents(target, full.parent, created_dirs)
        _write_atomically(full, plan)


def _check_no_link_above(target: Path, path: str) -> None:
    """Raise (OSError) when a folder on the way to `path` is a link now: planning checked the user's
    tree, this checks it again after the earlier steps (a case-insensitive file system can make a
    link written for `Lib` the folder `lib/x` goes into)."""
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        prefix = target / "/".join(parts[:depth])
        if prefix.is_symlink():
            raise OSError(errno.ELOOP, "a folder on the way is a symbolic link", str(prefix))


def _make_parents(target: Path, folder: Path, created_dirs: list[Path]) -> None:
    missing = []
    while folder != target and not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for item in reversed(missing):
        item.mkdir()
        created_dirs.append(item)


def _write_atomically(full: Path, plan: FilePlan) -> None:
    tmp = full.with_name(f".codex-tui-{secrets.token_hex(4)}.tmp")
    try:
        if plan.symlink:
            os.symlink(os.fsdecode(plan.content), tmp)
        else:
            mode = _target_mode(full, plan.executable)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if plan.executable else 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(plan.content)
            if mode is not None:
                os.chmod(tmp, mode)
        os.replace(tmp, full)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _target_mode(full: Path, executable: bool) -> int | None:
    """Keep the user's permission bits on an existing file, switching only the executable bits."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return _with_exec(st.st_mode, executable)


def _with_exec(mode: int, executable: bool) -> int:
    mode = stat.S_IMODE(mode)
    if not executable:
        return mode & ~0o111
    return mode | ((mode & 0o444) >> 2)


def _remove_empty_parents(target: Path, folder: Path) -> None:
    while folder != target and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _roll_back(done: list[_Backup], created_dirs: list[Path]) -> list[str]:
    """Undo finished steps; returns the paths that could not be restored."""
    failed: list[str] = []
    for backup in reversed(done):
        try:
            _restore_backup(backup)
        except OSError:
            failed.append(str(backup.path))
    for folder in reversed(created_dirs):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return failed


def _restore_backup(backup: _Backup) -> None:
    full = backup.path
    if full.is_symlink() or full.is_file():
        full.unlink()
    if backup.kind == "missing":
        return
    full.parent.mkdir(parents=True, exist_ok=True)
    if backup.kind == "symlink":
        os.symlink(os.fsdecode(backup.data), full)
    else:
        full.write_bytes(backup.data)
        os.chmod(full, backup.mode)
