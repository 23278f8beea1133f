"""The App's side of the selected task's panes: what is rendered into them, and the layout keys.

Only the panes on screen are rendered (one tab, or the primary pane with the to-do list and the
log); a task's revision says whether anything changed since. The diff is fetched from the manager
(debounced: a burst of diff.updated events becomes one fetch); the log is fed incrementally.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from textual.css.query import NoMatches
from textual.geometry import Size
from textual.widgets import TabbedContent

from codex_tui import protocol as p
from codex_tui.tui.log_feed import feed_log
from codex_tui.tui.palette import PANES
from codex_tui.tui.panes import SIDE_PANES, SPLIT_STEP, LayoutChoice, PaneLayout, clamp_split, focus_target
from codex_tui.tui.state import TaskModel
from codex_tui.tui.themes import read_state, remember
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.plan_view import PlanView
from codex_tui.tui.widgets.sandbox_log import SandboxLog

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp

DIFF_DEBOUNCE_S = 0.25


class PanesController:
    """Renders the selected task into the visible panes and carries out the layout actions."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app
        remembered = read_state(app.state_home)
        choice = LayoutChoice.from_values(
            remembered.get("layout"), remembered.get("split"), app.config.layout
        )
        self.layout = PaneLayout(lambda: app.main_widget(TabbedContent), choice)
        self.rendered: tuple[str, int] | None = None
        """(task id, revision) last rendered; None forces the next render."""
        self.diff_key: tuple[str, int] | None = None
        """(task id, diff revision) of the patch in the diff pane."""
        self.cut_noted: set[str] = set()
        """Tasks whose cut-short patch was already pointed out."""
        self._diff_timer: asyncio.TimerHandle | None = None
        self._log_task: str | None = None
        self._log_cursor = 0
        self._lock = asyncio.Lock()

    # --- rendering -----------------------------------------------------------------------------

    def active_tab(self) -> str:
        """The active tab: chat, todo, diff, log, review or artifacts."""
        return self.app.main_widget(TabbedContent).active or "chat"

    def invalidate(self) -> None:
        """Render the panes again at the next chance (layout, tab or selection changed)."""
        self.rendered = None
        self.app.call_later(self.render_selected)

    async def render_selected(self) -> None:
        """Render the selected task into every pane on screen."""
        async with self._lock:
            with contextlib.suppress(NoMatches):
                await self._render_selected_now()

    async def _render_selected_now(self) -> None:
        app = self.app
        task = app.selected_task()
        if task is None:
            return
        app.review_ui.sync_review_tab(task)
        app.artifacts_ui.sync_tab(task)
        self.rendered = (task.id, task.rev)
        for pane in self.layout.visible_panes(self.active_tab()):
            await self._render_pane(task, pane)

    async def _render_pane(self, task: TaskModel, pane: str) -> None:
        app = self.app
        if pane == "review":
            app.review_ui.render_review(task)
        elif pane == "artifacts":
            app.artifacts_ui.render(task)
        elif pane == "chat":
            await app.main_widget(ChatView).show_blocks(task.id, task.blocks)
        elif pane == "todo":
            app.main_widget(PlanView).show_plan(task.todos, task.todo_explanation)
        elif pane == "log":
            self._render_log(task)
        elif pane == "diff":
            app.review_ui.prepare_diff(task)
            if self.diff_key != (task.id, task.diff_rev):
                self._schedule_diff(task)

    def _render_log(self, task: TaskModel) -> None:
        log = self.app.main_widget(SandboxLog)
        if self._log_task != task.id:
            log.clear()
            self._log_task = task.id
            self._log_cursor = 0
        feed_log(log, task.log_ops_since(self._log_cursor))
        self._log_cursor = task.log_end

    def _schedule_diff(self, task: TaskModel) -> None:
        if self._diff_timer is not None:
            self._diff_timer.cancel()
        delay = 0 if self.diff_key is None or self.diff_key[0] != task.id else DIFF_DEBOUNCE_S
        self._diff_timer = asyncio.get_running_loop().call_later(delay, self._fetch_diff, task.id)

    def _fetch_diff(self, task_id: str) -> None:
        self._diff_timer = None
        self.app.run_worker(self._load_diff(task_id), group="diff", exclusive=True, exit_on_error=False)

    async def _load_diff(self, task_id: str) -> None:
        app = self.app
        task = app.state.tasks.get(task_id)
        if task is None:
            return
        rev = task.diff_rev
        result = await app.source.submit(p.Op(p.OP_GET_DIFF, task_id))
        if task_id != app.selected_id:
            return
        if not result.ok:
            app.notify(result.message, title="Diff", severity="error")
            return
        self.diff_key = (task_id, rev)
        app.main_widget(DiffView).set_patch(str(result.data.get("patch") or ""))
        if result.data.get("truncated") and task_id not in self.cut_noted:
            self.cut_noted.add(task_id)  # once per task: the diff is fetched again after each change
            app.notify(result.message, title="Diff cut short", severity="warning")

    # --- layout --------------------------------------------------------------------------------

    def apply_layout(self, size: Size | None = None) -> None:
        """Lay the panes out for the screen size; render again when the layout changed."""
        before = self.layout.mode
        self.layout.apply(size or self.app.size)
        if self.layout.mode != before:
            self.invalidate()

    def show_pane(self, pane: str) -> None:
        """Show a pane. In the panes layout the to-do list and the log are always on screen, so
        asking for one of them moves the focus there; a primary pane takes the left column."""
        if pane in PANES:
            self.app.main_widget(TabbedContent).active = pane
            if self.layout.mode == "panes" and pane in SIDE_PANES:
                self.app.call_after_refresh(self.focus_pane, pane)

    def focus_pane(self, pane: str) -> None:
        """Put the focus in one pane."""
        with contextlib.suppress(NoMatches):
            focus_target(self.app.main_widget(TabbedContent).get_pane(pane)).focus()

    def cycle_focus(self, step: int) -> None:
        """Focus the next (or previous) pane on screen; in the tabs layout, show the next tab."""
        shown = self.layout.shown_tabs()
        if self.layout.mode == "panes":
            self.focus_pane(self.layout.cycle(self.layout.pane_for_focus(self.app.focused), step, shown))
        else:
            self.app.main_widget(TabbedContent).active = self.layout.cycle(self.active_tab(), step, shown)

    def toggle_maximize(self) -> None:
        """Maximise the focused pane (the whole tab area in the tabs layout), or restore it."""
        screen = self.app.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        tabs = self.app.main_widget(TabbedContent)
        if self.layout.mode == "tabs":
            screen.maximize(tabs, container=False)
            return
        pane = self.layout.pane_for_focus(self.app.focused) or self.layout.primary
        screen.maximize(tabs.get_pane(pane), container=False)

    def cycle_layout(self) -> None:
        """auto → panes → tabs → auto; remembered."""
        choice = self.layout.choice
        choice.layout = choice.next_layout()
        self._changed(f"Layout: {choice.layout} (now {choice.mode(self.app.size)})")

    def resize_split(self, delta: int) -> None:
        """Widen (delta > 0) or narrow the primary column of the panes layout; remembered."""
        choice = self.layout.choice
        choice.split = clamp_split(choice.split + delta * SPLIT_STEP)
        self._changed("" if self.layout.mode == "panes" else "The split applies to the panes layout")

    def _changed(self, message: str) -> None:
        self.layout.apply(self.app.size)
        self.invalidate()
        choice = self.layout.choice
        error = remember(self.app.state_home, layout=choice.layout, split=choice.split)
        if error or message:
            self.app.notify(error or message, severity="warning" if error else "information")
