"""How a task container is hardened beyond the engine's defaults: tmpfs sizes, ulimits, a capped
log, and the users it runs as (never root; the keeper and the commands have different uids)."""

from __future__ import annotations

from docker.types import LogConfig, Ulimit

from codex_tui.boundary.identity import KEEPER_ID, sandbox_ids
from codex_tui.sandbox.base import SandboxError

HOME = "/home/sandbox"
TMP_SIZE_MB = 1024
HOME_SIZE_MB = 256
"""tmpfs pages are also charged to the container's memory limit, so these only cap each folder."""
NOFILE_SOFT = 4096
NOFILE_HARD = 16384
"""Open files: a tool that needs more raises its soft limit up to the hard one itself."""
LOG_MAX = "1m"
"""Container logs (an escalated command's output goes there too) are capped so they cannot fill the host."""

KEEPER_USER = f"{KEEPER_ID}:{KEEPER_ID}"
LIMITS = [
    Ulimit(name="nofile", soft=NOFILE_SOFT, hard=NOFILE_HARD),
    Ulimit(name="core", soft=0, hard=0),  # no core files in the workspace
]
"""No `nproc`: it counts every process of the uid in the host's user namespace (the host user's own
processes, other tasks), so it would fail innocent commands; the cgroup's pids limit bounds a
container's processes instead."""
CAPPED_LOG = LogConfig(type="json-file", config={"max-size": LOG_MAX, "max-file": "1"})


def command_ids(user: str | None) -> tuple[int, int]:
    """(uid, gid) for commands: `sandbox_ids()` by default; never root, never the keeper's uid."""
    if user is None:
        return sandbox_ids()
    uid_text, _, gid_text = user.partition(":")
    gid_text = gid_text or uid_text
    if not (uid_text.isdigit() and gid_text.isdigit()):
        raise SandboxError(f"the sandbox user must be a numeric uid[:gid], not {user!r}")
    uid, gid = int(uid_text), int(gid_text)
    if 0 in (uid, gid) or KEEPER_ID in (uid, gid):
        raise SandboxError(f"the sandbox user may be neither root nor {KEEPER_ID}, not {user!r}")
    return uid, gid
