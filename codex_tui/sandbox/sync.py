"""Workspace synchronisation as data: a checkout copied into a remote sandbox and changes copied back.

A remote sandbox (a Kubernetes pod) cannot mount the host's checkout, so the checkout travels as tar
streams over exec. Changes are found by comparing manifests, (kind, size, mode, times, inode) per
path: the pod prints one with `find` after each command (`POD_MANIFEST`), the host scans its own
checkout with :func:`scan_host`, and :func:`diff_manifests` says what to copy and what to delete.

THE COPY BACK IS THE SANDBOX BOUNDARY: the manifest and the tar stream come from an untrusted pod.
Nothing here calls ``tarfile.extract*``: :func:`apply_pull` reads each member's header itself and
writes through a :class:`DataRoot` (``boundary.safe_fs``: every folder opened ``O_NOFOLLOW`` from a
descriptor of the checkout, files created ``O_EXCL`` beside the target and renamed over it). It
refuses absolute names, ``..``, names it did not ask for, hard links, FIFOs, devices, pax and sparse
headers and overlong GNU long names (read before anything bounds them: `_GuardedInfo`), and anything
past the size and count limits; symbolic links stay links (their text is data, never followed), and
a link on the way to a member refuses that member. The checkout's own ``.git`` is copied too (git
runs in the pod), but it is only ever data to the host, which keeps its own git directory.

Calls block (file I/O): callers run them in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import tarfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

from codex_tui.boundary.safe_fs import MAX_DEPTH, CheckoutRoot, UnsafePath
from codex_tui.sandbox.base import SandboxError

Kind = Literal["f", "l", "d"]
MAX_ENTRIES: Final = 500_000
"""Paths a workspace may hold (a manifest with more is refused: the host would spend too long on it)."""
DEFAULT_LIMIT_BYTES: Final = 10 << 30
"""The copy-back bound when no disk limit is configured."""
CHUNK: Final = 1 << 20
TAR_OVERHEAD: Final = 64 << 20
"""Headers and padding a copy back's tar may add to the file data it carries."""
POD_MANIFEST: Final = "find . -mindepth 1 -printf '%y %s %m %T@/%C@/%i %P\\0'"
"""Run in the workspace: one NUL-terminated record per path (kind, size, mode, change signature, path)."""
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_SPECIAL_KINDS: Final = {"p": "a FIFO", "s": "a socket", "c": "a device", "b": "a device", "D": "a door"}
LONG_NAME_MAX: Final = 16 << 10
"""The longest GNU long name or link target a copy back's tar may carry (PATH_MAX is 4096 bytes)."""
_LONG_TYPES: Final = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX_TYPES: Final = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class SyncError(Exception):
    """The workspace could not be synchronised at all (not a refused file: those are notes)."""


@dataclass(slots=True, frozen=True)
class Stat:
    """What a manifest knows of one path; two equal Stats mean "unchanged"."""

    kind: Kind
    size: int
    mode: int
    signature: str
    """Times and inode: any write, chmod or replacement changes it."""


Manifest = dict[str, Stat]


@dataclass(slots=True)
class Changes:
    """What to copy (shallow first) and what to delete (deepest first) to follow a new manifest."""

    copy: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.copy or self.delete)


@dataclass(slots=True)
class PullReport:
    """What a copy back did: counts, and one line per refused path (shown to the user)."""

    written: int = 0
    deleted: int = 0
    refused: list[str] = field(default_factory=list)

    def note(self, limit: int = 5) -> str:
        """One line for the command's result ("" when nothing was refused)."""
        if not self.refused:
            return ""
        shown = "; ".join(self.refused[:limit])
        more = f" (and {len(self.refused) - limit} more)" if len(self.refused) > limit else ""
        return f"not copied back from the sandbox: {shown}{more}"


