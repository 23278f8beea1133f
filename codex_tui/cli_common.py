"""What every `codex-tui` subcommand shares: one-line errors, printing task text safely, the
config from files + profile + flags, and running a coroutine (128 + N after SIGTERM/SIGHUP)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import Config, load_config

EXIT_CONFIG = 2
T = TypeVar("T")


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def report_error(message: str) -> None:
    """`codex-tui: <message>` on stderr, without control sequences."""
    sys.stderr.write(f"codex-tui: {strip_controls(message)}\n")


def say(text: str) -> None:
    """Print a line that may quote a task, without its terminal control sequences."""
    print(strip_controls(text))


def resolve_config(args: argparse.Namespace) -> Config:
    """Config file + profile + `-c` overrides + flags (flags win)."""
    cfg = load_config(profile=args.profile, overrides=list(args.overrides))
    if getattr(args, "model", None):
        cfg.model = args.model
    if getattr(args, "sandbox", None):
        cfg.sandbox_mode = args.sandbox
    if getattr(args, "sandbox_backend", None):
        cfg.sandbox_backend = args.sandbox_backend
    if getattr(args, "approval", None):
        cfg.approval_policy = args.approval
    if getattr(args, "allow_non_git", False):
        cfg.allow_non_git = True
    if getattr(args, "search", False):
        cfg.web_search = True
    _ = cfg.provider  # an undefined provider is a config error, reported before anything starts
    return cfg


def resolve_repo(args: argparse.Namespace) -> Path:
    """The -C folder (or the current one); it must exist."""
    repo = (args.cd or Path.cwd()).expanduser()
    if not repo.is_dir():
        raise CliError(f"folder not found: {repo}")
    return repo.resolve()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a new event loop."""
    return asyncio.run(coro)


def run_until_stopped(coro: Coroutine[Any, Any, int]) -> int:
    """Run a front end's coroutine; when SIGTERM or SIGHUP stopped it (`Terminated`), exit 128 + N."""
    from codex_tui.exec import Terminated

    try:
        return run(coro)
    except Terminated as exc:
        return exc.exit_code
