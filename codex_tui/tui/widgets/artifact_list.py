"""The Artifacts pane: the files a task kept (name, type, size, caption); Enter or a click previews one."""

from __future__ import annotations

from textual import on
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from codex_tui.tui.artifacts import ARTIFACT_ICON, ArtifactInfo
from codex_tui.tui.widgets.composer import human_size
from codex_tui.tui.widgets.highlight import clean_line

EMPTY_TEXT = "No artifacts"


def artifact_row(artifact: ArtifactInfo) -> Content:
    """`📎 shot.png  image/png · 48 KB` and the caption below it (never parsed as markup)."""
    parts: list[str | tuple[str, str]] = [
        (f"{ARTIFACT_ICON} ", ""),
        (clean_line(artifact.name), "bold"),
        (f"  {clean_line(artifact.mime_type)} · {human_size(artifact.size)}", "$text-muted"),
    ]
    if artifact.caption:
        parts.append(("\n   " + clean_line(artifact.caption), "italic"))
    return Content.assemble(*parts)


class ArtifactList(OptionList):
    """One option per artifact of the selected task, newest last."""

    class PreviewRequested(Message):
        """The user chose an artifact to look at."""

        def __init__(self, artifact: ArtifactInfo) -> None:
            super().__init__()
            self.artifact = artifact

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.artifacts: list[ArtifactInfo] = []

    def show_artifacts(self, artifacts: list[ArtifactInfo]) -> None:
        """List `artifacts` (unchanged lists keep the highlighted row)."""
        if artifacts == self.artifacts:
            return
        highlighted = self.highlighted
        self.artifacts = list(artifacts)
        if artifacts:
            self.set_options([Option(artifact_row(a), id=a.id) for a in artifacts])
        else:
            self.set_options([Option(Content(EMPTY_TEXT), disabled=True)])
        if artifacts:
            self.highlighted = min(highlighted or 0, len(artifacts) - 1)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self.artifacts):
            self.post_message(self.PreviewRequested(self.artifacts[event.option_index]))