def split_data_path(path: str) -> list[str]:
    """Components of a relative path that stays beneath its root; `.git` is allowed (it is data here).

    Refuses absolute paths, `..` anywhere, empty names and NUL: a manifest or tar member naming one
    is forged (find and tar never print such names for files beneath the workspace).
    """
    if not path or "\0" in path:
        raise UnsafePath(f"invalid path {path!r}")
    if path.startswith("/"):
        raise UnsafePath(f"{path}: absolute paths are not allowed")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts:
        raise UnsafePath(f"{path}: names the workspace itself, not a file in it")
    if ".." in parts:
        raise UnsafePath(f"{path}: leaves the workspace")
    if len(parts) > MAX_DEPTH:
        raise UnsafePath(f"{path}: nested too deeply")
    return parts


def normal(path: str) -> str:
    """The canonical spelling of a data path (raises UnsafePath for one that is not allowed)."""
    return "/".join(split_data_path(path))


class DataRoot(CheckoutRoot):
    """A CheckoutRoot whose paths may go through `.git`: the copy back writes the checkout's git folder
    as plain data (the host never runs git on it); every other safeguard of CheckoutRoot holds."""

    split = staticmethod(split_data_path)

    def __enter__(self) -> DataRoot:
        return self

    def make_dir(self, path: str, mode: int) -> None:
        """Create the folder `path` (and missing parents); a file or link standing there is refused."""
        fd = self._open_dir(self.split(path), create=True)
        try:
            os.fchmod(fd, (mode & 0o777) | 0o700)
        finally:
            os.close(fd)

    def write_stream(self, path: str, source: IO[bytes], size: int, *, executable: bool) -> None:
        """Replace whatever is at `path` with a regular file holding `size` bytes from `source`."""

        def fill(out: int) -> None:
            left = size
            while left > 0:
                chunk = source.read(min(CHUNK, left))
                if not chunk:
                    raise SyncError(f"{path}: the stream ended early")
                os.write(out, chunk)
                left -= len(chunk)

        self.write_new_file(path, fill, lambda _fd, _name: 0o755 if executable else 0o644)

    def delete(self, path: str) -> bool:
        """Delete the file, link or empty folder at `path`; False when it is gone or not empty."""
        try:
            with self.parent_of(path) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(name, dir_fd=fd)
                else:
                    os.unlink(name, dir_fd=fd)
                return True
        except (FileNotFoundError, UnsafePath):
            return False
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.ELOOP):
                return False
            raise


# --- manifests ---------------------------------------------------------------------------------


def parse_pod_manifest(data: bytes, max_entries: int = MAX_ENTRIES) -> tuple[Manifest, list[str]]:
    """The pod's manifest (from `POD_MANIFEST`) and notes for the paths it holds that are never copied."""
    manifest: Manifest = {}
    notes: list[str] = []
    if data.count(b"\0") > max_entries + 1:  # before a split would make millions of objects
        raise SyncError(f"the workspace holds more than {max_entries} paths; it is not copied back")
    records = data.split(b"\0")
    if records and records[-1] == b"":
        records.pop()
    if len(records) > max_entries:
        raise SyncError(f"the workspace holds more than {max_entries} paths; it is not copied back")
    for record in records:
        fields = record.split(b" ", 4)
        if len(fields) != 5:
            raise SyncError("the sandbox sent a malformed file list")
        kind_b, size_b, mode_b, signature_b, path_b = fields
        path = os.fsdecode(path_b)
        try:
            path = normal(path)
            size, mode = int(size_b), int(mode_b, 8)
        except (UnsafePath, ValueError):
            notes.append(f"{_shown(path)}: not a name inside the workspace")
            continue
        kind = kind_b.decode("ascii", "replace")
        if kind in _SPECIAL_KINDS:
            notes.append(f"{_shown(path)}: {_SPECIAL_KINDS[kind]}")
            continue
        if kind not in ("f", "l", "d"):
            notes.append(f"{_shown(path)}: an unknown kind of file")
            continue
        manifest[path] = Stat(kind, size, mode, signature_b.decode("ascii", "replace"))  # type: ignore[arg-type]
    return manifest, notes


