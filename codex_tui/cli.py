"""The `codex-tui` command: the TUI, `exec`, `tasks` and `sandbox` subcommands.

Expected failures (bad config, bad flags, no Docker, unknown task) print one line
`codex-tui: <message>` on stderr and exit non-zero; none prints a traceback. Text that may come from
a task (titles, messages, transcripts, paths) is printed through `_say`, without control sequences.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codex_tui import __version__
from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import APPROVAL_POLICIES, BACKENDS, Config, ConfigError, load_config
from codex_tui.protocol import SANDBOX_MODES

if TYPE_CHECKING:
    from codex_tui.exec import StopSignals
    from codex_tui.tasks.store import TaskRecord

EXIT_CONFIG = 2
SUBCOMMANDS = ("exec", "review", "tasks", "sandbox")
T = TypeVar("T")


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


def tui_parser() -> argparse.ArgumentParser:
    """`codex-tui [PROMPT] [options]`."""
    parser = argparse.ArgumentParser(
        prog="codex-tui",
        description="Run coding agents in parallel, each in its own sandbox. "
        "Subcommands: exec, review, tasks, sandbox (see `codex-tui SUBCOMMAND --help`).",
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
        "--keep", type=int, default=1, metavar="N", help="prune: setup images kept per repository (default 1)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="prune: show what would be removed, remove nothing"
    )
    _common(parser, run_options=False)
    return parser


# --- entry point -------------------------------------------------------------------------------


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
        return cmd_tui(tui_parser().parse_args(args))
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_CONFIG
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except OSError as exc:  # e.g. the data folder is not writable
        where = f" ({exc.filename})" if exc.filename else ""
        _error(f"{exc.strerror or exc}{where}")
        return 1
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    sys.stderr.write(f"codex-tui: {strip_controls(message)}\n")


def _say(text: str) -> None:
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


# --- TUI ---------------------------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace) -> int:
    """Open the terminal UI."""
    cfg = resolve_config(args)
    repo = resolve_repo(args)
    try:
        from codex_tui.tui.app import run_app
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


# --- tasks -------------------------------------------------------------------------------------


def cmd_tasks(args: argparse.Namespace) -> int:
    """`tasks list|show|resume|apply|undo|prune`."""
    cfg = resolve_config(args)
    handlers: dict[str, Callable[[Config, argparse.Namespace], int]] = {
        "list": tasks_list,
        "show": tasks_show,
        "resume": tasks_resume,
        "apply": tasks_apply,
        "undo": tasks_undo,
        "prune": tasks_prune,
    }
    return handlers[args.action](cfg, args)


def _load_records(cfg: Config) -> list[Any]:
    from codex_tui.tasks.store import RolloutStore

    return sorted(RolloutStore(cfg.data_dir).read_records().values(), key=lambda r: r.created)


def _find_record(cfg: Config, task_id: str, attempt: int | None = None) -> Any:
    records = _load_records(cfg)
    if attempt is not None:
        matches = [r for r in records if (r.group_id == task_id or r.id == task_id) and r.attempt == attempt]
        group = next((r.group_id for r in records if r.id == task_id), task_id)
        matches = matches or [r for r in records if r.group_id == group and r.attempt == attempt]
    else:
        matches = [r for r in records if r.id == task_id]
        matches = matches or [r for r in records if r.id.startswith(task_id)]
    if len(matches) != 1:
        what = "no task" if not matches else "several tasks"
        raise CliError(f"{what} matching '{task_id}'" + (f" attempt {attempt}" if attempt else ""))
    return matches[0]


def tasks_list(cfg: Config, args: argparse.Namespace) -> int:
    """Print one line per task."""
    records = [r for r in _load_records(cfg) if args.all or not r.archived]
    if not records:
        print("no tasks yet")
        return 0
    now = time.time()
    for r in records:
        _settle_orphan(r)
        status = r.status + (f" ({r.message})" if r.message and r.status == "failed" else "")
        attempt = f" [{r.attempt}/{r.attempts}]" if r.attempts > 1 else ""
        _say(
            f"{r.id}  {status:<28} +{r.added} −{r.removed}  {_tokens(r.tokens):>6}  "
            f"{_age(now - r.updated):>4}  {r.title}{attempt}"
        )
    return 0


def _settle_orphan(record: TaskRecord) -> None:
    """A task left "running" by a process that is gone is shown as the next start will record it."""
    from codex_tui.tasks.manager import ACTIVE_STATUSES, owned_by_other_process
    from codex_tui.tasks.task import APP_STOPPED

    if record.status in ACTIVE_STATUSES and not owned_by_other_process(record):
        record.status, record.message = "failed", APP_STOPPED


def _tokens(count: int) -> str:
    return f"{count / 1000:.1f}k" if count >= 1000 else str(count)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def tasks_show(cfg: Config, args: argparse.Namespace) -> int:
    """Print a task's conversation, commands and diff summary, streamed from its rollout."""
    from codex_tui.tasks.store import RolloutStore, iter_rollout

    record = _find_record(cfg, args.id)
    _settle_orphan(record)
    store = RolloutStore(cfg.data_dir)
    if args.pr:
        from codex_tui.tasks.prtext import PrText, make_pr_text, reviews_for

        if record.pr.get("title"):
            pr = PrText.from_dict(record.pr)
        else:
            pr = run(make_pr_text(store, record, None, reviews_for(record.id, _load_records(cfg))))
        _say(f"{pr.title}\n\n{pr.body.rstrip()}")
        return 0
    why = f" ({record.message})" if record.message else ""
    _say(f"{record.id} · {record.title} · {record.status}{why}")
    attempt = f"attempt {record.attempt}/{record.attempts}"
    _say(f"repo {record.repo} · model {record.model} · mode {record.mode} · {attempt}")
    for line in transcript_lines(iter_rollout(store.rollout_path(record.id))):
        _say(line)
    return 0


