"""Reading and writing a task's checkout from the host without trusting anything in it.

The sandbox can write the checkout while the host works on it: swap a folder for a symbolic link
between a check and a use, plant a FIFO where a file was, hard-link or rename things. So nothing
here checks a path and then uses it by name. A :class:`CheckoutRoot` holds a file descriptor of
the checkout's top folder; every operation walks the relative path one component at a time with
``openat(O_NOFOLLOW | O_DIRECTORY)`` from that descriptor, opens files with ``O_NOFOLLOW |
O_NONBLOCK`` and checks what it got with ``fstat`` (regular files only, bounded sizes), and writes
by creating a fresh file beside the target and renaming it over the name (never writing through an
existing file or link). A folder the sandbox renames away stays beneath the root (renames cannot
leave a mount), so a descriptor, once held, can only ever point inside the checkout.

Calls block (file I/O): callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from codex_tui.boundary.identity import needs_chown, sandbox_ids

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH: Final = 200
MAX_FOLDER_NAMES: Final = 1_000_000
MAX_FOLDER_PATH_BYTES: Final = 256 * 1024 * 1024
"""A scanned folder's listing is held whole: past these many names, or this many bytes of their full
paths (deep folders make every path long), the scan stops with UnsafePath instead of filling memory."""
READ_CHUNK: Final = 1 << 20

EntryKind = Literal["file", "symlink", "dir", "other"]


class UnsafePath(Exception):
    """A path that cannot be used safely: it escapes the root, or something unexpected is in the way."""


def split_relative(path: str) -> list[str]:
    """The components of a relative path that stays beneath its root; raises UnsafePath otherwise.

    No absolute paths, no `..` that climbs out, no NUL, and never a `.git` component (any case):
    the host never reads or writes a checkout's git folder through these functions.
    """
    if not path or "\0" in path:
        raise UnsafePath(f"invalid path {path!r}")
    if path.startswith("/"):
        raise UnsafePath(f"{path}: absolute paths are not allowed")
    normal = posixpath.normpath(path)
    if normal == "..":
        raise UnsafePath(f"{path}: leaves the workspace")
    if normal.startswith("../"):
        raise UnsafePath(f"{path}: leaves the workspace")
    parts = [part for part in normal.split("/") if part not in ("", ".")]
    if not parts:
        raise UnsafePath(f"{path}: names the workspace itself, not a file in it")
    if any(part.lower() == ".git" for part in parts):
        raise UnsafePath(f"{path}: files under .git are not touched")
    return parts


def kind_of(mode: int) -> EntryKind:
    """What an lstat mode describes, in the few kinds the host cares about."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "other"


@dataclass(slots=True, frozen=True)
class Entry:
    """One name found by :meth:`CheckoutRoot.scan`, with its lstat data."""

    path: str
    kind: EntryKind
    st: os.stat_result


KeepFn = Callable[[list[Entry]], list[bool]]


