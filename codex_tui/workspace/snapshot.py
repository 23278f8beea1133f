"""Snapshots of a task's checkout, taken from the host without running git on the checkout.

The files are read with :mod:`codex_tui.boundary.safe_fs` (no links followed, regular files only,
bounded) and stored as objects in the task's host git directory; trees are built in Python. Which
untracked paths count follows the repository's ignore rules exactly as git applies them: the
checkout's `.gitignore` files are copied, as data, into a host-private mirror folder, and
`git check-ignore` answers against that mirror with the host's own config (the user's excludes
file and `info/exclude` copied when the task was made). Paths tracked at the start are always
included, as `git add -A` would. Stat data is cached, so a snapshot only re-reads changed files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from codex_tui.boundary.safe_fs import CheckoutRoot, Entry, UnsafePath, read_bounded
from codex_tui.workspace.gitrun import WorkspaceError, git_env
from codex_tui.workspace.hostgit import MODE_EXEC, MODE_FILE, MODE_GITLINK, MODE_LINK, HostGit, Tree

log = logging.getLogger(__name__)

MAX_FILE_BYTES: Final = 256 * 1024 * 1024
"""Larger files are left out of snapshots (and so of the diff and apply), with a warning."""
MAX_ENTRIES: Final = 1_000_000
MAX_PATH_BYTES: Final = 256 * 1024 * 1024
"""The paths of one snapshot, all together (each is held in memory; deep folders make them long)."""
MAX_IGNORE_FILE_BYTES: Final = 1024 * 1024
MAX_IGNORE_TOTAL_BYTES: Final = 16 * 1024 * 1024
"""Ignore rules read per snapshot; further `.gitignore` files count as absent (one hard-linked file in
many folders costs the sandbox no disk, but a copy of it in the mirror for each folder)."""
SPARE_MIRROR_FOLDERS: Final = 10_000
"""The mirror keeps folders of earlier snapshots; past twice the last snapshot's folders plus these (or
past two snapshots' worth of copies) it is rebuilt from scratch, so renamed folders cannot fill the disk."""
MAX_LINK_BYTES: Final = 4096

_StatKey = tuple[int, int, int, int, int, int]


@dataclass(slots=True)
class Snapshot:
    """The checkout's files at one moment: a tree id and its flat entries."""

    tree: str
    entries: Tree
    skipped: list[str] = field(default_factory=list)
    """Paths left out (too large, unreadable, or changed while being read)."""


