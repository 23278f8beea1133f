"""Starting the TUI: the task manager, the demo's repository and scripted model, the app, and
what is said on the terminal after it closed."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp


def run_app(
    config: Config,
    repo: Path,
    *,
    demo: bool = False,
    initial_prompt: str | None = None,
    sandbox_backend: str | None = None,
) -> int:
    """Run the TUI until the user quits; returns the exit code."""
    from codex_tui.tasks.manager import TaskManager

    ops: list[p.Op] = []
    state_home = config.home
    prepared = None
    if demo:
        from codex_tui.demo import DemoError, prepare_demo

        try:
            prepared = prepare_demo(config)
        except DemoError as exc:
            print(f"codex-tui: {exc}")
            return 1
        config, repo = prepared.config, prepared.repo
        ops += [p.Op(p.OP_SUBMIT, "", dict(data)) for data in prepared.submissions]
    if initial_prompt:
        ops.append(p.Op(p.OP_SUBMIT, "", {"prompt": initial_prompt}))
    try:
        manager = TaskManager(config, repo=repo, sandbox_backend=sandbox_backend)
        app = CodexApp(config, manager, repo=repo, initial_ops=ops, state_home=state_home)
        result = app.run()
    finally:
        if prepared is not None:
            prepared.close()
    if app.stopped_by is not None:
        with contextlib.suppress(OSError):  # after a hangup the terminal is gone (EIO)
            sys.stderr.write(
                f"codex-tui: stopped by {app.stopped_by.name}; its tasks were stopped and can be resumed "
                "(codex-tui tasks list)\n"
            )
    return int(result or 0)