def scan_host(root: Path, max_entries: int = MAX_ENTRIES) -> Manifest:
    """The host checkout's manifest, `.git` included; links are listed, never followed, specials skipped.

    Depth first, holding one descriptor per level (never one per folder found: a wide tree would
    exhaust the process's descriptors and folders would be skipped).
    """
    manifest: Manifest = {}
    top = os.open(root, _DIR_FLAGS)
    try:
        _scan_dir("", top, manifest, max_entries)
    finally:
        os.close(top)
    return manifest


def _scan_dir(prefix: str, fd: int, manifest: Manifest, cap: int) -> None:
    folders: list[tuple[str, str]] = []
    for name in os.listdir(fd):
        path = f"{prefix}/{name}" if prefix else name
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        kind = _kind(st.st_mode)
        if kind is None:
            continue
        manifest[path] = Stat(kind, st.st_size if kind != "d" else 0, stat.S_IMODE(st.st_mode), _sig(st))
        if len(manifest) > cap:
            raise SyncError(f"the checkout holds more than {cap} paths")
        if kind == "d" and path.count("/") < MAX_DEPTH:
            folders.append((path, name))
    for path, name in folders:
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError:
            continue
        try:
            _scan_dir(path, child, manifest, cap)
        finally:
            os.close(child)


def _kind(mode: int) -> Kind | None:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISDIR(mode):
        return "d"
    return None


def _sig(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}/{st.st_ctime_ns}/{st.st_ino}"


def diff_manifests(old: Manifest, new: Manifest) -> Changes:
    """Paths new or changed in `new` (folders only when new or of another kind), and paths gone."""
    changes = Changes()
    for path, now in new.items():
        before = old.get(path)
        if before is None or before.kind != now.kind or (now.kind != "d" and before != now):
            changes.copy.append(path)
    for path, before in old.items():
        now_ = new.get(path)
        if now_ is None or now_.kind != before.kind:
            changes.delete.append(path)
    changes.copy.sort(key=lambda p: (p.count("/"), p))
    changes.delete.sort(key=lambda p: (-p.count("/"), p))
    return changes


# --- host -> sandbox ---------------------------------------------------------------------------


def write_tar(
    root: Path, paths: Iterable[str], out: IO[bytes], *, prefix: str = "", owner: tuple[int, int] = (0, 0)
) -> int:
    """Write a tar of `paths` (relative to `root`, read without following links) to `out`; its size.

    Used for the host's own checkout and object folders; a path that vanished is left out. Members
    belong to `owner` (uid, gid): what an extraction as root (Docker's put_archive) gives them.
    """
    start = out.tell()
    with DataRoot(root) as data, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            with contextlib.suppress(FileNotFoundError, UnsafePath, NotADirectoryError):
                _add_member(data, tar, path, prefix, owner)
    return out.tell() - start


def _add_member(data: DataRoot, tar: tarfile.TarFile, path: str, prefix: str, owner: tuple[int, int]) -> None:
    with data.parent_of(path) as (fd, name):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        info = tarfile.TarInfo(prefix + path)
        info.uid, info.gid = owner
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=fd)
            tar.addfile(info)
        elif stat.S_ISREG(st.st_mode):
            src = os.open(name, _READ_FLAGS, dir_fd=fd)
            try:
                info.size = os.fstat(src).st_size
                with os.fdopen(src, "rb", closefd=False) as handle:
                    tar.addfile(info, _Exactly(handle, info.size))
            finally:
                os.close(src)


class _Exactly:
    """A reader that yields exactly `size` bytes (zero-padded if the file shrank while read)."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._left = size

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes of the promised size."""
        want = self._left if n < 0 else min(n, self._left)
        chunk = self._handle.read(want)
        chunk += b"\0" * (want - len(chunk))
        self._left -= want
        return chunk


def all_paths(manifest: Manifest) -> list[str]:
    """Every path of a manifest, parents before children."""
    return sorted(manifest, key=lambda p: (p.count("/"), p))


# --- sandbox -> host (the boundary) --------------------------------------------------------------


@dataclass(slots=True)
class PullLimits:
    """Bounds on one copy back: bytes of file data and number of members."""

    max_bytes: int = DEFAULT_LIMIT_BYTES
    max_members: int = MAX_ENTRIES


