"""The shell scripts a container backend (Docker, Kubernetes) runs around each command: the wrapper
that runs it and cleans up after it, the killer a timeout or an interrupt runs, the OOM probe."""

from __future__ import annotations

COMMAND_WRAPPER = (
    'trap : TERM; kill -KILL -1 2>/dev/null; { echo $$ > "$1"; } 2>/dev/null; cd "$2" || exit 1; '
    'shift 2; "$@"; rc=$?; kill -KILL -1 2>/dev/null; n=0; while [ $n -lt 400 ]; do left=; '
    'for p in /proc/[0-9]*; do [ "$p" != /proc/$$ ] && [ -O "$p" ] && left=1 && break; done; '
    '[ -z "$left" ] && break; n=$((n+1)); done; exit $rc'
)
"""Kills what an earlier command left, records its pid (docker makes each exec its own session and
group leader: pgid = pid), enters the working directory (a plain shell error if it is missing) and
runs the command as its child. When the command returns, or a TERM from the host ended it,
`kill -KILL -1` ends every process of the uid it left (backgrounded or escaped with setsid), then
the wrapper waits (bounded, with builtins only) until they are reaped so their pids are free for
the next command, and exits with the command's status."""
KILLER = (
    'read p < "$0" 2>/dev/null && kill -TERM -$p 2>/dev/null && { i=0; '
    'while kill -0 -$p 2>/dev/null && [ $i -lt "$1" ]; do sleep 0.05; i=$((i+1)); done; }; '
    "kill -KILL -1 2>/dev/null; exit 0"
)
"""Run as the command's uid: TERM to the command's group, a short grace, then KILL to all of the uid."""
KILLED_BY_CLEANUP = 137
"""The killer's exit status when the wrapper's own cleanup ended it first (the command is gone then)."""
OOM_PROBE = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
"""Run as the keeper: the cgroup's memory events (v2) or OOM control (v1), to tell an OOM kill from ours."""
