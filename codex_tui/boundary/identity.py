"""Who a sandbox runs as: never root, also when codex-tui itself runs as root."""

from __future__ import annotations

import os
from typing import Final

UNPRIVILEGED_ID: Final = 10001
"""uid and gid of sandboxed commands when the host user is root (no login, no host files of its own)."""
KEEPER_ID: Final = 65534
"""uid/gid of a container's long-lived main process: not the command uid, so a command's
`kill -KILL -1` ends every process it started without stopping the container."""


def sandbox_ids() -> tuple[int, int]:
    """(uid, gid) that sandboxed commands run as: the host user's own, or an unprivileged pair for root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return UNPRIVILEGED_ID, UNPRIVILEGED_ID
    return uid, gid


def needs_chown() -> bool:
    """True when files the host writes into a checkout must be handed to the sandbox's uid."""
    return os.getuid() == 0
