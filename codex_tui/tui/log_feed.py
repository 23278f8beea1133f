"""Feeding the task model's log ops into a SandboxLog: one append per run of one stream."""

from __future__ import annotations

from typing import Any

from codex_tui.tui.widgets.sandbox_log import SandboxLog


def feed_log(log: SandboxLog, ops: list[tuple[Any, ...]]) -> None:
    """Replay model log ops (begin/out/end/net) into the SandboxLog, coalescing consecutive output."""
    pending: tuple[str, str] | None = None
    buffer: list[str] = []

    def flush() -> None:
        nonlocal pending
        if pending is not None and buffer:
            log.append_output(pending[0], pending[1], "".join(buffer))  # type: ignore[arg-type]
        buffer.clear()
        pending = None

    for op in ops:
        if op[0] == "out":
            key = (op[1], op[2])
            if key != pending:
                flush()
                pending = key
            buffer.append(op[3])
            continue
        flush()
        if op[0] == "begin":
            log.begin_command(op[1], op[2])
        elif op[0] == "end":
            log.end_command(op[1], op[2], op[3], op[4] or "")
        elif op[0] == "net":
            log.append_network(op[2], op[3])
    flush()