def apply_pull(
    root: Path,
    changes: Changes,
    manifest: Manifest,
    stream: IO[bytes] | None,
    limits: PullLimits,
) -> PullReport:
    """Make the host checkout follow the pod: delete what is gone, create folders, then write the
    tar `stream`'s members (only those in `changes.copy`). Never raises for a refused member."""
    report = PullReport()
    wanted = {p for p in changes.copy if manifest[p].kind != "d"}
    with DataRoot(root) as data:
        for path in changes.delete:
            if data.delete(path):
                report.deleted += 1
        for path in changes.copy:
            if manifest[path].kind == "d":
                try:
                    data.make_dir(path, manifest[path].mode)
                except (UnsafePath, OSError) as exc:
                    report.refused.append(f"{_shown(path)}: {_reason(exc)}")
        if stream is not None and wanted:
            _apply_members(data, stream, wanted, limits, report)
    return report


def drop_oversized(changes: Changes, manifest: Manifest, max_bytes: int) -> list[str]:
    """Leave out of `changes.copy` the files whose data would take a copy back past `max_bytes`
    (by the sandbox's manifest); one refusal line per file left out."""
    total = 0
    kept: list[str] = []
    refused: list[str] = []
    for path in changes.copy:
        size = manifest[path].size if manifest[path].kind == "f" else 0
        if total + size > max_bytes:
            refused.append(f"{_shown(path)}: past the workspace size limit ({max_bytes >> 20} MB)")
            continue
        total += size
        kept.append(path)
    changes.copy = kept
    return refused


@dataclass(slots=True)
class SyncState:
    """Both sides at the last synchronisation, and the special files already reported."""

    box: Manifest = field(default_factory=dict)
    """The sandbox's workspace manifest."""
    host: Manifest = field(default_factory=dict)
    """The host checkout's manifest."""
    noted: set[str] = field(default_factory=set)


Runner = Callable[..., Awaitable[Any]]
"""Runs a blocking call off the event loop (the backend's thread pool)."""
ListBox = Callable[[], Awaitable[bytes]]
"""Returns the sandbox's manifest (the output of `POD_MANIFEST` in its workspace)."""
FetchTar = Callable[[list[str], int], Awaitable[tuple[IO[bytes], bool]]]
"""fetch(paths, max_bytes) -> (a tar of those paths from the sandbox, True when it was cut at max_bytes)."""


async def pull_changes(
    state: SyncState, root: Path, limits: PullLimits, list_box: ListBox, fetch: FetchTar, run: Runner
) -> str:
    """Copy what changed in the sandbox since the last sync back to the host checkout `root`
    (through `apply_pull`: the boundary); returns a note of what was refused ("" when nothing)."""
    try:
        new, specials = parse_pod_manifest(await list_box())
    except SyncError as exc:
        return f"the workspace was not copied back: {exc}"
    fresh = [n for n in specials if n not in state.noted]
    state.noted.update(fresh)
    changes = diff_manifests(state.box, new)
    refused = [f"{n} (special files are never copied)" for n in fresh]
    refused += drop_oversized(changes, new, limits.max_bytes)
    files = [p for p in changes.copy if new[p].kind != "d"]
    stream: IO[bytes] | None = None
    if files:
        stream, overflow = await fetch(files, limits.max_bytes + TAR_OVERHEAD + 1536 * len(files))
        if overflow:
            refused.append("the copy back stream went past the size limit; it was cut")
    try:
        report = await run(apply_pull, root, changes, new, stream, limits)
    except SyncError as exc:
        raise SandboxError(f"copying the workspace back failed: {exc}") from None
    finally:
        if stream is not None:
            stream.close()
    state.box = new
    state.host = await run(scan_host, root)
    report.refused[:0] = refused
    return str(report.note())


