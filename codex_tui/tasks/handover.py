"""What a finished task hands over: its change applied or committed to a branch with a PR text
(optionally opened as a pull request), the PR text alone, and single files for a viewer.

Everything read from the checkout goes through safe_fs (the sandbox may have planted links).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Final

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath
from codex_tui.protocol import OpResult
from codex_tui.tasks.kinds import kind_name
from codex_tui.tasks.prtext import PrText, make_pr_text
from codex_tui.tasks.store import TaskRecord
from codex_tui.workspace.git import Workspace
from codex_tui.workspace.publish import publish_pr

if TYPE_CHECKING:
    from codex_tui.tasks.task import Task

VIEW_MAX_BYTES: Final = 2 * 1024 * 1024
"""The most of one file a viewer gets (read_file); the rest is cut with a flag."""


async def apply(
    task: Task,
    branch: bool,
    dry_run: bool,
    branch_name: str | None = None,
    *,
    pr: bool = False,
    reviews: list[TaskRecord] | None = None,
) -> OpResult:
    """Preflight, apply to the user's tree, or commit to the task's branch (with its PR text as
    the commit message; with `pr`, also pushed and opened as a pull request with `gh`)."""
    if task.record.kind != "code":
        return OpResult(False, f"{kind_name(task.record.kind)} has no change to apply")
    workspace = await task.ensure_workspace()
    text: PrText | None = None
    if dry_run:
        report = await workspace.preflight()
    elif branch or pr:
        text = await _pr_text(task, workspace, reviews or [])
        report = await workspace.commit_to_branch(branch_name, text.commit_message())
    else:
        report = await workspace.apply_to_source()
    data = dataclasses.asdict(report)
    message = report.message or ("ok" if report.ok else "apply failed")
    if dry_run:
        return OpResult(report.ok, message, data)
    if not report.ok:
        task.note(message, "error")
        return OpResult(False, message, data)
    if pr and text is not None and report.branch:
        published = await asyncio.to_thread(
            publish_pr, Path(task.record.repo), report.branch, text.title, text.body
        )
        message = f"{message}; {published.message}"
        data["pr_url"] = published.url
        if not published.ok:
            task.note(published.message, "warning")
    task.note(message)
    await task.drop_sandbox()
    task.set_status("applied", message)
    return OpResult(True, message, data)


async def get_pr(task: Task, reviews: list[TaskRecord]) -> OpResult:
    """The PR title and body for the task's change (made now from the latest diff, and saved)."""
    if task.record.kind != "code":
        return OpResult(False, "only a Code task's change gets a pull-request text")
    workspace = await task.ensure_workspace()
    text = await _pr_text(task, workspace, reviews)
    return OpResult(True, text.title, text.to_dict())


async def _pr_text(task: Task, workspace: Workspace, reviews: list[TaskRecord]) -> PrText:
    await task.ctx.store.flush()
    diff = await workspace.diff()
    newest_first = sorted(reviews, key=lambda r: r.updated, reverse=True)
    text = await make_pr_text(task.ctx.store, task.record, diff, newest_first)
    task.record.pr = text.to_dict()
    task.ctx.store.put(task.record, urgent=True)
    return text


async def read_file(task: Task, path: str) -> OpResult:
    """A file of the checkout for a viewer: read without following links, bounded, as text."""
    workspace = await task.ensure_workspace()
    try:
        data = await asyncio.to_thread(_read_checkout_file, workspace.path, path)
    except (UnsafePath, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return OpResult(False, f"cannot read {path}: {reason}")
    binary = b"\0" in data[:8192]
    text = "" if binary else data[:VIEW_MAX_BYTES].decode("utf-8", errors="replace")
    result = {"path": path, "text": text, "truncated": len(data) > VIEW_MAX_BYTES, "binary": binary}
    return OpResult(True, path, result)


def _read_checkout_file(checkout: Path, path: str) -> bytes:
    with CheckoutRoot(checkout) as files:
        return files.read_file(path, VIEW_MAX_BYTES + 1, truncate=True)
