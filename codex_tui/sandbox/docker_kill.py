"""Ending a command's processes from the host, when the engine shares this machine's pid space."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path


def group_in_container(pgid: int, container_id: str) -> bool:
    """Is process group `pgid` (a host pid) made of this container's processes?

    True only when the engine shares this machine's pid space. The group's leader may already be
    gone while its children run on, so any member found in /proc will do.
    """
    if not container_id:
        return False
    if _in_cgroup_of(pgid, container_id):
        return True
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _pgrp_of(entry) == pgid:
            return _in_cgroup_of(int(entry.name), container_id)
    return False


def _pgrp_of(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def _in_cgroup_of(pid: int, container_id: str) -> bool:
    try:
        return container_id in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def kill_uid_in_container(container_id: str, uid: int, passes: int = 20) -> None:
    """SIGKILL every process of `uid` in the container, by pidfd (no pid-reuse race), until none is left."""
    if not container_id:
        return
    for _ in range(passes):
        if not _kill_uid_pass(container_id, uid):
            return


def _kill_uid_pass(container_id: str, uid: int) -> int:
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fd = os.pidfd_open(int(entry.name))
        except OSError:
            continue
        try:
            if _uid_of(entry) == uid and _in_cgroup_of(int(entry.name), container_id):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                killed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return killed


def _uid_of(proc_dir: Path) -> int:
    """The process's real uid; -1 when it is gone or a zombie (dead already, its parent reaps it)."""
    try:
        fields = dict(line.split(":", 1) for line in (proc_dir / "status").read_text().splitlines())
        if fields.get("State", "").strip().startswith("Z"):
            return -1
        return int(fields["Uid"].split()[0])
    except (OSError, KeyError, IndexError, ValueError):
        return -1


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def wait_group_gone(pgid: int, limit_s: float) -> None:
    """Until every process of the group is reaped (zombies still hold pids against the limit)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        await asyncio.sleep(0.02)