def transcript_lines(events: Iterable[Any]) -> Iterator[str]:
    """The conversation as text lines: user messages, agent messages, commands, edits, the diff.

    Lines are yielded as soon as they are final (a command's line waits for its completion), so a
    rollout of any length is read once, line by line; an event written twice is shown once.
    """
    from codex_tui import protocol as p

    lines: list[str] = []
    commands: dict[str, int] = {}  # line of each started command; its completion replaces it
    last_diff: dict[str, Any] | None = None
    top = 0
    for event in events:
        if event.type == p.OUTPUT_DELTA:
            continue  # output is not part of the transcript (and a held tail comes late)
        if event.seq <= top:
            continue
        top = event.seq
        data = event.data
        item = data.get("item") or {}
        if event.type == p.ITEM_STARTED and item.get("type") == p.ITEM_COMMAND:
            commands[str(item.get("id"))] = len(lines)
            lines.append(f"  ▶ {item.get('command')} · did not finish")
        elif event.type == p.USER_MESSAGE:
            lines.append(f"\n› {data.get('text', '')}")
        elif (
            event.type == p.ITEM_COMPLETED
            and item.get("type") == p.ITEM_AGENT_MESSAGE
            and not item.get("discarded")
        ):
            lines.append(f"\n{item.get('text', '')}")
        elif event.type == p.ITEM_COMPLETED and item.get("type") == p.ITEM_COMMAND:
            text = f"  ▶ {item.get('command')} · {_command_outcome(item)}"
            at = commands.pop(str(item.get("id")), None)
            if at is None:
                lines.append(text)
            else:
                lines[at] = text
        elif event.type == p.ITEM_COMPLETED and item.get("type") == p.ITEM_FILE_CHANGE:
            lines += [f"  ✎ {c.get('kind')} {c.get('path')}" for c in item.get("changes") or []]
        elif event.type in (p.ERROR, p.NOTE):
            lines.append(f"  ! {data.get('message', '')}")
        elif event.type == p.DIFF_UPDATED:
            last_diff = data
        if not commands:
            yield from lines
            lines.clear()
    yield from lines
    if last_diff is not None:
        yield f"\ndiff: +{last_diff.get('added', 0)} −{last_diff.get('removed', 0)}"
        for f in last_diff.get("files") or []:
            yield f"  {f.get('status', '?'):<9} {f.get('path')} +{f.get('added', 0)} −{f.get('removed', 0)}"


def _command_outcome(item: dict[str, Any]) -> str:
    """`exit 0`, `declined` or `interrupted` for a completed command item."""
    if item.get("status") == "declined":
        return "declined"
    if item.get("exit_code") is None:
        return str(item.get("note") or item.get("status") or "failed")
    return f"exit {item.get('exit_code')}"


def _manager_call(
    cfg: Config,
    args: argparse.Namespace,
    work: Callable[[Any], Awaitable[int]],
    stop: StopSignals | None = None,
) -> int:
    """Start a TaskManager on the data dir, run `work(manager)`, close it.

    With `stop`, SIGTERM or SIGHUP interrupt `work`; the manager still closes (sandboxes removed,
    tasks left resumable) and the exit code is 128 + N.
    """
    from codex_tui.tasks.manager import TaskManager

    async def go() -> int:
        repo = args.cd.expanduser().resolve() if args.cd else Path.cwd()
        manager = TaskManager(
            cfg,
            repo=repo,
            sandbox_backend=getattr(args, "sandbox_backend", None),
            approval_policy=getattr(args, "approval", None),
        )
        await manager.start()
        try:
            return await work(manager)
        finally:
            await manager.close()

    if stop is None:
        return run(go())
    from codex_tui.exec import run_stoppable

    return run_until_stopped(run_stoppable(go(), stop))