class CheckoutRoot:
    """An open handle on a checkout's top folder; all paths given to it are relative to that folder."""

    split = staticmethod(split_relative)
    """How a path given to this root is checked and cut into components (a subclass may allow more)."""

    def __init__(self, path: Path) -> None:
        try:
            self.fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise UnsafePath(f"cannot open the checkout {path}: {exc.strerror}") from None
        self.path = path
        self._owner = sandbox_ids() if needs_chown() else None

    def close(self) -> None:
        """Release the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> CheckoutRoot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- folders --------------------------------------------------------------------------------

    def _open_dir(self, parts: list[str], *, create: bool = False, replace: bool = False) -> int:
        """A new descriptor of the folder `parts` beneath the root (the caller closes it).

        With `create`, missing folders are made; with `replace` too, a file or link standing where a
        folder is needed is removed first (restoring a checkpoint puts a folder back over a link).
        """
        if len(parts) > MAX_DEPTH:
            raise UnsafePath(f"{'/'.join(parts)}: nested too deeply")
        fd = os.dup(self.fd)
        try:
            for index, name in enumerate(parts):
                fd = self._step(fd, name, parts[: index + 1], create, replace)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, parent: int, name: str, shown: list[str], create: bool, replace: bool) -> int:
        """Open `name` in `parent` as a folder and close `parent`; on error `parent` stays open."""
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            child = self._make_dir(parent, name)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            if not replace:
                raise UnsafePath(f"{'/'.join(shown)} is not a folder ({_lstat_kind(parent, name)})") from None
            os.unlink(name, dir_fd=parent)
            child = self._make_dir(parent, name)
        os.close(parent)
        return child

    def _make_dir(self, parent: int, name: str) -> int:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
            if self._owner is not None:
                os.chown(name, *self._owner, dir_fd=parent, follow_symlinks=False)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)

    @contextlib.contextmanager
    def parent_of(
        self, path: str, *, create: bool = False, replace: bool = False
    ) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding `path`, the last component) for the duration of a block."""
        parts = self.split(path)
        fd = self._open_dir(parts[:-1], create=create, replace=replace)
        try:
            yield fd, parts[-1]
        finally:
            os.close(fd)

    # --- reading --------------------------------------------------------------------------------

    def lstat(self, path: str) -> os.stat_result | None:
        """lstat of `path` (None when it or a folder on the way is missing; UnsafePath for a link)."""
        try:
            with self.parent_of(path) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def read_file(self, path: str, max_bytes: int, *, truncate: bool = False) -> bytes:
        """The bytes of the regular file at `path`; UnsafePath for anything else or anything larger
        (with `truncate`, a larger file gives its first `max_bytes` bytes instead)."""
        with self.parent_of(path) as (fd, name):
            return read_regular(fd, name, max_bytes, shown=path, truncate=truncate)

    def read_link(self, path: str) -> str:
        """The text of the symbolic link at `path` (never followed)."""
        with self.parent_of(path) as (fd, name):
            try:
                return os.readlink(name, dir_fd=fd)
            except OSError as exc:
                raise UnsafePath(f"{path} is not a symbolic link") from exc

    # --- writing --------------------------------------------------------------------------------

    def write_file(
        self, path: str, data: bytes, *, executable: bool | None = None, replace: bool = False
    ) -> None:
        """Replace whatever is at `path` with a regular file holding `data` (atomic rename).

        Missing folders are created (with `replace`, over a file, link or FIFO in the way).
        `executable` None keeps the old file's permission bits.
        """

        def fill(out: int) -> None:
            with os.fdopen(out, "wb", closefd=False) as handle:
                handle.write(data)

        self.write_new_file(path, fill, lambda fd, name: _new_mode(fd, name, executable), replace=replace)

    def write_new_file(
        self,
        path: str,
        fill: Callable[[int], None],
        mode: Callable[[int, str], int],
        *,
        replace: bool = False,
    ) -> None:
        """Replace whatever is at `path` with a fresh regular file: created `O_EXCL` beside it,
        filled by `fill(descriptor)`, given `mode(folder descriptor, name)` and the sandbox's
        owner, then renamed over `path` (never written through an existing file or link)."""
        with self.parent_of(path, create=True, replace=replace) as (fd, name):
            file_mode = mode(fd, name)
            tmp = f".codex-tui-{secrets.token_hex(6)}.tmp"
            out = os.open(tmp, _NEW_FILE_FLAGS, 0o600, dir_fd=fd)
            try:
                fill(out)
                os.fchmod(out, file_mode)
                if self._owner is not None:
                    os.fchown(out, *self._owner)
            except BaseException:
                os.close(out)
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise
            os.close(out)
            self._rename_over(fd, tmp, name, path)

    def write_symlink(self, path: str, target: str, *, replace: bool = False) -> None:
        """Replace whatever is at `path` with a symbolic link to `target` (which is never followed)."""
        with self.parent_of(path, create=True, replace=replace) as (fd, name):
            tmp = f".codex-tui-{secrets.token_hex(6)}.tmp"
            os.symlink(target, tmp, dir_fd=fd)
            if self._owner is not None:
                os.chown(tmp, *self._owner, dir_fd=fd, follow_symlinks=False)
            self._rename_over(fd, tmp, name, path)

    def _rename_over(self, fd: int, tmp: str, name: str, shown: str) -> None:
        try:
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise UnsafePath(f"{shown} is a folder") from None
            raise

    def remove(self, path: str) -> bool:
        """Delete the file or link at `path` (never a folder); False when nothing was there."""
        try:
            with self.parent_of(path) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise UnsafePath(f"{path} is a folder")
                os.unlink(name, dir_fd=fd)
                return True
        except FileNotFoundError:
            return False

    def prune_empty_dirs(self, path: str) -> None:
        """Remove the folders holding `path` that became empty, deepest first (never the root)."""
        parts = self.split(path)[:-1]
        while parts:
            try:
                with self.parent_of("/".join(parts)) as (fd, name):
                    os.rmdir(name, dir_fd=fd)
            except (OSError, UnsafePath):
                return
            parts.pop()

    # --- scanning -------------------------------------------------------------------------------

    def scan(self, descend: Callable[[str], bool], keep: KeepFn) -> Iterator[Entry]:
        """Every file, link and folder beneath the root, breadth first, without following links.

        `.git` names are skipped. `keep(entries)` gets one folder's entries at a time and says which
        are reported (and, for folders, entered); `descend(path)` is asked before a folder's own
        entries are listed, so a caller can load that folder's ignore rules first. Special files
        have the kind "other". A folder is opened (from the root, one component at a time) only when
        its turn comes: one descriptor at a time, however wide the tree.
        """
        pending: list[list[str]] = [[]]
        while pending:
            parts = pending.pop(0)
            try:
                fd = self._open_dir(parts)
            except (OSError, UnsafePath):
                continue
            try:
                yield from self._scan_dir(parts, fd, descend, keep, pending)
            finally:
                os.close(fd)

    def _scan_dir(
        self,
        parts: list[str],
        fd: int,
        descend: Callable[[str], bool],
        keep: KeepFn,
        pending: list[list[str]],
    ) -> Iterator[Entry]:
        prefix = "/".join(parts)
        if prefix and not descend(prefix):
            return
        try:
            names = _list_names(fd, prefix)
        except OSError:
            return
        found: list[Entry] = []
        for name in names:
            if name.lower() == ".git":
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            found.append(Entry(f"{prefix}/{name}" if prefix else name, kind_of(st.st_mode), st))
        for entry, wanted in zip(found, keep(found), strict=True):
            if not wanted:
                continue
            if entry.kind == "dir" and len(parts) < MAX_DEPTH:
                pending.append([*parts, entry.path.rsplit("/", 1)[-1]])
            yield entry

    def open_regular(self, path: str, expected: os.stat_result) -> int:
        """A read descriptor of the regular file at `path`, only if it is still the file `expected`."""
        with self.parent_of(path) as (fd, name):
            out = os.open(name, _READ_FLAGS, dir_fd=fd)
        st = os.fstat(out)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            os.close(out)
            raise UnsafePath(f"{path} changed while it was read")
        return out


