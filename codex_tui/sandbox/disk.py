"""A task checkout's disk limit (`sandbox.disk_mb`): its own small filesystem, else a watchdog.

**Mounted** (root, with loop devices): a sparse ext4 image in a host-private folder (never inside
a checkout, so never mounted into a sandbox), loop-mounted at the checkout with `nosuid,nodev`.
Writes past the limit fail inside the sandbox with ENOSPC, and the host pays only for the blocks
actually written. A sandbox sees files, never the image's blocks, so the filesystem the host
kernel mounts (and `e2fsck` checks on reattach) is one only the kernel wrote.

**Watched** (mounting impossible: not root, no loop devices): `over_limit` measures the checkout
(rate-limited) and the host's free space; the task calls it after each command and, through
`watch`, while one runs, and fails with its message before the host disk fills.

Everything blocking runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from codex_tui.sandbox.base import SandboxError

IMAGE_SUFFIX = ".disk.ext4"
RECORD_SUFFIX = ".disk.json"
MOUNT_OPTIONS = "loop,nosuid,nodev,noinit_itable"
"""noinit_itable: the kernel never zeroes the lazily initialised inode tables (sparse stays sparse)."""
HOST_RESERVE_MB = 1024
"""Watched checkouts: the task fails when the host disk holding them has less than this left."""
MEASURE_INTERVAL_S = 2.0
_TOOL_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
_TOOL_TIMEOUT_S = 60


class DiskError(SandboxError):
    """A checkout's disk could not be made, mounted or released."""


@dataclass(slots=True)
class DiskQuota:
    """How one checkout's size is limited: its own filesystem (`image`), watched, or not at all."""

    checkout: Path
    size_mb: int
    """The limit in MB; 0 means no limit."""
    image: Path | None = None
    """The filesystem image mounted at the checkout; None when watched or unlimited."""
    note: str = ""
    """Why the checkout is watched rather than mounted."""
    measure_every_s: float = MEASURE_INTERVAL_S
    """Watched: the least time between two walks of the checkout (a walk of a huge tree costs)."""
    _used_bytes: int = field(default=0, repr=False)
    _measured_at: float = field(default=-1e9, repr=False)
    _measure_cost_s: float = field(default=0.0, repr=False)

    @property
    def mounted(self) -> bool:
        """The checkout is its own size-limited filesystem: writes past the limit fail with ENOSPC."""
        return self.image is not None

    @property
    def watched(self) -> bool:
        """The limit is enforced by `over_limit` measuring the checkout."""
        return self.size_mb > 0 and self.image is None

    def describe(self) -> str:
        """One line for the user: the limit and how it holds."""
        if self.size_mb <= 0:
            return "disk: no limit (sandbox.disk_mb = 0)"
        if self.mounted:
            return f"disk: {self.size_mb} MB, its own filesystem (writes past it fail), nosuid,nodev"
        reason = f" ({self.note})" if self.note else ""
        return f"disk: {self.size_mb} MB, watched: the task stops when its checkout grows past it{reason}"


async def provision(
    checkout: Path, state_dir: Path, size_mb: int, *, owner: tuple[int, int] | None = None
) -> DiskQuota:
    """Give an empty (or absent) checkout folder its size limit; the caller fills the folder after.

    The new filesystem's root folder belongs to `owner` (default: this process's uid and gid, so
    host-side git may fill it; the workspace hands it to the sandbox's uid afterwards).
    """
    ids = owner or (os.getuid(), os.getgid())
    return await asyncio.to_thread(_provision, checkout, state_dir, size_mb, ids)


async def reattach(checkout: Path, state_dir: Path, size_mb: int) -> DiskQuota:
    """The quota of an existing checkout, mounting its image again if needed (after a reboot)."""
    return await asyncio.to_thread(_reattach, checkout, state_dir, size_mb)


async def release(checkout: Path, state_dir: Path) -> None:
    """Unmount the checkout's filesystem and delete its image: the checkout's files are gone after."""
    await asyncio.to_thread(_release, checkout, state_dir)


async def detach(checkout: Path, state_dir: Path) -> None:
    """Unmount the checkout's filesystem but keep its image (and files): `reattach` brings it back."""
    await asyncio.to_thread(_detach, checkout, state_dir)


async def sweep(root: Path, keep: Collection[Path] | None = None) -> list[Path]:
    """Release images under `root` (and its sub-folders) whose checkout is gone or not in `keep`."""
    return await asyncio.to_thread(_sweep, root, keep)


async def over_limit(quota: DiskQuota) -> str:
    """Why a checkout must stop (past its limit, host disk nearly full); "" while it is fine.

    A checkout with its own filesystem is only checked for the host's free space: its image is
    sparse, so a limit larger than the free space could still fill the host disk.
    """
    if not (quota.watched or quota.mounted):
        return ""
    return await asyncio.to_thread(_check_watched, quota)


