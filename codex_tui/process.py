"""Is a given process still the one we recorded? Shared by the container sweep and the task manager."""

from __future__ import annotations

import os
from pathlib import Path


def process_start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" when unknown); guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def process_alive(pid: int, start_ticks: str = "") -> bool:
    """True when `pid` runs and, if its start time was recorded, is still that same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start_ticks or process_start_ticks(pid) in ("", start_ticks)
