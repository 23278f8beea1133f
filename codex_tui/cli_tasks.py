"""`codex-tui tasks list|show|resume|apply|undo|prune`: browse and manage stored tasks."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui.cli_common import CliError, report_error, resolve_config, run, run_until_stopped, say
from codex_tui.config import Config
from codex_tui.pricing import Cost, estimate, format_usd

if TYPE_CHECKING:
    from codex_tui.exec import StopSignals
    from codex_tui.tasks.store import TaskRecord


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
    """Print one line per task (or one JSON object per task with `--json`)."""
    records = [r for r in _load_records(cfg) if args.all or not r.archived]
    if args.json:
        return _tasks_list_json(cfg, records)
    if not records:
        print("no tasks yet")
        return 0
    now = time.time()
    for r in records:
        _settle_orphan(r)
        cost = format_usd(_record_cost(cfg, r))
        status = r.status + (f" ({r.message})" if r.message and r.status == "failed" else "")
        attempt = f" [{r.attempt}/{r.attempts}]" if r.attempts > 1 else ""
        say(
            f"{r.id}  {status:<28} +{r.added} −{r.removed}  {_tokens(r.tokens):>6} {cost:>7}  "
            f"{_age(now - r.updated):>4}  {_kind_mark(r)}{r.title}{attempt}{_verdict(r)}"
        )
    return 0


def _tasks_list_json(cfg: Config, records: list[TaskRecord]) -> int:
    """One JSON line per task: its summary, plus `cost_usd` (null: no price) and `priced_as`."""
    from codex_tui.exec_printers import json_line

    for r in records:
        _settle_orphan(r)
        cost = _record_cost(cfg, r)
        row = r.summary() | {
            "cost_usd": round(cost.usd, 6) if cost else None,
            "priced_as": cost.model if cost else None,
        }
        print(json_line(row))
    return 0


def _record_cost(cfg: Config, record: TaskRecord) -> Cost | None:
    """The task's estimated cost; None for a model with no price or a record older than the split."""
    if record.tokens and not (record.input_tokens or record.output_tokens):
        return None
    return estimate(record.model or cfg.model, record, cfg.pricing)


def _kind_mark(record: TaskRecord) -> str:
    """`[ask] ` or `[review] ` before the title of those kinds of task."""
    return f"[{record.kind}] " if record.kind in ("ask", "review") else ""


def _verdict(record: TaskRecord) -> str:
    """` · incorrect, 1 P1, 2 P2` after a finished review's title."""
    from codex_tui.tasks.store import review_counts

    summary = review_counts(record.review)
    if not summary:
        return ""
    if summary["status"] != "completed":
        return " · review unreadable"
    counts = [f"{n} {p}" for p, n in summary["counts"].items() if n]
    verdict = "correct" if summary["verdict"] == "patch is correct" else "incorrect"
    return f" · {verdict}" + (f", {', '.join(counts)}" if counts else ", no findings")


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
        say(f"{pr.title}\n\n{pr.body.rstrip()}")
        return 0
    why = f" ({record.message})" if record.message else ""
    say(f"{record.id} · {record.title} · {record.status}{why}")
    attempt = f"attempt {record.attempt}/{record.attempts}"
    say(f"repo {record.repo} · model {record.model} · mode {record.mode} · {attempt}")
    for line in transcript_lines(iter_rollout(store.rollout_path(record.id))):
        say(line)
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
        elif event.type == p.ITEM_COMPLETED and item.get("type") == p.ITEM_REVIEW:
            from codex_tui.agent.review import format_review

            lines.append("\n" + format_review(item))
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
    from codex_tui.exec import Approver, StopSignals
    from codex_tui.exec_printers import FinalMessages, HumanPrinter, JsonPrinter

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
            report_error(f"stopped{stop.why()}; continue with `codex-tui tasks resume {record.id}`")
            raise
        if not args.json and finals.by_task.get(record.id):
            say(finals.by_task[record.id])
        return 0 if status == "ready" else 1

    return _manager_call(cfg, args, work, stop)


def tasks_apply(cfg: Config, args: argparse.Namespace) -> int:
    """Apply a task's changes to the user's tree, or commit them to a branch."""
    from codex_tui import protocol as p

    record = _find_record(cfg, args.id, args.attempt)

    async def work(manager: Any) -> int:
        data = {"branch": args.branch or args.pr, "dry_run": args.dry_run, "pr": args.pr}
        result = await manager.submit(p.Op(p.OP_APPLY, record.id, data))
        say(result.message or ("ok" if result.ok else "failed"))
        for key in ("applied", "conflicts", "skipped"):
            for path in result.data.get(key) or []:
                say(f"  {key[:-1] if key.endswith('s') else key}: {path}")
        if result.data.get("pr_url"):
            say(f"pull request: {result.data['pr_url']}")
        return 0 if result.ok else 1

    return _manager_call(cfg, args, work)


def tasks_undo(cfg: Config, args: argparse.Namespace) -> int:
    """Undo a task's last turn (files and conversation)."""
    from codex_tui import protocol as p

    record = _find_record(cfg, args.id)

    async def work(manager: Any) -> int:
        result = await manager.submit(p.Op(p.OP_UNDO, record.id))
        say(result.message)
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