class IgnoreRules:
    """`git check-ignore` over a host mirror of the checkout's ignore files (never the checkout).

    The mirror (folders and `.gitignore` copies only) is kept between snapshots, so a snapshot
    only writes the ignore files that changed.
    """

    def __init__(self, host: HostGit, mirror: Path) -> None:
        self.host = host
        self.mirror = mirror
        self.root: CheckoutRoot | None = None
        self._folders: set[str] = set()
        self._copies: dict[str, bytes] = {}
        self._wanted: dict[str, bytes | None] = {}
        self._read = 0
        self._entered = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def open(self, root: CheckoutRoot) -> None:
        """Start answering for one snapshot of `root`."""
        self.root = root
        stored = sum(len(data) for data in self._copies.values())
        too_many = len(self._folders) > 2 * self._entered + SPARE_MIRROR_FOLDERS
        if too_many or stored > 2 * (MAX_IGNORE_TOTAL_BYTES + MAX_IGNORE_FILE_BYTES):
            shutil.rmtree(self.mirror, ignore_errors=True)
            self._folders, self._copies = set(), {}
        self._wanted = {}
        self._read = 0
        self._entered = 0
        self.enter("")

    def enter(self, folder: str) -> None:
        """Read `folder`'s .gitignore (a regular file only) before its entries are asked about."""
        assert self.root is not None
        name = f"{folder}/.gitignore" if folder else ".gitignore"
        self._entered += 1
        self._wanted[folder] = None
        if self._read > MAX_IGNORE_TOTAL_BYTES:
            return
        try:
            data = self.root.read_file(name, MAX_IGNORE_FILE_BYTES)
        except (UnsafePath, OSError):
            return
        self._read += len(data)
        if self._read > MAX_IGNORE_TOTAL_BYTES:
            log.warning(
                "%s and later .gitignore files left out: more than %d bytes of them", name, self._read
            )
            return
        self._wanted[folder] = data

    def _materialize(self, folder: str) -> None:
        """Put `folder` and its parents in the mirror, with their current .gitignore copies."""
        parts = folder.split("/") if folder else []
        for depth in range(len(parts) + 1):
            prefix = "/".join(parts[:depth])
            self._folder(prefix)
            data = self._wanted.get(prefix)
            if self._copies.get(prefix) == data:
                continue
            copy = self.mirror / prefix / ".gitignore"
            if copy.is_dir() and not copy.is_symlink():  # a folder named .gitignore in an earlier snapshot
                self._forget(f"{prefix}/.gitignore" if prefix else ".gitignore")
            if data is None:
                copy.unlink(missing_ok=True)
                self._copies.pop(prefix, None)
            else:
                copy.write_bytes(data)
                self._copies[prefix] = data

    def _forget(self, folder: str) -> None:
        """Remove a mirror folder (and what is under it) that is no longer a folder in the checkout."""
        shutil.rmtree(self.mirror / folder, ignore_errors=True)
        self._folders = {f for f in self._folders if f != folder and not f.startswith(folder + "/")}
        self._copies = {f: d for f, d in self._copies.items() if f in self._folders}

    def _folder(self, folder: str) -> None:
        if folder in self._folders:
            return
        target = self.mirror / folder
        if target.exists() and not target.is_dir():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        self._folders.add(folder)

    def ignored(self, entries: list[Entry]) -> list[bool]:
        """For each entry, True when the ignore rules exclude it."""
        if not entries:
            return []
        self._materialize(entries[0].path.rpartition("/")[0])
        for entry in entries:
            if entry.kind == "dir":
                self._folder(entry.path)
            elif entry.path in self._folders:  # was a folder in an earlier snapshot, a file now
                self._forget(entry.path)
        proc = self._process()
        assert proc.stdin is not None and proc.stdout is not None
        payload = b"".join(e.path.encode("utf-8", "surrogateescape") + b"\0" for e in entries)
        writer = threading.Thread(target=_write_all, args=(proc, payload), daemon=True)
        writer.start()
        fields = _read_fields(proc, 4 * len(entries))
        writer.join()
        answers = []
        for index in range(len(entries)):
            pattern = fields[4 * index + 2]
            answers.append(bool(pattern) and not pattern.startswith(b"!"))
        return answers

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            env = git_env(self.host.env({"GIT_WORK_TREE": str(self.mirror), "GIT_FLUSH": "1"}))
            self._proc = subprocess.Popen(
                ["git", "check-ignore", "--stdin", "-z", "-v", "-n", "--no-index"],
                cwd=self.mirror,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._proc

    def close(self) -> None:
        """Stop the git process (the mirror stays for the next snapshot)."""
        self.root = None
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None


def _write_all(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.write(payload)


def _read_fields(proc: subprocess.Popen[bytes], count: int) -> list[bytes]:
    assert proc.stdout is not None
    chunks: list[bytes] = []
    found = 0
    while found < count:  # count each chunk once: a folder of a million names stays linear
        chunk = proc.stdout.read(65536)
        if not chunk:
            raise WorkspaceError("git check-ignore stopped answering")
        chunks.append(chunk)
        found += chunk.count(b"\0")
    return b"".join(chunks).split(b"\0")[:count]


class Snapshotter:
    """Takes snapshots of one checkout into one host git directory, caching file hashes by stat data."""

    def __init__(self, host: HostGit, checkout: Path, tracked: Tree, known: set[str]) -> None:
        self.host = host
        self.checkout = checkout
        self.known = known
        self._cache: dict[str, tuple[_StatKey, str, str]] = {}
        self._by_inode: dict[_StatKey, tuple[str, str]] = {}
        """The same cache by stat data alone: hard links to one file are read once, not once a name."""
        self._rules = IgnoreRules(host, host.gitdir / "ignore-mirror")
        self.set_tracked(tracked)

    def set_tracked(self, tracked: Tree) -> None:
        """Paths always included (those of the starting snapshot), and the folders holding them."""
        self.tracked = tracked
        self.tracked_dirs = {
            path.rsplit("/", depth)[0] for path in tracked for depth in range(1, path.count("/") + 1)
        }
        self.known.update(sha for mode, sha in tracked.values() if mode != MODE_GITLINK)

    def forget_objects(self) -> None:
        """After a prune: object ids and stat data cached from earlier snapshots may name objects
        that are gone, so only the starting snapshot's stay known and files are read again."""
        self.known.clear()
        self.known.update(sha for mode, sha in self.tracked.values() if mode != MODE_GITLINK)
        self._cache.clear()
        self._by_inode.clear()

    def take(self) -> Snapshot:
        """Read the checkout as it is now and write its tree (blocking: run it in a thread)."""
        try:
            root = CheckoutRoot(self.checkout)
        except UnsafePath as exc:
            raise WorkspaceError(str(exc)) from None
        rules = self._rules
        try:
            rules.open(root)
            snapshot = self._scan(root, rules)
        except UnsafePath as exc:
            raise WorkspaceError(f"the checkout cannot be read: {exc}") from None
        finally:
            rules.close()
            root.close()
        snapshot.tree = self.host.write_tree(snapshot.entries, self.known)
        return snapshot

    def _scan(self, root: CheckoutRoot, rules: IgnoreRules) -> Snapshot:
        snapshot = Snapshot(tree="", entries={})

        def descend(folder: str) -> bool:
            if self.tracked.get(folder, ("", ""))[0] == MODE_GITLINK:
                return False
            rules.enter(folder)
            return True

        def keep(found: list[Entry]) -> list[bool]:
            answers: list[bool | None] = []
            ask: list[Entry] = []
            for entry in found:
                if entry.kind == "other":
                    answers.append(False)
                elif entry.path in self.tracked or entry.path in self.tracked_dirs:
                    answers.append(True)
                else:
                    answers.append(None)
                    ask.append(entry)
            verdicts = iter(rules.ignored(ask))
            return [answer if answer is not None else not next(verdicts) for answer in answers]

        seen: set[str] = set()
        path_bytes = 0
        for entry in root.scan(descend, keep):
            path_bytes += len(entry.path)
            if len(seen) >= MAX_ENTRIES or path_bytes > MAX_PATH_BYTES:
                raise WorkspaceError(
                    f"the checkout holds more than {MAX_ENTRIES} files or too long paths: not snapshotted"
                )
            seen.add(entry.path)
            self._add(root, entry, snapshot)
        for stale in set(self._cache) - seen:
            del self._cache[stale]
        self._by_inode = {key: (mode, sha) for key, mode, sha in self._cache.values()}
        return snapshot

    def _add(self, root: CheckoutRoot, entry: Entry, snapshot: Snapshot) -> None:
        path = entry.path
        if entry.kind == "dir":
            if self.tracked.get(path, ("", ""))[0] == MODE_GITLINK:
                snapshot.entries[path] = self.tracked[path]
            return
        try:
            if entry.kind == "symlink":
                target = os.fsencode(root.read_link(path))[:MAX_LINK_BYTES]
                snapshot.entries[path] = (MODE_LINK, self.host.write_object("blob", target, self.known))
            else:
                snapshot.entries[path] = self._file(root, entry)
        except (UnsafePath, OSError) as exc:
            log.warning("left %s out of the snapshot: %s", path, exc)
            snapshot.skipped.append(path)

    def _file(self, root: CheckoutRoot, entry: Entry) -> tuple[str, str]:
        st = entry.st
        key: _StatKey = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev, st.st_mode)
        cached = self._cache.get(entry.path)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        linked = self._by_inode.get(key)
        if linked is not None:
            self._cache[entry.path] = (key, *linked)
            return linked
        if st.st_size > MAX_FILE_BYTES:
            raise UnsafePath(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        fd = root.open_regular(entry.path, st)
        try:
            data = read_bounded(fd, MAX_FILE_BYTES, entry.path)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        mode = MODE_EXEC if st.st_mode & 0o100 else MODE_FILE
        sha = self.host.write_object("blob", data, self.known)
        if (after.st_mtime_ns, after.st_ctime_ns, after.st_size) == key[:3]:
            self._cache[entry.path] = (key, mode, sha)
            self._by_inode[key] = (mode, sha)
        return mode, sha