def _apply_members(
    data: DataRoot, stream: IO[bytes], wanted: set[str], limits: PullLimits, report: PullReport
) -> None:
    total = 0
    members = 0
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedInfo)  # noqa: SIM115
    except tarfile.TarError as exc:
        report.refused.append(f"the copy back was not a tar stream ({_printable(str(exc))})")
        return
    with tar:
        try:
            while (member := tar.next()) is not None:
                # A stream's headers are not kept (only the stream's size bounds their count).
                tar.members.clear()  # type: ignore[attr-defined]
                members += 1
                if members > limits.max_members:
                    report.refused.append(f"more than {limits.max_members} files; the rest was left")
                    return
                refusal = _refusal(member, wanted)
                if refusal:
                    report.refused.append(f"{_shown(member.name)}: {refusal}")
                    continue
                path = normal(member.name)
                wanted.discard(path)
                if member.isfile():
                    total += member.size
                    if total > limits.max_bytes:
                        report.refused.append(
                            f"{_shown(path)}: past the workspace size limit ({limits.max_bytes >> 20} MB); "
                            "it and the rest were left"
                        )
                        return
                _write_member(data, tar, member, path, report)
        except (tarfile.TarError, ValueError) as exc:
            report.refused.append(f"the copy back stream is broken ({_printable(str(exc))})")


def _refusal(member: tarfile.TarInfo, wanted: set[str]) -> str:
    """Why a member is not written ("" when it may be)."""
    try:
        path = normal(member.name)
    except UnsafePath as exc:
        return _printable(str(exc).split(": ", 1)[-1])
    if member.islnk():
        return "a hard link"
    if member.size < 0 or "\0" in member.linkname:
        return "a malformed tar header"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    if not (member.isfile() or member.issym() or member.isdir()):
        return "a special file"
    if path not in wanted:
        return "not a file the sandbox listed as changed"
    return ""


class _RefusedHeader(tarfile.TarError):
    """A header of the copy back's tar that is refused before its data is read."""


class _GuardedInfo(tarfile.TarInfo):
    """A tar header from the sandbox. tarfile reads a pax header, a GNU long name or a sparse map
    whole into memory, parses pax headers in quadratic time (CPython < 3.11.10), and nests a call
    per chained extension header (RecursionError): all refused here before their data is read.
    The copy back's tar is made with `--format=gnu`, which needs none of them but long names."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _PAX_TYPES:
            raise _RefusedHeader("pax extended headers are not accepted (the tar is --format=gnu)")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _RefusedHeader("sparse members are not accepted")
        chained = getattr(tarfile_, "_codex_long_names", 0) + 1 if self.type in _LONG_TYPES else 0
        tarfile_._codex_long_names = chained  # type: ignore[attr-defined]
        if chained and (self.size > LONG_NAME_MAX or chained > len(_LONG_TYPES)):
            raise _RefusedHeader("a GNU long name header that is too long or repeated")
        return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]


def _write_member(
    data: DataRoot, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, report: PullReport
) -> None:
    try:
        if member.issym():
            data.write_symlink(path, member.linkname)
        elif member.isdir():
            data.make_dir(path, member.mode)
        else:
            source = tar.extractfile(member)
            assert source is not None
            data.write_stream(path, source, member.size, executable=bool(member.mode & 0o111))
        report.written += 1
    except (UnsafePath, OSError, SyncError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise SyncError(f"the host checkout is full while copying {_shown(path)} back") from None
        report.refused.append(f"{_shown(path)}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """Why a path was refused, printable (an UnsafePath message may quote a name from the sandbox)."""
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "a symbolic link is on the way (links are not followed)"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    text = str(exc)
    return _printable(text.split(": ", 1)[-1] if ": " in text else text)


def _printable(text: str) -> str:
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _shown(path: str) -> str:
    """A path for a message: printable, bounded (the terminal layer strips controls later)."""
    text = _printable(path)
    return text if len(text) <= 120 else text[:117] + "…"


def nul_list(paths: Iterable[str]) -> bytes:
    """Paths as the NUL-separated list `tar -T - --null` and `xargs -0` read."""
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def parent_folders(paths: Iterable[str]) -> list[str]:
    """Every folder above the given paths, parents first (to recreate them in order)."""
    folders: set[str] = set()
    for path in paths:
        head = posixpath.dirname(path)
        while head:
            folders.add(head)
            head = posixpath.dirname(head)
    return sorted(folders, key=lambda p: (p.count("/"), p))
