"""The key-binding and palette actions of the app: each hands over to the controller of its concern.

`CodexApp` derives from :class:`AppActions` and sets the controllers in its constructor; binding ids
and keys live in `bindings.py`, the palette's list in `palette.py`.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import on
from textual.app import App
from textual.css.query import NoMatches
from textual.widget import Widget

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.artifacts_ui import ArtifactsController
from codex_tui.tui.citations import parse_href
from codex_tui.tui.compare_ui import CompareController
from codex_tui.tui.copy_text import copy_selection_or_focused
from codex_tui.tui.mission_ui import MissionController
from codex_tui.tui.pane_ui import PanesController
from codex_tui.tui.review_ui import ReviewAskController
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.help import HelpScreen, help_markdown
from codex_tui.tui.slash_ui import SlashController
from codex_tui.tui.state import AppState, TaskModel
from codex_tui.tui.task_actions import TaskActions
from codex_tui.tui.widgets.artifact_list import ArtifactList
from codex_tui.tui.widgets.chat_view import ChatView, PreviewRequested
from codex_tui.tui.widgets.composer import Composer
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.review_pane import ReviewPane
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from codex_tui.tui.widgets.task_list import TaskList

W = TypeVar("W", bound=Widget)


class AppActions(App[int]):
    """Every `action_*` a key or the palette runs, and the messages panes send up to the app."""

    config: Config
    state: AppState
    selected_id: str | None
    review_ui: ReviewAskController
    compare_ui: CompareController
    artifacts_ui: ArtifactsController
    panes_ui: PanesController
    mission_ui: MissionController
    slash_ui: SlashController
    task_actions: TaskActions

    def selected_task(self) -> TaskModel | None:
        """The model of the selected task."""
        return self.state.tasks.get(self.selected_id or "")

    def action_set_attempts(self, attempts: int) -> None:
        """The next new task runs this many attempts side by side (1–4)."""
        self.slash_ui.set_attempts(attempts)

    def action_set_mode(self, mode: str) -> None:
        """Sandbox mode of the selected task's next turn, and of new tasks."""
        self.slash_ui.set_mode(mode)

    def action_set_model(self, model: str = "") -> None:
        """Model of the next new tasks; without a name, say which models are in use."""
        self.slash_ui.set_model(model)

    MAIN_SCREEN_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "new_task",
            "interrupt",
            "show_pane",
            "toggle_maximize",
            "focus_pane",
            "cycle_layout",
            "resize_split",
            "compare",
            "apply",
            "retry",
            "cancel",
            "archive",
            "select_task",
            "focus_tasks",
            "focus_composer",
            "do_it",
            "review",
            "toggle_ask",
        }
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Task actions only on the main screen (not under a dialog or the compare view)."""
        if action in self.MAIN_SCREEN_ACTIONS and self.screen is not self.screen_stack[0]:
            return False
        if action == "do_it":
            return self.review_ui.can_do_it()
        if action == "show_pane" and parameters == ("review",):
            task = self.selected_task()
            return task is not None and task.kind == "review"
        if action == "show_pane" and parameters == ("artifacts",):
            task = self.selected_task()
            return task is not None and bool(task.artifacts)
        return True

    def action_toggle_ask(self) -> None:
        """Switch the next new task between Code and Ask."""
        self.review_ui.toggle_ask()

    def action_do_it(self) -> None:
        """Ask task → Code task that makes the change it described."""
        self.review_ui.do_it()

    def action_review(self) -> None:
        """Pick what to review and start a review task."""
        self.review_ui.open_picker()

    def action_open_citation(self, href: str) -> None:
        """Open a cited `path:line` of the selected task in the file viewer."""
        citation = parse_href(href)
        if citation is not None:
            self.review_ui.open_citation(citation)

    @on(ChatView.CitationClicked)
    def _citation_clicked(self, event: ChatView.CitationClicked) -> None:
        self.review_ui.open_citation(event.citation)

    @on(ArtifactList.PreviewRequested)
    def _artifact_chosen(self, event: ArtifactList.PreviewRequested) -> None:
        artifact = event.artifact
        self.artifacts_ui.open_preview(artifact.path, artifact.name, artifact.mime_type)

    @on(PreviewRequested)
    def _preview_requested(self, event: PreviewRequested) -> None:
        self.artifacts_ui.open_preview(event.path, event.title)

    @on(ReviewPane.FindingChosen)
    def _finding_chosen(self, event: ReviewPane.FindingChosen) -> None:
        self.review_ui.show_finding(event.finding)

    @on(ReviewPane.FixRequested)
    def _fix_requested(self, event: ReviewPane.FixRequested) -> None:
        self.review_ui.fix_finding(event.finding)

    @on(CompareScreen.ReviewRequested)
    def _review_attempts(self, event: CompareScreen.ReviewRequested) -> None:
        self.review_ui.review_attempts(event.task_ids)

    def action_new_task(self) -> None:
        """The next message starts a new task."""
        self.task_actions.new_task()

    def action_interrupt(self) -> None:
        """Esc: leave a maximised pane, else stop the selected task's turn."""
        self.task_actions.interrupt()

    def action_show_pane(self, pane: str) -> None:
        """Show one of the panes of the selected task (in the panes layout, it gets the focus)."""
        self.panes_ui.show_pane(pane)

    def action_focus_pane(self, step: int) -> None:
        """Focus the next (or previous) pane on screen; in the tabs layout, show the next tab."""
        self.panes_ui.cycle_focus(step)

    def action_toggle_maximize(self) -> None:
        """Maximise the focused pane (the current tab in the tabs layout), or restore it."""
        self.panes_ui.toggle_maximize()

    def action_cycle_layout(self) -> None:
        """Layout: auto (panes when the terminal is large enough) → panes → tabs; remembered."""
        self.panes_ui.cycle_layout()

    def action_resize_split(self, delta: int) -> None:
        """Widen (or narrow) the left column of the panes layout; remembered."""
        self.panes_ui.resize_split(delta)

    def action_select_task(self, step: int) -> None:
        """Move to the next/previous task."""
        self.main_widget(TaskList).move(step)

    def action_mission(self) -> None:
        """Mission control: every task as a live tile, and the attention inbox (again: close it)."""
        self.mission_ui.open()

    def action_next_attention(self) -> None:
        """Jump to the next task that needs you (approval, failure, unseen result)."""
        self.mission_ui.next_attention()

    def action_copy(self) -> None:
        """Copy the selection, else the focused pane's current item, to the clipboard (OSC 52)."""
        copy_selection_or_focused(self.screen)

    def action_focus_tasks(self) -> None:
        """Focus the task list."""
        self.main_widget(TaskList).focus()

    def action_focus_composer(self) -> None:
        """Focus the composer."""
        self.main_widget(Composer).area.focus()

    def action_help(self) -> None:
        """Show every binding and slash command."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.effective_keymap()))

    def action_apply(self) -> None:
        """Apply the selected task's diff to the working tree."""
        self.task_actions.op(p.OP_APPLY, {"branch": False, "dry_run": False})

    def action_branch(self) -> None:
        """Commit the selected task's diff to its own branch."""
        self.task_actions.op(p.OP_APPLY, {"branch": True, "dry_run": False})

    def action_undo(self) -> None:
        """Undo the selected task's last turn."""
        self.task_actions.op(p.OP_UNDO)

    def action_compact(self) -> None:
        """Compact the selected task's history."""
        self.task_actions.op(p.OP_COMPACT)

    def action_cancel(self) -> None:
        """Cancel the selected task."""
        self.task_actions.op(p.OP_CANCEL)

    def action_retry(self) -> None:
        """Run the selected task again."""
        self.task_actions.op(p.OP_RETRY)

    def action_archive(self) -> None:
        """Archive the selected task (hidden from the list)."""
        self.task_actions.archive()

    def action_status(self) -> None:
        """Show model, mode, context, usage and cost of the selected task."""
        self.task_actions.status()

    def action_compare(self) -> None:
        """Compare the attempts of the selected task (or the latest tasks) side by side."""
        self.compare_ui.open()

    def effective_keymap(self) -> dict[str, str]:
        """Binding id → key after the user's [keymap]."""
        return dict(self.config.keymap)

    def help_text(self) -> str:
        """The help page as Markdown (also used by tests)."""
        return help_markdown(self.effective_keymap())

    def action_pane_key(self, pane: str, action: str) -> None:
        """Show a pane and run one of its key actions there (diff: hunks/files/split; log: follow)."""
        widgets: dict[str, type[Widget]] = {"diff": DiffView, "log": SandboxLog}
        if pane not in widgets:
            return
        self.action_show_pane(pane)
        widget = self.main_widget(widgets[pane])
        self.call_later(self.run_action, action, widget)

    def main_widget(self, widget_type: type[W]) -> W:
        """A widget of the main screen, whichever screen is on top (raises NoMatches when closing)."""
        if not self.screen_stack:
            raise NoMatches("the app is closing")
        return self.screen_stack[0].query_one(widget_type)
