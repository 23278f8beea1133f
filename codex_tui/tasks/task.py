"""One task's lifecycle: its checkout, its sandbox, its agent, its turns, approvals and checkpoints.

A :class:`Task` never schedules itself: the task manager decides when a turn may run (the parallel
limit) and calls :meth:`Task.run_turn`. Everything the task learns becomes an event through the
`emit` function it was given; every failure becomes a "failed" status with a clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from codex_tui.agent.loop import Agent, TurnResult
from codex_tui.config import ConfigError
from codex_tui.process import process_start_ticks
from codex_tui.protocol import (
    COMPACTED,
    ERROR,
    ITEM_COMPLETED,
    NETWORK_REQUEST,
    NOTE,
    SANDBOX_INFO,
    TASK_STATUS,
    TURN_COMPLETED,
    TURN_FAILED,
    TURN_UNDONE,
    OpResult,
)
from codex_tui.sandbox import disk
from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.environment import load_environment, secrets_source
from codex_tui.sandbox.factory import SandboxRequest, create_sandbox, spec_from_config
from codex_tui.tasks.approvals import Approvals
from codex_tui.tasks.kinds import ReviewSettler
from codex_tui.tasks.store import Checkpoint, TaskRecord
from codex_tui.tasks.task_agent import build_agent
from codex_tui.tasks.task_context import TaskContext, TaskFailure, describe_error
from codex_tui.tasks.task_diff import DiffTracker
from codex_tui.tasks.task_sandbox import SetupLog, WatchedSandbox
from codex_tui.workspace.git import MAX_PATCH_BYTES, Workspace, WorkspaceError
from codex_tui.workspace.review_target import ResolvedTarget

APP_STOPPED = "interrupted: the app stopped"
HISTORY_EVENTS = frozenset({ITEM_COMPLETED, TURN_COMPLETED, TURN_FAILED})
"""After these events the agent's history changed: save it (coalesced)."""
RESUME_HINT = "the checkout is intact; send a message to resume in a new sandbox"
SANDBOX_REPLACED = "the sandbox container was gone; started a new one"


