"""The `codex-tui` command: the TUI, `exec`, `tasks` and `sandbox` subcommands.

Expected failures (bad config, bad flags, no Docker, unknown task) print one line
`codex-tui: <message>` on stderr and exit non-zero; none prints a traceback. Text that may come from
a task (titles, messages, transcripts, paths) is printed through `cli_common.say`, without control
sequences.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui import __version__
from codex_tui.cli_common import (
    EXIT_CONFIG,
    CliError,
    report_error,
    resolve_config,
    resolve_repo,
    run,
    run_until_stopped,
)
from codex_tui.cli_mcp import cmd_mcp, mcp_parser
from codex_tui.cli_tasks import cmd_tasks
from codex_tui.config import APPROVAL_POLICIES, BACKENDS, ConfigError
from codex_tui.protocol import SANDBOX_MODES

if TYPE_CHECKING:
    pass

SUBCOMMANDS = ("exec", "review", "tasks", "sandbox", "mcp", "serve")


# --- parsers -----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, run_options: bool = True) -> None:
    parser.add_argument("-C", "--cd", dest="cd", type=Path, help="the repository to work on (default: .)")
    parser.add_argument("--profile", help="a [profiles.NAME] table of config.toml")
    parser.add_argument(
        "-c", "--config", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key (TOML value), e.g. -c model=o3",
    )  # fmt: skip
    if not run_options:
        return
    parser.add_argument("-m", "--model", help="model name")
    parser.add_argument("--sandbox", choices=SANDBOX_MODES, help="sandbox mode")
    parser.add_argument("--sandbox-backend", choices=BACKENDS, help="where commands run")
    parser.add_argument(
        "--approval", choices=APPROVAL_POLICIES, help="when to ask before leaving the sandbox"
    )
    parser.add_argument(
        "--allow-non-git", action="store_true", help="work on a folder that is not a git repository"
    )
    parser.add_argument(
        "--search", action="store_true", help="offer the model the hosted web search (Responses API)"
    )


def tui_parser() -> argparse.ArgumentParser:
    """`codex-tui [PROMPT] [options]`."""
    parser = argparse.ArgumentParser(
        prog="codex-tui",
        description="Run coding agents in parallel, each in its own sandbox. "
        "Subcommands: exec, review, tasks, sandbox, mcp, serve (see `codex-tui SUBCOMMAND --help`).",
    )
    parser.add_argument("prompt", nargs="?", help="start a task with this prompt")
    parser.add_argument(
        "--demo", action="store_true", help="a sample repository and a scripted model (no API key)"
    )
    parser.add_argument("--version", action="version", version=f"codex-tui {__version__}")
    _common(parser)
    return parser


def exec_parser() -> argparse.ArgumentParser:
    """`codex-tui exec [PROMPT | -] [options]`."""
    parser = argparse.ArgumentParser(
        prog="codex-tui exec",
        description="Run a task headless: progress on stderr, the final message on stdout.",
    )
    parser.add_argument("prompt", nargs="?", help="the task; '-' (or nothing, with piped stdin) reads stdin")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (Codex exec --json shape)")
    parser.add_argument(
        "-i", "--image", dest="images", action="append", default=[], help="attach images (a,b)"
    )
    parser.add_argument("--attempts", type=int, default=1, help="run 1-4 attempts of the same prompt")
    parser.add_argument(
        "-o", "--output-last-message", dest="last_message", type=Path, help="write it here too"
    )
    parser.add_argument("--demo", action="store_true", help="the sample repository and scripted model")
    parser.add_argument(
        "--ask", action="store_true", help="Ask mode: answer a question about the repository (read-only)"
    )
    parser.add_argument(
        "--network", choices=("off", "limited", "on"),
        help="the agent's internet: off, limited (allowlist, through the egress proxy) or on",
    )  # fmt: skip
    parser.add_argument(
        "--allow-domain", dest="allowed_domains", action="append", default=[], metavar="DOMAIN",
        help="with --network limited: also allow DOMAIN (name, *.suffix, IP, :port, @registries)",
    )  # fmt: skip
    _common(parser)
    return parser


def review_parser(prog: str) -> argparse.ArgumentParser:
    """`codex-tui review` / `codex-tui exec review [TARGET] [PROMPT] [options]`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Review a change in a read-only sandbox: findings by priority and a verdict. "
        "The exit code is 0 whatever the verdict (see --fail-on).",
    )
    parser.add_argument("prompt", nargs="?", help="custom review instructions ('-' reads stdin)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--uncommitted", action="store_true", help="your staged, unstaged and untracked changes (default)"
    )
    target.add_argument(
        "--base", metavar="BRANCH", help="the current branch against its merge base with BRANCH"
    )
    target.add_argument("--commit", metavar="SHA", help="the changes one commit introduced")
    target.add_argument(
        "--task",
        metavar="ID",
        action="append",
        help="a task's result before it is applied (repeat for several)",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (Codex exec --json shape)")
    parser.add_argument(
        "-o", "--output-last-message", dest="last_message", type=Path, help="write it here too"
    )
    parser.add_argument(
        "--fail-on",
        metavar="P0-P3",
        type=_priority,
        help="exit 1 when a finding at this priority or above exists",
    )
    _common(parser)
    return parser


def _priority(text: str) -> int:
    value = text.strip().upper().removeprefix("P")
    if value not in ("0", "1", "2", "3"):
        raise argparse.ArgumentTypeError(f"expected P0, P1, P2 or P3, not {text!r}")
    return int(value)


def tasks_parser() -> argparse.ArgumentParser:
    """`codex-tui tasks list|show|resume|apply|undo|prune`."""
    parser = argparse.ArgumentParser(prog="codex-tui tasks", description="Browse and manage stored tasks.")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list tasks")
    listing.add_argument("--all", action="store_true", help="include archived tasks")
    listing.add_argument("--json", action="store_true", help="one JSON object per task (with usage and cost)")
    for name, text in (("show", "show a task's conversation and diff"), ("undo", "undo the last turn")):
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        if name == "show":
            p.add_argument("--pr", action="store_true", help="print the pull-request text of the change")
    resume = sub.add_parser("resume", help="continue a task (a follow-up message, or 'continue')")
    resume.add_argument("id")
    resume.add_argument("prompt", nargs="?")
    resume.add_argument("--json", action="store_true", help="JSON lines on stdout")
    apply = sub.add_parser("apply", help="apply a task's diff to your tree (or commit it to a branch)")
    apply.add_argument("id", help="a task id, or a group id with --attempt")
    apply.add_argument("--attempt", type=int, help="which attempt of the group")
    apply.add_argument(
        "--branch", nargs="?", const=True, default=False, help="commit to codex/<slug> (or NAME)"
    )
    apply.add_argument("--dry-run", action="store_true", help="only report what would happen")
    apply.add_argument(
        "--pr", action="store_true", help="commit to the branch, push it and open a pull request with gh"
    )
    prune = sub.add_parser("prune", help="remove finished tasks' checkouts and containers")
    prune.add_argument("--older-than-days", type=float, default=0.0)
    for p in sub.choices.values():
        _common(p, run_options=p.prog.endswith(("resume", "apply")))
    return parser


def sandbox_parser() -> argparse.ArgumentParser:
    """`codex-tui sandbox build|status|prune`."""
    parser = argparse.ArgumentParser(
        prog="codex-tui sandbox",
        description="The Docker sandbox image (build, status) and cached setup images (prune).",
    )
    parser.add_argument("action", choices=("build", "status", "prune"))
    parser.add_argument("--if-missing", action="store_true", help="build only when missing or stale")
    parser.add_argument(
        "--browser", action="store_true",
        help="build: the variant with Debian's chromium and fonts (codex-tui-sandbox-browser:latest)",
    )  # fmt: skip
    parser.add_argument(
        "--maintenance", action="store_true",
        help="build: bring the repository's (-C) setup image up to date by running its maintenance script",
    )  # fmt: skip
    parser.add_argument(
        "--keep", type=int, default=1, metavar="N", help="prune: setup images kept per repository (default 1)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="prune: show what would be removed, remove nothing"
    )
    _common(parser, run_options=False)
    return parser


# --- entry point -------------------------------------------------------------------------------


def entry() -> None:
    """The console script: run `main`, then leave at once.

    Everything is saved and closed when `main` returns (the manager flushed the rollouts and
    removed the containers), so the interpreter's teardown of every loaded module (~0.2 s with the
    openai and docker packages) is skipped: a headless task ends right after its last event.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in SUBCOMMANDS else "tui"
    if command != "tui":
        args = args[1:]
    try:
        if command == "exec" and args[:1] == ["review"]:
            return cmd_review(review_parser("codex-tui exec review").parse_args(args[1:]))
        if command == "review":
            return cmd_review(review_parser("codex-tui review").parse_args(args))
        if command == "exec":
            return cmd_exec(exec_parser().parse_args(args))
        if command == "tasks":
            return cmd_tasks(tasks_parser().parse_args(args))
        if command == "sandbox":
            return cmd_sandbox(sandbox_parser().parse_args(args))
        if command == "mcp":
            return cmd_mcp(mcp_parser().parse_args(args))
        if command == "serve":
            from codex_tui.cli_serve import cmd_serve

            return cmd_serve(args, tui_parser())
        return cmd_tui(tui_parser().parse_args(args))
    except ConfigError as exc:
        report_error(str(exc))
        return EXIT_CONFIG
    except CliError as exc:
        report_error(str(exc))
        return exc.code
    except OSError as exc:  # e.g. the data folder is not writable
        where = f" ({exc.filename})" if exc.filename else ""
        report_error(f"{exc.strerror or exc}{where}")
        return 1
    except KeyboardInterrupt:
        return 130


# --- TUI ---------------------------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace) -> int:
    """Open the terminal UI."""
    cfg = resolve_config(args)
    repo = resolve_repo(args)
    try:
        from codex_tui.tui.launch import run_app
    except ImportError as exc:
        raise CliError(
            f"the terminal UI is not available ({exc}); `codex-tui exec` runs tasks without it"
        ) from None
    return run_app(
        cfg, repo, demo=args.demo, initial_prompt=args.prompt, sandbox_backend=args.sandbox_backend
    )


# --- exec --------------------------------------------------------------------------------------


def cmd_exec(args: argparse.Namespace) -> int:
    """Run a task headless."""
    from codex_tui.exec import ExecOptions, run_exec

    cfg = resolve_config(args)
    prompt, from_stdin = read_prompt(args.prompt, demo=args.demo)
    if not 1 <= args.attempts <= 4:
        raise CliError("--attempts must be from 1 to 4", EXIT_CONFIG)
    images = [part.strip() for item in args.images for part in item.split(",") if part.strip()]
    options = ExecOptions(
        prompt=prompt,
        images=images,
        attempts=args.attempts,
        json=args.json,
        mode=args.sandbox,
        approval=args.approval,
        backend=args.sandbox_backend,
        last_message_file=args.last_message,
        interactive=not from_stdin and sys.stdin.isatty(),
        kind="ask" if args.ask else "code",
        network=args.network,
        allowed_domains=list(args.allowed_domains),
    )
    if not args.demo:
        repo = resolve_repo(args)
        return run_until_stopped(run_exec(cfg, repo, options))
    from codex_tui.demo import DemoError, prepare_demo

    try:
        demo = prepare_demo(cfg)
    except DemoError as exc:
        raise CliError(str(exc)) from None
    try:
        first = demo.prompts[0]
        if not args.prompt:
            options.prompt, options.title = first.prompt, first.title
        options.models = None if args.model else first.models
        options.model = args.model or first.models[0]
        return run_until_stopped(run_exec(demo.config, demo.repo, options))
    finally:
        demo.close()


def cmd_review(args: argparse.Namespace) -> int:
    """Review a change headless: the findings and verdict on stdout (or JSON lines)."""
    from codex_tui.exec import ExecOptions, run_exec

    cfg = resolve_config(args)
    prompt = sys.stdin.read().strip() if args.prompt == "-" else (args.prompt or "")
    if args.base:
        review: dict[str, Any] = {"target": "base", "base": args.base}
    elif args.commit:
        review = {"target": "commit", "commit": args.commit}
    elif args.task:
        review = {"target": "task", "task_ids": args.task}
    else:
        review = {"target": "uncommitted"}
    options = ExecOptions(
        prompt=prompt,
        json=args.json,
        model=args.model,
        approval=args.approval,
        backend=args.sandbox_backend,
        last_message_file=args.last_message,
        kind="review",
        review=review,
        fail_on=args.fail_on,
    )
    return run_until_stopped(run_exec(cfg, resolve_repo(args), options))


def read_prompt(prompt: str | None, *, demo: bool) -> tuple[str, bool]:
    """The prompt, read from stdin for '-' (or when none is given and stdin is piped)."""
    if prompt and prompt != "-":
        return prompt, False
    if prompt == "-" or (not demo and not sys.stdin.isatty()):
        text = sys.stdin.read().strip()
        if not text:
            raise CliError("no prompt on stdin", EXIT_CONFIG)
        return text, True
    if demo:
        return "", False
    raise CliError("exec needs a prompt (an argument, or '-' to read stdin)", EXIT_CONFIG)


# --- sandbox -----------------------------------------------------------------------------------


def cmd_sandbox(args: argparse.Namespace) -> int:
    """`sandbox build|status`: the default Docker image; `sandbox prune`: old setup images."""
    cfg = resolve_config(args)
    from codex_tui.sandbox.base import SandboxError
    from codex_tui.sandbox.image import BROWSER_IMAGE, build_default_image, ensure_default_image, image_status
    from codex_tui.sandbox.image_prune import prune_env_images

    try:
        if args.action == "prune":
            report = run(prune_env_images(args.keep, dry_run=args.dry_run))
            print("\n".join(report.lines()))
            return 1 if report.failed else 0
        if args.action == "status":
            status = run(image_status(cfg.sandbox_image))
            print(status.summary())
            return 0 if status.current else 1
        if args.maintenance:
            from codex_tui.sandbox.env_build import refresh_environment_image

            print(run(refresh_environment_image(cfg, resolve_repo(args), _print_chunk)))
            return 0
        tag = BROWSER_IMAGE if args.browser else cfg.sandbox_image
        if args.if_missing:
            run(ensure_default_image(tag, _print_chunk, browser=args.browser or None))
        else:
            run(build_default_image(tag, _print_chunk, browser=args.browser or None))
        if args.browser and cfg.sandbox_image != BROWSER_IMAGE:
            print(f'to use it, set in the config: [sandbox] image = "{BROWSER_IMAGE}"')
        return 0
    except SandboxError as exc:
        raise CliError(f"sandbox {args.action}: {exc}") from None


def _print_chunk(stream: str, data: bytes) -> None:
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.buffer.write(data)
    target.flush()
