"""Making a task's checkout from the user's repository, before any sandbox has seen it.

A `git clone --shared` (or a plain copy of a folder that is not a repository) with the user's
uncommitted changes replayed, the starting snapshot recorded (`refs/codex/base`) and the borrowed
object stores listed. Git runs here on the user's repository and on the fresh checkout only, never
on a checkout a sandbox has used, and never with the checkout's hooks (`NO_HOOKS`).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codex_tui.workspace.gitrun import (
    WorkspaceError,
    commit_tree,
    git_text,
    rev_or_empty,
    run_git,
    run_git_code,
)

BASE_REF = "refs/codex/base"
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")
DIFF_OPTS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
"""Options of every diff the host runs: no colours, external diff drivers or textconv filters."""

log = logging.getLogger(__name__)


def find_repo(folder: Path) -> tuple[Path | None, str]:
    """The top level of the git work tree holding `folder` and folder's path inside it, or (None, "")."""
    code, out, err = run_git_code(folder, "rev-parse", "--is-bare-repository", "--is-inside-git-dir")
    if code != 0:
        if "not a git repository" in err:
            return None, ""
        raise WorkspaceError(f"cannot read the git repository at {folder}: {err.strip()}")
    if "true" in out.decode().split():
        raise WorkspaceError(f"{folder} is a bare repository or a .git folder: there are no files to work on")
    top = Path(git_text(folder, "rev-parse", "--show-toplevel")).resolve()
    subdir = folder.relative_to(top).as_posix() if folder != top else ""
    return top, subdir


def check_destination(dest: Path, root: Path) -> None:
    """The checkout goes to a new or empty folder outside the user's folder."""
    resolved = dest.resolve()
    if resolved == root or resolved.is_relative_to(root):
        raise WorkspaceError(f"the checkout {dest} cannot be inside the folder it copies ({root})")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise WorkspaceError(f"the checkout folder {dest} already exists and is not empty")


def clone_checkout(top: Path, dest: Path, config: dict[str, str]) -> None:
    """`git clone --shared` of `top` at `dest`, on the user's branch at the user's HEAD commit."""
    head = rev_or_empty(top, "HEAD^{commit}")
    code, out, _err = run_git_code(top, "symbolic-ref", "-q", "--short", "HEAD")
    branch = out.decode().strip() if code == 0 else ""
    clone_shared(top, dest, config)
    if head and branch:
        run_git(dest, *NO_HOOKS, "checkout", "--quiet", "-B", branch, head)
    elif head:
        run_git(dest, *NO_HOOKS, "checkout", "--quiet", "--detach", head)
    else:
        run_git(dest, "symbolic-ref", "HEAD", f"refs/heads/{branch or 'main'}")


def clone_shared(top: Path, dest: Path, config: dict[str, str]) -> None:
    """`git clone --shared --no-checkout` of `top` at `dest` (no files yet, no hook run)."""
    settings = [arg for key, value in config.items() for arg in ("-c", f"{key}={value}")]
    dest.parent.mkdir(parents=True, exist_ok=True)
    clone = ("clone", "--quiet", "--shared", "--no-checkout", *settings, str(top), str(dest))
    run_git(dest.parent, *NO_HOOKS, *clone)


def copy_uncommitted(top: Path, dest: Path) -> list[str]:
    """Copy the user's staged, unstaged and untracked-not-ignored changes; returns the paths."""
    out = run_git(
        top,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=all",
    )
    entries = [(item[:2], item[3:]) for item in out.decode("utf-8", "surrogateescape").split("\0") if item]
    if any(code[0] not in " ?" for code, _path in entries):
        _copy_staged(top, dest)
    paths = [path for _code, path in entries]
    gone = [p for p in paths if not os.path.lexists(top / p)]
    for path in gone:
        _delete_path(dest, path)
    for path in paths:
        if path not in gone:
            _copy_path(top / path, dest / path)
    return paths


