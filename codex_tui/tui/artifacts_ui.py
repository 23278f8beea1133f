"""The App's artifact behaviour, kept out of app.py: the Artifacts tab and the preview screen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import TabbedContent

from codex_tui.tui.screens.preview import PreviewScreen
from codex_tui.tui.state import TaskModel
from codex_tui.tui.widgets.artifact_list import ArtifactList

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp


class ArtifactsController:
    """Shows the Artifacts tab only for tasks that kept files, and opens previews."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app
        self._shown: bool | None = None

    def sync_tab(self, task: TaskModel | None) -> None:
        """The Artifacts tab is there only when the selected task has artifacts."""
        wanted = task is not None and bool(task.artifacts)
        if wanted == self._shown:
            return
        self._shown = wanted
        tabs = self.app.main_widget(TabbedContent)
        if wanted:
            tabs.show_tab("artifacts")
        else:
            if tabs.active == "artifacts":
                tabs.active = "chat"
            tabs.hide_tab("artifacts")

    def render(self, task: TaskModel) -> None:
        """Fill the Artifacts pane from the task's artifacts."""
        self.app.main_widget(ArtifactList).show_artifacts(task.artifacts)

    def open_preview(self, path: str, title: str, detail: str = "") -> None:
        """Preview a trusted host file (an artifact's copy, an image the user attached)."""
        if not path:
            return
        if isinstance(self.app.screen, PreviewScreen):
            self.app.screen.dismiss(None)
        self.app.push_screen(PreviewScreen(Path(path), title, detail))