def _list_names(fd: int, prefix: str) -> list[str]:
    """The names in the folder `fd` (at `prefix`), sorted; UnsafePath past the listing limits."""
    names: list[str] = []
    total = 0
    with os.scandir(fd) as found:
        for entry in found:
            names.append(entry.name)
            total += len(prefix) + 1 + len(entry.name)
            if len(names) > MAX_FOLDER_NAMES or total > MAX_FOLDER_PATH_BYTES:
                where = prefix or "the checkout's top folder"
                raise UnsafePath(f"{where} holds too many files or too long names to list")
    return sorted(names)


def remove_tree(path: Path) -> None:
    """Delete a folder and everything in it without following links (the sandbox may swap them).

    Folders the sandbox made unwritable are made writable through their own descriptor first.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent = os.open(path.parent, _DIR_FLAGS)
    try:
        _remove_entry(parent, path.name, 0)
    finally:
        os.close(parent)


def _remove_entry(parent: int, name: str, depth: int) -> None:
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(name, dir_fd=parent)
        return
    try:
        os.fchmod(fd, 0o700)
        if depth > MAX_DEPTH * 2:
            raise OSError(errno.ELOOP, "nested too deeply", name)
        for child in os.listdir(fd):
            _remove_entry(fd, child, depth + 1)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def read_regular(dir_fd: int, name: str, max_bytes: int, *, shown: str, truncate: bool = False) -> bytes:
    """Read the regular file `name` in folder `dir_fd` (no links, no FIFOs or devices, bounded)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{shown} is not a regular file ({_describe(st.st_mode)})")
    if st.st_size > max_bytes and not truncate:
        raise UnsafePath(f"{shown} is too large ({st.st_size} bytes; the limit is {max_bytes})")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise UnsafePath(f"cannot open {shown}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{shown} is not a regular file")
        if truncate:
            return os.read(fd, max_bytes)
        return read_bounded(fd, max_bytes, shown)
    finally:
        os.close(fd)


def read_bounded(fd: int, max_bytes: int, shown: str) -> bytes:
    """Everything readable from `fd`, refusing more than `max_bytes` (the file may grow while read)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, min(READ_CHUNK, max_bytes + 1 - total) or 1):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise UnsafePath(f"{shown} is too large (more than {max_bytes} bytes)")
    return b"".join(chunks)


def _new_mode(fd: int, name: str, executable: bool | None) -> int:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        old = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else 0o644
    except FileNotFoundError:
        old = 0o644
    if executable is None:
        return old
    if executable:
        return old | ((old & 0o444) >> 2)
    return old & ~0o111


def _lstat_kind(dir_fd: int, name: str) -> str:
    try:
        return _describe(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return "gone"


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link; links in the workspace are not followed"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"
