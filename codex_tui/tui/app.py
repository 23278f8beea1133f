"""The codex-tui application: task list, the selected task's panes, composer, status bar.

The App owns the state: events from the task manager land in an inbox (no widget work per event),
a 30 Hz timer folds them into the :class:`AppState` model and updates only what changed, and every
user action becomes an operation sent to the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.theme import Theme
from textual.widgets import Footer, TabbedContent

from codex_tui import protocol as p
from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import Config
from codex_tui.tui.app_actions import AppActions
from codex_tui.tui.artifacts_ui import ArtifactsController
from codex_tui.tui.bindings import APP_BINDINGS, unknown_keymap_ids
from codex_tui.tui.commands import CodexCommands, PaletteEntry, SlashCommand, SlashError, parse_slash
from codex_tui.tui.compare_ui import CompareController
from codex_tui.tui.cost import cost_label, cost_total
from codex_tui.tui.driver import safe_driver_class
from codex_tui.tui.gc_policy import tune_gc_for_streaming
from codex_tui.tui.mission_ui import MissionController
from codex_tui.tui.network import NextNetwork
from codex_tui.tui.notify import Notifier
from codex_tui.tui.palette import palette_actions
from codex_tui.tui.pane_ui import PanesController
from codex_tui.tui.panes import Pane
from codex_tui.tui.review_ui import ReviewAskController
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.mcp import McpScreen
from codex_tui.tui.slash_ui import SlashController
from codex_tui.tui.source import TaskSource
from codex_tui.tui.state import STATUS_ICONS, AppState, TaskModel, format_duration, format_tokens
from codex_tui.tui.task_actions import TaskActions
from codex_tui.tui.themes import initial_theme, load_themes, packaged_themes_dir, remember
from codex_tui.tui.usage_meter import usage_text
from codex_tui.tui.widgets.artifact_list import ArtifactList
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.composer import Composer
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.plan_view import PlanView
from codex_tui.tui.widgets.review_pane import ReviewPane
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from codex_tui.tui.widgets.status_bar import StatusBar, StatusInfo
from codex_tui.tui.widgets.task_list import TaskList, TaskRow

FLUSH_HZ = 30
REPORTED_OPS = {p.OP_APPLY: "Apply", p.OP_UNDO: "Undo", p.OP_COMPACT: "Compact", p.OP_CANCEL: "Cancel"}
"""Operations whose success message is worth a toast."""
Clock = Callable[[], float]


class CodexApp(AppActions):
    """Run and watch several coding agents at once."""

    CSS_PATH = "app.tcss"
    TITLE = "codex-tui"
    BINDINGS = APP_BINDINGS
    COMMANDS = App.COMMANDS | {CodexCommands}

    def get_driver_class(self) -> type[Driver]:
        """Textual's choice, with its terminal driver made safe for a hangup (see tui/driver.py)."""
        return safe_driver_class(super().get_driver_class())

    def __init__(
        self,
        config: Config,
        source: TaskSource,
        *,
        repo: Path,
        initial_ops: list[p.Op] | None = None,
        clock: Clock = time.time,
        show_elapsed: bool = True,
        state_home: Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.notifier = Notifier.from_config(config)
        self.source = source
        self.repo = repo
        self.state = AppState()
        self.state_home = state_home or config.home
        self.clock = clock
        self.show_elapsed = show_elapsed
        self.initial_ops = list(initial_ops or [])
        self.selected_id: str | None = None
        self.new_task_mode = False
        self.next_attempts = 1
        self.next_mode: str | None = None
        self.next_model: str | None = None
        self.next_network = NextNetwork()
        self.source_ready = asyncio.Event()
        self._inbox: list[p.Event] = []
        self._live_since = 0.0
        self._unsubscribe: Callable[[], None] | None = None
        self._flushing = False
        self.stopped_by: signal.Signals | None = None
        """The SIGTERM or SIGHUP that closed the app, if one did."""
        self._restore_signals: Callable[[], None] = lambda: None
        self.review_ui = ReviewAskController(self)
        self.compare_ui = CompareController(self)
        self.artifacts_ui = ArtifactsController(self)
        self.panes_ui = PanesController(self)
        self.mission_ui = MissionController(self)
        self.slash_ui = SlashController(self)
        self.task_actions = TaskActions(self)
        self._load_themes()
        self.set_keymap(dict(config.keymap))

    # --- setup ---------------------------------------------------------------------------------

    def _load_themes(self) -> None:
        loaded = load_themes([packaged_themes_dir(), self.config.themes_dir])
        for theme in loaded.themes:
            self.register_theme(theme)
        self._theme_errors = loaded.errors
        self.theme = initial_theme(self.config.theme, self.state_home, set(self.available_themes))

    def compose(self) -> ComposeResult:
        """Task list | panes of the selected task; composer, status bar and footer below."""
        with Horizontal(id="main"):
            yield TaskList(id="tasks")
            with Vertical(id="detail"), TabbedContent(id="panes", initial="chat"):
                with Pane("Chat", id="chat"):
                    yield ChatView(id="chat-view")
                with Pane("To-do", id="todo"):
                    yield PlanView(id="plan-view")
                with Pane("Diff", id="diff"):
                    yield DiffView(id="diff-view")
                with Pane("Log", id="log"):
                    yield SandboxLog(id="log-view")
                with Pane("Review", id="review"):
                    yield ReviewPane(id="review-view")
                with Pane("Artifacts", id="artifacts"):
                    yield ArtifactList(id="artifacts-view")
        yield Composer(self.repo, id="composer", paste_dir=self.config.data_dir / "pasted")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        """Start the manager, subscribe to events, and start the flush timer."""
        for error in self._theme_errors:
            self.notify(error, title="Theme file skipped", severity="warning")
        unknown = unknown_keymap_ids(self.config.keymap)
        if unknown:
            self.notify(f"Unknown binding ids in [keymap]: {', '.join(unknown)}", severity="warning")
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        composer = self.main_widget(Composer)
        composer.set_theme_names(sorted(self.available_themes))
        composer.area.focus()
        self.review_ui.sync_review_tab(None)
        self.artifacts_ui.sync_tab(None)
        self.panes_ui.layout.apply(self.size)
        self.refresh_target()
        self.update_status()
        self.set_interval(1 / FLUSH_HZ, self._flush_inbox, name="flush")
        if self.show_elapsed:
            self.set_interval(1.0, self._tick, name="elapsed")
        self._start_source()
        self._load_mention_files()
        # Startup objects (CSS, widgets, themes) leave the collector's view and young collections
        # are rarer: collections stay short while tasks stream, which keeps key latency low.
        self.set_timer(1.0, tune_gc_for_streaming)
        self._watch_stop_signals()

    def _watch_stop_signals(self) -> None:
        from codex_tui.exec import on_stop_signals

        self._restore_signals = on_stop_signals(self._stop_by_signal)

    def _stop_by_signal(self, sig: signal.Signals) -> None:
        """SIGTERM or SIGHUP: quit as /quit does (sandboxes removed, tasks resumable), exit 128 + N."""
        if self.stopped_by is None:
            self.stopped_by = sig
            self.exit(128 + int(sig), return_code=128 + int(sig))

    @work(group="source", exit_on_error=False)
    async def _start_source(self) -> None:
        try:
            await self.source.start()
        except Exception as exc:  # the manager turns failures into values; this is the last guard
            self.notify(f"Cannot start the task manager: {exc}", severity="error", timeout=30)
            return
        self._live_since = time.time()
        self._unsubscribe = self.source.subscribe(self._on_event, replay=True)
        self.source_ready.set()
        for op in self.initial_ops:
            await self.send(op, select=False)

    async def on_unmount(self) -> None:
        """Unsubscribe and close the manager (tasks stay resumable)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.source_ready.is_set():
            with contextlib.suppress(Exception):
                await self.source.close()
        self._restore_signals()

    @work(thread=True, group="mentions", exit_on_error=False)
    def _load_mention_files(self) -> None:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.repo), "ls-files", "--cached", "--others", "--exclude-standard"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return
        files = out.stdout.splitlines()[:50_000] if out.returncode == 0 else []
        self.call_from_thread(self._set_mention_files, files)

    def _set_mention_files(self, files: list[str]) -> None:
        with contextlib.suppress(NoMatches):
            self.main_widget(Composer).set_mention_files(files)

    # --- events in -----------------------------------------------------------------------------

    def _on_event(self, event: p.Event) -> None:
        """Called by the manager on the loop for every event: only queue it."""
        self._inbox.append(event)

    async def _flush_inbox(self) -> None:
        """Fold queued events into the model and update what changed (runs at FLUSH_HZ)."""
        if self._flushing or not self._inbox:
            return
        self._flushing = True
        try:
            events, self._inbox = self._inbox, []
            changed = self._reduce(events)
            await self._render(changed)
        except NoMatches:
            pass  # the main screen is being torn down: the app is closing
        finally:
            self._flushing = False

    def _reduce(self, events: list[p.Event]) -> set[str]:
        changed: set[str] = set()
        for event in events:
            task = self.state.apply(event)
            if task is None:
                continue
            changed.add(task.id)
            if event.type == p.TASK_STATUS and event.ts >= self._live_since - 1:
                self._announce(task)
        return changed

    def _announce(self, task: TaskModel) -> None:
        """Toast and bell when a task finishes or waits for the user."""
        messages = {
            "ready": ("Task ready", "information"),
            "waiting_approval": ("Approval needed", "warning"),
            "failed": ("Task failed", "error"),
        }
        if task.status in messages:
            title, severity = messages[task.status]
            detail = task.title + (f"\n{task.message}" if task.message and task.status == "failed" else "")
            if task.status == "waiting_approval" and task.id != self.selected_id:
                keys = self.config.keymap
                jump, inbox = keys.get("attention.next", "ctrl+f"), keys.get("view.mission", "f11")
                detail += f"\n{jump} opens it (the attention inbox: {inbox})"
            self.notify(detail, title=title, severity=severity)  # type: ignore[arg-type]
            self.bell()
            self.notifier.notify_task(self, task)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast; it may quote a task (an error, a file name), so control sequences are removed
        and it is plain text unless `markup=True` (`[/]` in a title would raise, `[@click=…]` run)."""
        super().notify(
            strip_controls(message),
            title=strip_controls(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    async def _render(self, changed: set[str]) -> None:
        self.mission_ui.refresh(changed)
        if changed:
            self.sync_task_list()
        if self.selected_id is None:
            visible = self.state.visible_tasks()
            if visible:
                self.select(visible[0].id)
        if self.selected_id in changed or self.panes_ui.rendered is None:
            await self._render_selected()
        self.update_status()
        self.refresh_target()
        self._show_next_approval()
        if isinstance(self.screen, CompareScreen):
            self.compare_ui.refresh(self.screen, changed)

    def _tick(self) -> None:
        if any(t.active for t in self.state.visible_tasks()):
            self.sync_task_list()

    # --- rendering -----------------------------------------------------------------------------

    def task_row(self, task: TaskModel) -> TaskRow:
        """The task list card of one task."""
        elapsed = format_duration(task.elapsed(self.clock())) if self.show_elapsed else ""
        attempt = f"{task.attempt}/{task.attempts}" if task.attempts > 1 else ""
        row = TaskRow(
            task.id,
            STATUS_ICONS.get(task.status, "·"),
            task.status,
            task.title or task.id,
            elapsed,
            task.added,
            task.removed,
            format_tokens(task.tokens),
            attempt,
            cost=cost_label(task, self.config.pricing, self.config.model),
        )
        return self.mission_ui.mark_row(row)

    def sync_task_list(self) -> None:
        tasks = self.state.visible_tasks()
        self.main_widget(TaskList).sync([self.task_row(t) for t in tasks])

    @property
    def shown_diff(self) -> tuple[str, int] | None:
        """(task id, diff revision) of the patch in the diff pane."""
        return self.panes_ui.diff_key

    def active_pane(self) -> str:
        """Which tab is active: chat, todo, diff, log, review or artifacts."""
        return self.panes_ui.active_tab()

    async def _render_selected(self) -> None:
        await self.panes_ui.render_selected()

    def update_status(self) -> None:
        task = self.selected_task()
        counts = self.state.counts()
        info = StatusInfo(
            model=(task.model if task and task.model else self.next_model or self.config.model),
            mode=(task.mode if task and task.mode else self.next_mode or self.config.sandbox_mode),
            context_left=task.context_left_pct if task else None,
            tokens=task.tokens if task else 0,
            running=counts["running"],
            queued=counts["queued"],
            task_cost=cost_label(task, self.config.pricing, self.config.model) if task else "",
            usage=usage_text(task.usage) if task else "",
            total=cost_total(self.state.tasks.values(), self.config.pricing, self.config.model).label(),
        )
        self.main_widget(StatusBar).show(info)

    def refresh_target(self) -> None:
        task = self.selected_task()
        if self.new_task_mode or task is None:
            extra = f" ×{self.next_attempts}" if self.next_attempts > 1 else ""
            model = f" · {self.next_model}" if self.next_model else ""
            network = self.next_network.label()
            label = f"New task{extra} · {self.next_mode or self.config.sandbox_mode}{model}{network}"
        elif task.active or task.status == "queued":
            label = f"Steer · {task.title}"
        else:
            label = f"Follow up · {task.title}"
        new_task = self.new_task_mode or task is None
        self.main_widget(Composer).set_target(self.review_ui.target_label(label, task, new_task))

    def select(self, task_id: str) -> None:
        if task_id == self.selected_id:
            return
        self.selected_id = task_id
        self.new_task_mode = False
        self.panes_ui.rendered = None
        self.main_widget(TaskList).select_task(task_id)
        self.refresh_target()
        self.update_status()
        self.call_later(self._show_next_approval)  # a task waiting for approval asks when in view
        if self.mission_ui.viewed():
            self.sync_task_list()

    # --- approvals -----------------------------------------------------------------------------

    def _show_next_approval(self) -> None:
        """The approval dialog, for the task in view only (mission_ui.py)."""
        self.mission_ui.show_next_approval()

    # --- operations out ------------------------------------------------------------------------

    async def send(self, op: p.Op, *, select: bool = True) -> p.OpResult:
        """Send one operation; failures become a toast."""
        await self.source_ready.wait()
        try:
            result = await self.source.submit(op)
        except Exception as exc:  # the manager answers with values; guard the UI anyway
            result = p.OpResult(False, f"{op.type} failed: {exc}")
        if not result.ok:
            self.notify(result.message or f"{op.type} failed", severity="error")
        elif op.type in REPORTED_OPS and result.message:
            title = "Branch" if op.type == p.OP_APPLY and op.data.get("branch") else REPORTED_OPS[op.type]
            self.notify(result.message, title=title)
        elif op.type == p.OP_SET_MODE and op.task_id in self.state.tasks:
            self.state.tasks[op.task_id].mode = str(op.data.get("mode", ""))
            self.update_status()
        elif op.type in (p.OP_SUBMIT, p.OP_RETRY) and select:
            ids = result.data.get("task_ids") or []
            if ids:
                self.call_later(self._select_when_known, str(ids[0]))
        return result

    def _select_when_known(self, task_id: str) -> None:
        if task_id in self.state.tasks:
            self.select(task_id)
        else:
            self.set_timer(1 / FLUSH_HZ, lambda: self._select_when_known(task_id))

    def send_soon(self, op: p.Op) -> None:
        self.run_worker(self.send(op), group="ops", exit_on_error=False)

    def submit_prompt(self, text: str, images: list[Path], *, new_task: bool = False) -> None:
        """A new task, a steer of the running task, or a follow-up of the finished one."""
        self.task_actions.submit(text, images, new_task=new_task)

    @on(Composer.Submitted)
    def _composer_submitted(self, event: Composer.Submitted) -> None:
        command = parse_slash(event.text)
        if command is None:
            self.submit_prompt(event.text, event.images)
        elif isinstance(command, SlashError):
            self.notify(command.message, severity="error")
        else:
            self.run_slash(command, event.images)

    @on(Composer.Notice)
    def _composer_notice(self, event: Composer.Notice) -> None:
        self.notify(event.message, severity=event.severity)  # type: ignore[arg-type]

    @on(TaskList.Selected)
    def _task_selected(self, event: TaskList.Selected) -> None:
        if not self.screen_stack or not self.screen_stack[0].is_attached:
            return
        if self.main_widget(TaskList).selected_id not in (None, event.task_id):
            return  # stale: the list moved on since (programmatic selections post these too)
        self.select(event.task_id)
        self.call_later(self._render_selected)

    @on(TabbedContent.TabActivated)
    def _pane_changed(self, event: TabbedContent.TabActivated) -> None:
        self.panes_ui.layout.apply(self.size)
        self.panes_ui.invalidate()

    def on_resize(self, event: events.Resize) -> None:
        """Panes together or tabs, by the new size (layout `auto`)."""
        self.panes_ui.apply_layout(event.size)

    def run_slash(self, command: SlashCommand, images: list[Path]) -> None:
        """Carry out a parsed slash command."""
        self.slash_ui.run(command, images)

    def known_models(self) -> list[str]:
        """Models offered by the palette: the configured one, the chosen one, and those of tasks."""
        return self.slash_ui.known_models()

    # --- actions -------------------------------------------------------------------------------

    def action_mcp(self) -> None:
        """Show the MCP servers (read through the source: a replay has none)."""
        if not isinstance(self.screen, McpScreen):
            self.push_screen(McpScreen(self._mcp_status))

    async def _mcp_status(self, start: bool) -> p.OpResult:
        await self.source_ready.wait()
        return await self.source.submit(p.Op(p.OP_MCP_STATUS, "", {"start": start}))

    def set_theme(self, name: str) -> bool:
        """Switch theme now (remembered by _remember_theme)."""
        if name not in self.available_themes:
            self.notify(f"Unknown theme '{name}'", severity="error")
            return False
        self.theme = name
        return True

    def _remember_theme(self, theme: Theme) -> None:
        """Every switch (slash command, palette, Textual's own theme picker) lands in state.json."""
        error = remember(self.state_home, theme=theme.name)
        if error:
            self.notify(error, severity="warning")

    def palette_actions(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for every action: the same action strings the key bindings run."""
        return palette_actions(self)

    def palette_entries(self) -> list[PaletteEntry]:
        """Every action for the command palette (Ctrl+P)."""
        return [
            (title, help_, partial(self.run_action, action))
            for title, help_, action in self.palette_actions()
        ]

    def action_goto_task(self, task_id: str) -> None:
        """Select a task and show it."""
        self.goto_task(task_id)

    def action_set_theme(self, name: str) -> None:
        """Switch theme (remembered)."""
        self.set_theme(name)

    def goto_task(self, task_id: str) -> None:
        """Select a task and show it (palette, scripts)."""
        self.select(task_id)
        self.call_later(self._render_selected)