class Task:
    """One task: a git checkout + a sandbox + an agent, and the turns run on them."""

    def __init__(self, record: TaskRecord, ctx: TaskContext) -> None:
        self.record = record
        self.ctx = ctx
        self.workspace: Workspace | None = None
        self.quota: disk.DiskQuota | None = None
        self.sandbox: WatchedSandbox | None = None
        self.sandbox_error = ""
        self.sandbox_mode: str = ""
        self.sandbox_started = False
        self.agent: Agent | None = None
        self.runner: asyncio.Task[None] | None = None
        self.approvals = Approvals(self)
        self.diff = DiffTracker(self)
        self._history_task: asyncio.Task[None] | None = None
        self._history_dirty = False
        self._interrupted = False
        self.search_noted = False
        """Web search was on for an earlier agent of this task: its no-hosted-search note is not repeated."""

    # --- status and events -------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The task id."""
        return self.record.id

    @property
    def busy(self) -> bool:
        """True while a turn (or its start-up) is in progress."""
        return self.runner is not None and not self.runner.done()

    def emit(self, type_: str, data: dict[str, Any]) -> None:
        """Emit an event for this task (also watched to keep the history file current)."""
        self.ctx.emit(self.id, type_, data)
        if type_ in HISTORY_EVENTS and self.agent is not None:
            self._schedule_history_save()
        elif type_ == COMPACTED:
            for checkpoint in self.record.checkpoints:
                checkpoint.history_len = -1  # the old lengths no longer index the compacted history
            self._schedule_history_save()

    def set_status(self, status: str, message: str = "") -> None:
        """Change the task's status, emit task.status and persist the record at once."""
        self.record.status = status
        self.record.message = message
        data: dict[str, Any] = {"status": status}
        if message:
            data["message"] = message
        self.ctx.emit(self.id, TASK_STATUS, data)
        self.ctx.on_status(self.id, status)

    def note(self, message: str, level: str = "info") -> None:
        """A note for the user (not the model)."""
        self.emit(NOTE, {"level": level, "message": message})

    def fail(self, message: str) -> None:
        """Mark the task failed with a clear message and an error event."""
        self.emit(ERROR, {"message": message})
        self.set_status("failed", message)

    # --- one turn ----------------------------------------------------------------------------

    async def run_turn(self, text: str, images: list[str]) -> None:
        """Start up if needed, run one agent turn, checkpoint, and settle the status.

        Until the agent has the message it stays in `record.unsent`, so a start-up failure loses nothing.
        """
        self._interrupted = False
        self.record.owner_pid = os.getpid()
        self.record.owner_start = process_start_ticks(self.record.owner_pid)
        self.record.unsent = text
        try:
            await self._ensure_ready()
            assert self.agent is not None and self.workspace is not None
            self.set_status("running")
            self.record.turns += 1
            checkpoint_id = await self.workspace.checkpoint(f"{self.id} before turn {self.record.turns}")
            self.record.checkpoints.append(
                Checkpoint(checkpoint_id, len(self.agent.history), self.agent.turns + 1)  # its turn.started
            )
            self.record.unsent = ""
            result = await self._run_agent_turn(text, images)
            if self.record.kind == "review" and result.status == "completed":
                result = await self._settle_review(result)
        except asyncio.CancelledError:
            await self._after_turn_io()
            raise
        except TaskFailure as exc:
            await self._after_turn_io()
            await self.drop_sandbox()
            self.fail(str(exc))
            return
        except Exception as exc:  # any other failure ends the turn, never the manager
            await self._after_turn_io()
            await self.drop_sandbox()
            self.fail(describe_error(exc))
            return
        self.record.tokens += result.usage.input_tokens + result.usage.output_tokens
        await self._after_turn_io()
        if self.sandbox_error:
            await self.drop_sandbox()
            self.fail(f"{self.sandbox_error} — {RESUME_HINT}")
        elif result.status == "completed":
            self.set_status("ready")
        elif result.status == "interrupted" or self._interrupted:
            self.note("Interrupted. Send a message to continue.", "warning")
            self.set_status("ready", "interrupted")
        else:
            await self.drop_sandbox()
            self.fail(result.error or "the turn failed")

    async def _run_agent_turn(self, text: str, images: list[str]) -> TurnResult:
        """The agent's turn, with the disk watchdog beside it (limit and host free space)."""
        assert self.agent is not None
        limited = self.quota is not None and (self.quota.watched or self.quota.mounted)
        watcher = asyncio.create_task(self._watch_disk()) if limited else None
        try:
            return await self.agent.run_turn(text, [Path(p) for p in images])
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    async def _settle_review(self, result: TurnResult) -> TurnResult:
        """Validate the reviewer's answer (one repair request), emit the review item, keep it."""
        assert self.agent is not None and self.workspace is not None and self.sandbox is not None
        agent = self.agent

        async def repair(text: str) -> TurnResult:
            return await agent.run_turn(text, [])

        settler = ReviewSettler(
            target=self.record.review_target,
            workdir=self.sandbox.workdir,
            checkout=self.workspace.path,
            run_turn=repair,
            note=lambda message, level: self.note(message, level),
        )
        result, item = await settler.settle(result, f"{self.id}-review-{self.record.turns}")
        self.emit(ITEM_COMPLETED, {"item": item})
        self.record.review = {key: value for key, value in item.items() if key != "id"}
        self.ctx.store.put(self.record, urgent=True)
        return result

    async def _watch_disk(self) -> None:
        assert self.quota is not None
        message = await disk.watch(self.quota)
        self._sandbox_failed(SandboxError(message))

    async def _after_turn_io(self) -> None:
        """Settle the token totals, the diff and the saved history after a turn, whatever its outcome."""
        if self.agent is not None:
            usage = self.agent.total_usage
            self.record.input_tokens, self.record.output_tokens = usage.input_tokens, usage.output_tokens
            self.record.cached_input_tokens = usage.cached_input_tokens
        try:
            await self.diff.refresh()
        except Exception as exc:
            self.note(f"could not compute the diff: {describe_error(exc)}", "warning")
        if self.workspace is not None:
            try:
                await self.workspace.tidy()
            except WorkspaceError as exc:
                self.note(f"could not prune old snapshots: {exc}", "warning")
        await self.save_history()

    # --- start-up ----------------------------------------------------------------------------

    async def _ensure_ready(self) -> None:
        """Checkout, sandbox and agent, each created only when missing (or when the mode changed).

        A sandbox that vanished while the task was idle (engine restart, container removed or
        expired) is replaced here, so the turn does not fail on its first command.
        """
        replaced = await self._drop_sandbox_if_gone()
        if self.workspace is None or not self.sandbox_started or self.sandbox_mode != self.record.mode:
            self.set_status("starting")
        await self._ensure_workspace()
        if self.sandbox is not None and self.sandbox_mode != self.record.mode:
            await self.drop_sandbox()
        if self.agent is None:
            await self._make_sandbox()
        if not self.sandbox_started and self.sandbox is not None and self.sandbox.starting is None:
            # The container starts while the model client loads and the agent is made.
            note = SANDBOX_REPLACED if replaced else ""
            self.sandbox.starting = asyncio.create_task(self._start_sandbox(note))
        if self.agent is None:
            self.agent = await build_agent(self)
        if self.sandbox is not None and self.sandbox.starting is not None:
            # Before the turn: a sandbox that cannot start costs no model call, and the message
            # stays unsent (kept for the next turn).
            try:
                await asyncio.shield(self.sandbox.starting)
            except SandboxError as exc:
                raise TaskFailure(f"the sandbox failed to start: {exc}") from None

    async def _drop_sandbox_if_gone(self) -> bool:
        """One check of an idle started sandbox; drop it when it is gone. True when it was dropped."""
        if self.sandbox is None or not self.sandbox_started or self.sandbox_mode != self.record.mode:
            return False
        try:
            alive = await self.sandbox.alive()
        except SandboxError as exc:
            raise TaskFailure(f"the sandbox failed: {exc} — {RESUME_HINT}") from None
        if alive:
            return False
        await self.drop_sandbox()
        return True

    async def _ensure_workspace(self) -> None:
        if self.workspace is not None:
            return
        if self.record.pruned:
            raise TaskFailure("this task's checkout was pruned; retry the task to run it again")
        source = Path(self.record.repo)
        checkout = Path(self.record.workspace) if self.record.workspace else self._checkout_path()
        try:
            if self.record.workspace:
                self.quota = await disk.reattach(checkout, self._disks, self.ctx.config.sandbox_disk_mb)
                self.workspace = await Workspace.open(source, checkout, self.id)
                # The saved +/− may be stale: a diff cut off by a killed app, or files its last
                # command wrote after the last count. The turn's end counts again.
                self.diff.dirty = True
            else:
                self.quota = await disk.provision(checkout, self._disks, self.ctx.config.sandbox_disk_mb)
                self.workspace = await self._create_workspace(source, checkout)
        except (WorkspaceError, SandboxError) as exc:
            raise TaskFailure(str(exc)) from None
        self.record.workspace = str(self.workspace.path)
        self.ctx.store.put(self.record, urgent=True)

    async def _create_workspace(self, source: Path, checkout: Path) -> Workspace:
        try:
            if self.record.kind == "review":
                self.diff.dirty = True  # its diff is the reviewed change: shown after the first turn
                return await self._create_review_workspace(source, checkout)
            return await Workspace.create(
                source,
                checkout,
                self.id,
                include_uncommitted=self.ctx.config.include_uncommitted,
                allow_non_git=self.ctx.allow_non_git,
                title=self.record.title,
            )
        except WorkspaceError:
            with contextlib.suppress(SandboxError, OSError):
                await disk.release(checkout, self._disks)
            self.quota = None
            raise

    async def _create_review_workspace(self, source: Path, checkout: Path) -> Workspace:
        """The checkout of the change under review: its diff is that change (see review_target)."""
        target = ResolvedTarget.from_dict(self.record.review_target)
        reviewed = None
        if target.target.type == "task":
            if self.ctx.task_workspace is None:
                raise WorkspaceError("the reviewed task is not available here")
            reviewed = await self.ctx.task_workspace(target.target.task_id)
        return await Workspace.create_review(
            source, checkout, self.id, target, reviewed=reviewed, title=self.record.title
        )

    def _checkout_path(self) -> Path:
        return self.ctx.store.data_dir / "worktrees" / self.id

    @property
    def _disks(self) -> Path:
        """Where checkouts' disk images live: in the data folder, never inside a checkout."""
        return self.ctx.store.data_dir / "disks"

    async def _detach_disk(self) -> None:
        """Unmount the checkout's own filesystem (kept for `reattach`); the workspace reopens after."""
        quota, self.quota = self.quota, None
        if quota is None or not quota.mounted:
            return
        self.workspace = None
        try:
            await disk.detach(quota.checkout, self._disks)
        except SandboxError as exc:
            self.note(f"could not unmount the checkout: {exc}", "warning")

    async def _make_sandbox(self) -> None:
        """Create the sandbox (not started; the setup image is built first when needed)."""
        assert self.workspace is not None
        cfg = self.ctx.config
        spec = spec_from_config(
            cfg,
            self.id,
            self.workspace.path,
            self.record.mode,  # type: ignore[arg-type]
            extra_ro_mounts=self.workspace.extra_ro_mounts,
        )
        setup = SetupLog(self.id, self.emit)
        repo = Path(self.record.repo)
        try:
            environment = load_environment(
                cfg, repo, network=self.record.network or None, allowed_domains=self.record.allowed_domains
            )
        except ConfigError as exc:
            raise TaskFailure(str(exc)) from None
        request = SandboxRequest(
            backend=self.ctx.backend,
            repo=repo,
            setup_script=cfg.setup,
            on_output=setup.output,
            environment=environment,
            secrets=secrets_source(environment, cfg.home, repo),
            on_network=lambda data: self.emit(NETWORK_REQUEST, data),
        )
        try:
            sandbox, note = await create_sandbox(spec, request)
        except SandboxError as exc:
            setup.finish(failed=True)
            raise TaskFailure(f"sandbox setup failed: {exc}") from None
        setup.finish(failed=False)
        if note:
            self.note(note, "warning")
        self.sandbox = WatchedSandbox(sandbox, self._sandbox_failed)
        self.sandbox_error = ""
        self.sandbox_mode = self.record.mode
        self.sandbox_started = False

    def _sandbox_failed(self, exc: SandboxError) -> None:
        """The sandbox died under a command: end the turn now; the task fails with the reason."""
        if not self.sandbox_error:
            self.sandbox_error = f"the sandbox failed: {exc}"
            asyncio.get_running_loop().call_soon(self._stop_turn_after_sandbox_failure)

    def _stop_turn_after_sandbox_failure(self) -> None:
        """Interrupt the turn, again until it ends: a cancel that lands as a tool's wait_for
        completes is swallowed by asyncio (3.11), so one attempt is not enough."""
        if self.sandbox_error and self.agent is not None and self.agent.running:
            self.agent.interrupt()
            asyncio.get_running_loop().call_later(0.02, self._stop_turn_after_sandbox_failure)

    async def _start_sandbox(self, note: str = "") -> None:
        """Start the sandbox (in the background while the agent is made; see WatchedSandbox.starting)."""
        assert self.sandbox is not None
        await self.sandbox.start()
        self.sandbox_started = True
        if note:
            self.note(note, "warning")
        self.emit(
            SANDBOX_INFO,
            {
                "backend": self.sandbox.backend,
                "image": getattr(self.sandbox.inner, "image", None),
                "container_id": getattr(self.sandbox.inner, "container_id", None),
                "message": self.sandbox.describe() + (f"; {self.quota.describe()}" if self.quota else ""),
            },
        )

    async def drop_sandbox(self) -> None:
        """Stop the sandbox and forget the agent (its history is saved); the next turn rebuilds both.

        A start still in progress is waited for first, so no container is left behind.
        """
        sandbox, self.sandbox = self.sandbox, None
        if self.agent is not None:
            await self.save_history()
        self.agent = None
        self.sandbox_started = False
        if sandbox is not None:
            if sandbox.starting is not None:
                await asyncio.gather(asyncio.shield(sandbox.starting), return_exceptions=True)
            with contextlib.suppress(Exception):
                await sandbox.stop()

    async def stop(self) -> None:
        """Release the sandbox (the checkout and the rollout stay; its own filesystem is unmounted)."""
        await self.drop_sandbox()
        if not self.busy:
            await self._detach_disk()

    # --- operations on a running task --------------------------------------------------------

    def steer(self, text: str, images: list[str]) -> None:
        """Inject a message into the running turn."""
        assert self.agent is not None
        self.agent.steer(text, [Path(p) for p in images])

    def interrupt(self) -> bool:
        """Stop the current turn; False when there is no agent turn to interrupt."""
        self._interrupted = True
        if self.agent is not None and self.agent.running:
            self.agent.interrupt()
            return True
        return False

    async def cancel(self) -> None:
        """Stop the task for good: end its turn, release its sandbox, status cancelled."""
        self.approvals.deny_all()
        runner = self.runner
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
        await self.drop_sandbox()
        self.set_status("cancelled", "cancelled by the user")

    # --- diff, history -----------------------------------------------------------------------

    async def files_changed(self) -> None:
        """Called by the agent after a tool call that may change files: recompute the diff soon."""
        if self.quota is not None and (message := await disk.over_limit(self.quota)):
            self._sandbox_failed(SandboxError(message))
        self.diff.schedule()

    def _schedule_history_save(self) -> None:
        self._history_dirty = True
        if self._history_task is None or self._history_task.done():
            self._history_task = asyncio.create_task(self._history_loop(), name=f"history-{self.id}")

    async def _history_loop(self) -> None:
        while self._history_dirty:
            self._history_dirty = False
            await self.save_history()

    async def save_history(self) -> None:
        """Write the agent's history now (a snapshot copy, written in a thread)."""
        if self.agent is None:
            return
        try:
            await self.ctx.store.save_history(self.id, list(self.agent.history))
        except OSError as exc:
            self.note(f"could not save the conversation: {exc.strerror}", "error")

    # --- operations on a finished task -------------------------------------------------------

    async def ensure_workspace(self) -> Workspace:
        """The task's checkout, reopened from disk when this process has not touched it yet."""
        try:
            await self._ensure_workspace()
        except TaskFailure as exc:
            raise WorkspaceError(str(exc)) from None
        assert self.workspace is not None
        return self.workspace

    async def remove_checkout(self) -> bool:
        """Delete this task's checkout (its rollout stays); False when it could not be removed."""
        await self.drop_sandbox()
        path = Path(self.record.workspace)
        try:
            workspace = self.workspace or await Workspace.open(Path(self.record.repo), path, self.id)
            await disk.release(path, self._disks)
            self.quota = None
            await workspace.remove()
        except (WorkspaceError, SandboxError) as exc:
            if await asyncio.to_thread(path.exists):
                self.note(f"could not remove the checkout: {exc}", "warning")
                return False
        self.workspace = None
        self.record.workspace = ""
        self.record.pruned = True
        self.ctx.store.put(self.record, urgent=True)
        return True

    async def get_diff(self) -> OpResult:
        """The unified diff against the task's start, and its files."""
        workspace = await self.ensure_workspace()
        diff = await workspace.diff()
        data = {"patch": diff.patch, "truncated": diff.truncated, **diff.summary_dict()}
        message = f"+{diff.added} −{diff.removed}"
        if diff.truncated:
            message += f" (the patch text stops after {MAX_PATCH_BYTES // 2**20} MB; apply takes every file)"
        return OpResult(True, message, data)

    async def set_kind(self, kind: str, mode: str) -> None:
        """Become a task of another kind (Ask → Code): the history is kept; the sandbox, the tools
        and the prompt are rebuilt for the next turn."""
        await self.drop_sandbox()
        self.record.kind = kind
        self.record.mode = mode
        self.ctx.store.put(self.record, urgent=True)
        self.note(f"This is now a {'Code' if kind == 'code' else 'Ask'} task (sandbox {mode}).")

    async def undo(self) -> OpResult:
        """Restore files and conversation to before the last turn."""
        if not self.record.checkpoints:
            return OpResult(False, "nothing to undo: no turn has run yet")
        workspace = await self.ensure_workspace()
        checkpoint = self.record.checkpoints[-1]
        await workspace.restore(checkpoint.id)
        self.record.checkpoints.pop()
        if checkpoint.history_len < 0:
            message = f"Undid turn {checkpoint.turn}: files are back to before it (the conversation was "
            message += "compacted since, so it stays as it is)."
        else:
            await self._truncate_history(checkpoint.history_len)
            if self.agent is not None:
                self.agent.turns = checkpoint.turn - 1
            message = f"Undid turn {checkpoint.turn}: files and conversation are back to before it."
        self.record.turns = max(0, self.record.turns - 1)
        self.emit(TURN_UNDONE, {"turn": checkpoint.turn, "conversation": checkpoint.history_len >= 0})
        self.note(message)
        await self.diff.refresh(force=True)
        self.ctx.store.put(self.record, urgent=True)
        return OpResult(True, message, {"turn": checkpoint.turn})

    async def _truncate_history(self, length: int) -> None:
        if self.agent is not None:
            self.agent.history = self.agent.history[:length]
            await self.save_history()
        else:
            history = await self.ctx.store.load_history(self.id)
            await self.ctx.store.save_history(self.id, history[:length])

    async def compact(self) -> OpResult:
        """Summarise the conversation so far to free context."""
        await self.ensure_workspace()
        if self.agent is None:
            await self._make_sandbox()
            self.agent = await build_agent(self)
        assert self.agent is not None
        ok, message = await self.agent.compact()
        await self.save_history()
        return OpResult(ok, message)