async def watch(quota: DiskQuota, interval_s: float = MEASURE_INTERVAL_S) -> str:
    """Return `over_limit`'s message once the limit is passed; never returns for unlimited quotas."""
    if not (quota.watched or quota.mounted):
        await asyncio.Event().wait()
    while not (message := await over_limit(quota)):
        await asyncio.sleep(interval_s)
    return message


# --- provisioning ----------------------------------------------------------------------------


def _provision(checkout: Path, state_dir: Path, size_mb: int, owner: tuple[int, int]) -> DiskQuota:
    checkout = checkout.resolve()
    _check_state_dir(checkout, state_dir)
    checkout.mkdir(parents=True, exist_ok=True)
    if any(checkout.iterdir()):
        raise DiskError(f"cannot give {checkout} its disk limit: the folder is not empty")
    if size_mb <= 0:
        return DiskQuota(checkout, 0)
    if mount_blocker := _mount_blocker():
        return DiskQuota(checkout, size_mb, note=mount_blocker)
    image, record = _paths(checkout, state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    _unmount_if_ours(checkout, image)
    image.unlink(missing_ok=True)
    try:
        _make_filesystem(image, size_mb, owner)
        _mount(image, checkout)
    except DiskError as exc:
        image.unlink(missing_ok=True)
        return DiskQuota(checkout, size_mb, note=f"no own filesystem: {exc}")
    with contextlib.suppress(FileNotFoundError):
        (checkout / "lost+found").rmdir()
    _write_record(record, checkout, size_mb)
    return DiskQuota(checkout, size_mb, image)


def _mount_blocker() -> str:
    """Why this process cannot make and mount a filesystem image; "" when it can."""
    if os.geteuid() != 0:
        return "mounting needs root"
    missing = [tool for tool in ("mkfs.ext4", "mount", "umount") if _tool(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    return ""


def _check_state_dir(checkout: Path, state_dir: Path) -> None:
    if state_dir.resolve().is_relative_to(checkout):
        raise DiskError(f"the disk image folder {state_dir} must not be inside the checkout {checkout}")


def _paths(checkout: Path, state_dir: Path) -> tuple[Path, Path]:
    """The image and its record for a checkout: named after it, with a hash of its full path."""
    digest = hashlib.sha256(str(checkout).encode()).hexdigest()[:12]
    stem = f"{checkout.name[:40]}-{digest}"
    return state_dir / f"{stem}{IMAGE_SUFFIX}", state_dir / f"{stem}{RECORD_SUFFIX}"


def _make_filesystem(image: Path, size_mb: int, owner: tuple[int, int]) -> None:
    """A sparse file with an ext4 filesystem, its root folder owned by `owner`."""
    fd = os.open(image, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.ftruncate(fd, size_mb * 1024 * 1024)
    finally:
        os.close(fd)
    uid, gid = owner
    extended = f"lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner={uid}:{gid}"
    # -m 0: no blocks reserved for root; a 4 MB journal keeps the checkout consistent after a crash.
    _run_tool(["mkfs.ext4", "-q", "-F", "-m", "0", "-J", "size=4", "-E", extended, str(image)])


def _mount(image: Path, checkout: Path) -> None:
    _run_tool(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(checkout)])


def _write_record(record: Path, checkout: Path, size_mb: int) -> None:
    partial = record.with_name(record.name + ".partial")
    partial.write_text(json.dumps({"checkout": str(checkout), "size_mb": size_mb}) + "\n")
    partial.replace(record)


# --- reattach, release, sweep ------------------------------------------------------------------


def _reattach(checkout: Path, state_dir: Path, size_mb: int) -> DiskQuota:
    checkout = checkout.resolve()
    image, record = _paths(checkout, state_dir)
    if not image.exists():
        if size_mb <= 0:
            return DiskQuota(checkout, 0)
        return DiskQuota(checkout, size_mb, note="the checkout was made without its own filesystem")
    recorded = _read_record(record).get("size_mb")
    limit = recorded if isinstance(recorded, int) and recorded > 0 else size_mb
    if _mounted_image(checkout) == image.resolve():
        return DiskQuota(checkout, limit, image)
    if os.path.ismount(checkout):
        raise DiskError(f"{checkout} is a mount point of something else than its disk image {image}")
    checkout.mkdir(parents=True, exist_ok=True)
    if any(checkout.iterdir()):
        raise DiskError(f"cannot mount the disk image {image} at {checkout}: the folder is not empty")
    if reason := _mount_blocker():
        raise DiskError(f"the checkout {checkout} lives in the disk image {image}: {reason} to mount it")
    _repair(image)
    _mount(image, checkout)
    return DiskQuota(checkout, limit, image)


def _repair(image: Path) -> None:
    """Replay the journal / fix a filesystem left unclean by a crash (quick when it is clean)."""
    code, output = _run_tool_code(["e2fsck", "-p", str(image)])
    if code >= 4:
        raise DiskError(f"the disk image {image} is damaged (e2fsck exit {code}): {output.strip()}")


def _release(checkout: Path, state_dir: Path) -> None:
    checkout = checkout.resolve()
    image, record = _paths(checkout, state_dir)
    _unmount_if_ours(checkout, image)
    image.unlink(missing_ok=True)
    record.unlink(missing_ok=True)


def _detach(checkout: Path, state_dir: Path) -> None:
    checkout = checkout.resolve()
    image, _record = _paths(checkout, state_dir)
    _unmount_if_ours(checkout, image)


def _unmount_if_ours(checkout: Path, image: Path) -> None:
    if image.exists() and _mounted_image(checkout) == image.resolve():
        code, output = _run_tool_code(["umount", str(checkout)])
        if code != 0:  # busy (a process still in it): detach now, freed when the last user goes
            code, output = _run_tool_code(["umount", "--lazy", str(checkout)])
        if code != 0:
            raise DiskError(f"cannot unmount {checkout}: {output.strip()}")


def _sweep(root: Path, keep: Collection[Path] | None) -> list[Path]:
    kept = {Path(path).resolve() for path in keep} if keep is not None else None
    released: list[Path] = []
    for record in [*root.glob(f"*{RECORD_SUFFIX}"), *root.glob(f"*/*{RECORD_SUFFIX}")]:
        data = _read_record(record)
        checkout = Path(str(data.get("checkout", "")))
        if not data or (checkout.exists() and (kept is None or checkout in kept)):
            continue
        image = record.with_name(record.name.removesuffix(RECORD_SUFFIX) + IMAGE_SUFFIX)
        _unmount_if_ours(checkout, image)
        image.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        released.append(checkout)
    return released


def _read_record(record: Path) -> dict[str, object]:
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _mounted_image(checkout: Path) -> Path | None:
    """The image file behind the loop device mounted at `checkout` (last mount wins), if any."""
    device = ""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(" - ", 1)
        mount_point = _unescape(fields[0].split()[4])
        if mount_point == str(checkout) and len(fields) == 2:
            device = fields[1].split()[1]
    if not device.startswith("/dev/loop"):
        return None
    backing = Path("/sys/block") / Path(device).name / "loop" / "backing_file"
    try:
        return Path(backing.read_text().strip()).resolve()
    except OSError:
        return None


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    for code in ("040", "011", "012", "134"):
        text = text.replace(f"\\{code}", chr(int(code, 8)))
    return text


# --- the watchdog ------------------------------------------------------------------------------


def _host_reserve_problem(folder: Path) -> str:
    """The host disk holding `folder` is nearly full ("" while it is not)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if free >= HOST_RESERVE_MB * 1024 * 1024:
        return ""
    return (
        f"the host disk holding {folder} has {free // (1024 * 1024)} MB left "
        f"(less than {HOST_RESERVE_MB} MB): the task was stopped before the disk fills"
    )


def _check_watched(quota: DiskQuota) -> str:
    if quota.image is not None:  # sparse: the limit holds inside, but the host may have less room
        return _host_reserve_problem(quota.image.parent)
    if problem := _host_reserve_problem(quota.checkout):
        return problem
    now = time.monotonic()
    if now - quota._measured_at >= max(quota.measure_every_s, 10 * quota._measure_cost_s):
        quota._used_bytes = usage_bytes(quota.checkout)
        quota._measure_cost_s = time.monotonic() - now
        quota._measured_at = time.monotonic()
    used_mb = quota._used_bytes // (1024 * 1024)
    if used_mb <= quota.size_mb:
        return ""
    return (
        f"disk limit exceeded: the task's checkout holds {used_mb} MB, more than its "
        f"{quota.size_mb} MB (sandbox.disk_mb); the task was stopped to protect the host disk"
    )


_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
OPEN_FOLDERS_MAX = 64
"""Folders `usage_bytes` holds open at once, however deep the tree (the deepest ones)."""


def usage_bytes(root: Path, *, max_entries: int | None = None) -> int:
    """Bytes allocated under `root` on its filesystem: no link followed, hard links counted once.

    Every folder is opened from its parent's descriptor (`O_NOFOLLOW`, never by path: no length
    limit, no link on the way) and listed only if it still is the folder its parent listed (device,
    inode); back up, a folder whose descriptor was let go is reopened as `..` of its child and
    checked the same way. With `max_entries`, the walk stops after that many entries (the total so
    far: a lower bound).
    """
    try:
        fd = os.open(root, _DIR_OPEN)
    except OSError:
        return 0
    top = os.fstat(fd)
    walk = _UsageWalk(top.st_dev, max_entries if max_entries is not None else float("inf"))
    try:
        walk.run(fd, top.st_ino)
    finally:
        walk.close()
    return walk.total


@dataclass(slots=True)
class _Folder:
    """A folder being walked: its descriptor (None once let go), inode and subfolders not yet entered."""

    fd: int | None
    inode: int
    subfolders: list[tuple[str, int]]


@dataclass(slots=True)
class _UsageWalk:
    """One depth-first walk of `usage_bytes`: the folders entered, the bytes and entries so far."""

    device: int
    limit: float
    total: int = 0
    entries: int = 0
    seen: set[int] = field(default_factory=set)
    stack: list[_Folder] = field(default_factory=list)
    open_count: int = 0
    """The folders of `stack` holding a descriptor: always its deepest ones."""

    def run(self, fd: int, inode: int) -> None:
        """Walk from the folder `fd` (the walk takes it) until done or past the entry limit."""
        if not self._enter(fd, inode):
            return
        while self.stack:
            here = self.stack[-1]
            if not here.subfolders or here.fd is None:
                self._leave()
                continue
            name, inode = here.subfolders.pop()
            try:
                child = os.open(name, _DIR_OPEN, dir_fd=here.fd)
            except OSError:
                continue
            if not self._enter(child, inode):
                return

    def _enter(self, fd: int, inode: int) -> bool:
        """List the folder `fd` if it still is `inode` (the stack takes `fd`); False past the limit."""
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (self.device, inode):
            os.close(fd)
            return True
        folder = _Folder(fd, inode, [])
        self.stack.append(folder)
        self.open_count += 1
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    self.entries += 1
                    if self.entries > self.limit:
                        return False
                    with contextlib.suppress(OSError):
                        self._count(entry.name, entry.stat(follow_symlinks=False), folder)
        except OSError:
            folder.subfolders.clear()
        while self.open_count > OPEN_FOLDERS_MAX:
            shallow = self.stack[len(self.stack) - self.open_count]
            if shallow.fd is not None:
                os.close(shallow.fd)
                shallow.fd = None
            self.open_count -= 1
        return True

    def _count(self, name: str, info: os.stat_result, folder: _Folder) -> None:
        if info.st_dev != self.device:
            return
        if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
            if info.st_ino in self.seen:
                return
            self.seen.add(info.st_ino)
        self.total += info.st_blocks * 512
        if stat.S_ISDIR(info.st_mode):
            folder.subfolders.append((name, info.st_ino))

    def _leave(self) -> None:
        """Pop the deepest folder; its parent, if let go, is reopened as its `..` (and checked)."""
        done = self.stack.pop()
        if done.fd is None:
            return
        parent = self.stack[-1] if self.stack else None
        try:
            if parent is not None and parent.fd is None:
                up = os.open("..", _DIR_OPEN, dir_fd=done.fd)
                st = os.fstat(up)
                if (st.st_dev, st.st_ino) == (self.device, parent.inode):
                    parent.fd = up
                    self.open_count += 1
                else:  # moved meanwhile: the rest of that folder is not measured
                    os.close(up)
        except OSError:
            pass
        finally:
            os.close(done.fd)
            self.open_count -= 1

    def close(self) -> None:
        """Release the descriptors still held."""
        for folder in self.stack:
            if folder.fd is not None:
                os.close(folder.fd)
        self.stack.clear()


# --- running the tools -------------------------------------------------------------------------


def _tool(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{_TOOL_PATH}")


def _run_tool(argv: list[str]) -> None:
    code, output = _run_tool_code(argv)
    if code != 0:
        raise DiskError(f"{argv[0]} failed (exit {code}): {output.strip() or 'no message'}")


def _run_tool_code(argv: list[str]) -> tuple[int, str]:
    path = _tool(argv[0])
    if path is None:
        raise DiskError(f"{argv[0]} is not installed")
    try:
        done = subprocess.run(
            [path, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=_TOOL_TIMEOUT_S,
            env={"PATH": _TOOL_PATH, "LANG": "C"},
        )
    except subprocess.TimeoutExpired:
        return errno.ETIMEDOUT, f"{argv[0]} did not finish in {_TOOL_TIMEOUT_S} s"
    except OSError as exc:
        return 127, f"{argv[0]}: {exc.strerror or exc}"
    return done.returncode, (done.stderr or done.stdout)