def tasks_resume(cfg: Config, args: argparse.Namespace) -> int:
    """Send a follow-up (or 'continue') to a stored task and run it to the end.

    Approval requests are asked on the terminal (y / a / n), or denied when stdin is not one.
    """
    from codex_tui import protocol as p
    from codex_tui.exec import Approver, FinalMessages, HumanPrinter, JsonPrinter, StopSignals

    record = _find_record(cfg, args.id)
    stop = StopSignals()

    async def work(manager: Any) -> int:
        finals = FinalMessages()
        human = HumanPrinter(sys.stderr, 1)
        manager.subscribe(finals, replay=False)
        manager.subscribe(JsonPrinter(sys.stdout, 1) if args.json else human, replay=False)
        manager.subscribe(Approver(manager, human.line, sys.stdin.isatty()), replay=False)
        result = await manager.submit(p.Op(p.OP_USER_MESSAGE, record.id, {"text": args.prompt or ""}))
        if not result.ok:
            raise CliError(result.message)
        try:
            status = await manager.wait_for(record.id)
        except asyncio.CancelledError:  # Ctrl+C, SIGTERM: the task stays resumable
            _error(f"stopped{stop.why()}; continue with `codex-tui tasks resume {record.id}`")
            raise
        if not args.json and finals.by_task.get(record.id):
            _say(finals.by_task[record.id])
        return 0 if status == "ready" else 1

    return _manager_call(cfg, args, work, stop)


def tasks_apply(cfg: Config, args: argparse.Namespace) -> int:
    """Apply a task's changes to the user's tree, or commit them to a branch."""
    from codex_tui import protocol as p

    record = _find_record(cfg, args.id, args.attempt)

    async def work(manager: Any) -> int:
        data = {"branch": args.branch or args.pr, "dry_run": args.dry_run, "pr": args.pr}
        result = await manager.submit(p.Op(p.OP_APPLY, record.id, data))
        _say(result.message or ("ok" if result.ok else "failed"))
        for key in ("applied", "conflicts", "skipped"):
            for path in result.data.get(key) or []:
                _say(f"  {key[:-1] if key.endswith('s') else key}: {path}")
        if result.data.get("pr_url"):
            _say(f"pull request: {result.data['pr_url']}")
        return 0 if result.ok else 1

    return _manager_call(cfg, args, work)


def tasks_undo(cfg: Config, args: argparse.Namespace) -> int:
    """Undo a task's last turn (files and conversation)."""
    from codex_tui import protocol as p

    record = _find_record(cfg, args.id)

    async def work(manager: Any) -> int:
        result = await manager.submit(p.Op(p.OP_UNDO, record.id))
        _say(result.message)
        return 0 if result.ok else 1

    return _manager_call(cfg, args, work)


def tasks_prune(cfg: Config, args: argparse.Namespace) -> int:
    """Remove the checkouts (and containers) of finished tasks; rollouts stay browsable."""
    from codex_tui.tasks.manager import TaskManager

    async def go() -> int:
        manager = TaskManager(cfg, repo=Path.cwd(), sandbox_backend="local")
        await manager.start()
        try:
            report = await manager.prune(older_than_s=args.older_than_days * 86400)
        finally:
            await manager.close()
        print(f"removed {report['checkouts']} checkout(s), {report['containers']} container(s)")
        return 0

    return run(go())


# --- sandbox -----------------------------------------------------------------------------------


def cmd_sandbox(args: argparse.Namespace) -> int:
    """`sandbox build|status`: the default Docker image; `sandbox prune`: old setup images."""
    cfg = resolve_config(args)
    from codex_tui.sandbox.base import SandboxError
    from codex_tui.sandbox.image import (
        build_default_image,
        ensure_default_image,
        image_status,
        prune_env_images,
    )

    try:
        if args.action == "prune":
            report = run(prune_env_images(args.keep, dry_run=args.dry_run))
            print("\n".join(report.lines()))
            return 1 if report.failed else 0
        if args.action == "status":
            status = run(image_status(cfg.sandbox_image))
            print(status.summary())
            return 0 if status.current else 1
        builder = ensure_default_image if args.if_missing else build_default_image
        run(builder(cfg.sandbox_image, _print_chunk))
        return 0
    except SandboxError as exc:
        raise CliError(f"sandbox {args.action}: {exc}") from None


def _print_chunk(stream: str, data: bytes) -> None:
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.buffer.write(data)
    target.flush()