def _copy_staged(top: Path, dest: Path) -> None:
    args = [
        "diff",
        "--cached",
        "--binary",
        "--full-index",
        "--no-renames",
        "--ignore-submodules=all",
        *DIFF_OPTS,
    ]
    if rev_or_empty(top, "HEAD^{commit}"):
        args.append("HEAD")
    patch = run_git(top, *args)
    code, _out, err = run_git_code(dest, "apply", "--cached", "-", input=patch)
    if code != 0:
        log.warning("staged changes of %s not replicated in %s (files are copied anyway): %s", top, dest, err)


def _delete_path(root: Path, path: str) -> None:
    target = root / path
    if target.is_symlink() or target.is_file():
        target.unlink()
        folder = target.parent
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _copy_path(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)


def copy_plain_folder(source: Path, dest: Path, config: dict[str, str], task_id: str) -> None:
    """Checkout of a folder that is not a git repository: copy it, `git init`, commit it as the base."""
    try:
        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True, ignore=_skip_git_dirs)
    except shutil.Error as exc:
        problems = "; ".join(str(item[2]) for item in exc.args[0][:3])
        raise WorkspaceError(f"could not copy {source}: {problems}") from None
    run_git(dest, "-c", "init.defaultBranch=main", "init", "--quiet")
    for key, value in config.items():
        run_git(dest, "config", key, value)
    base = record_base(dest, task_id, None)
    run_git(dest, "update-ref", "HEAD", base)
    shutil.copyfile(dest / ".git" / "codex-tui" / "index", dest / ".git" / "index")


def _skip_git_dirs(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == ".git"]


def record_base(dest: Path, task_id: str, changed: list[str] | None) -> str:
    """Commit the checkout's files as the starting snapshot and point `refs/codex/base` at it.

    `changed` lists the only paths that can differ from the real index (None: any path may).
    """
    private = dest / ".git" / "codex-tui" / "index"
    seed_private_index(dest, private, None)
    env = {"GIT_INDEX_FILE": str(private)}
    if changed is None:
        run_git(dest, "add", "-A", env=env)
    elif changed:
        pathspecs = "\0".join(changed).encode("utf-8", "surrogateescape")
        add = ("--literal-pathspecs", "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul")
        code, _out, _err = run_git_code(dest, *add, env=env, input=pathspecs)
        if code != 0:
            run_git(dest, "add", "-A", env=env)
    tree = git_text(dest, "write-tree", env=env)
    head = rev_or_empty(dest, "HEAD^{commit}")
    commit = commit_tree(
        dest, tree, [head] if head else [], f"codex-tui: starting snapshot of task {task_id}"
    )
    run_git(dest, "update-ref", BASE_REF, commit)
    return commit


def seed_private_index(checkout: Path, private: Path, fallback_ref: str | None) -> None:
    """Start the private index as a copy of the real one (cheap `add -A` thanks to its stat data)."""
    if private.exists():
        return
    private.parent.mkdir(parents=True, exist_ok=True)
    real = checkout / ".git" / "index"
    if real.exists():
        shutil.copyfile(real, private)
    elif fallback_ref:
        run_git(checkout, "read-tree", fallback_ref, env={"GIT_INDEX_FILE": str(private)})


def alternates_of(checkout: Path) -> list[Path]:
    """Object folders the checkout borrows (transitively), to mount read-only at the same path."""
    found: list[Path] = []
    pending = [checkout / ".git" / "objects"]
    while pending:
        objects = pending.pop()
        info = objects / "info" / "alternates"
        if not info.is_file():
            continue
        for line in info.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            borrowed = Path(os.path.normpath(objects / line))
            if borrowed not in found:
                found.append(borrowed)
                pending.append(borrowed)
    return found


# --- small helpers ----------------------------------------------------------------------------


def discard_checkout(dest: Path, existed: bool) -> None:
    """Undo a failed creation: remove what was made at `dest` (only its contents if it existed)."""
    if not dest.exists():
        return
    if existed:
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, onerror=_force_remove)
            else:
                child.unlink()
    else:
        shutil.rmtree(dest, onerror=_force_remove)


def _force_remove(func: Callable[..., Any], path: str, _exc: Any) -> None:
    """rmtree helper: make read-only folders writable (e.g. Go module caches) and retry once."""
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, stat.S_IRWXU)
    func(path)
