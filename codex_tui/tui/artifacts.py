"""Artifacts in the TUI's model: what an `artifact` item says, and how the chat and pane word it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codex_tui.tools.artifact import is_previewable

ARTIFACT_ICON = "📎"


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One file a task kept: `path` is the host path of the copy in the data folder (trusted)."""

    id: str
    name: str
    caption: str
    mime_type: str
    size: int
    path: str
    source: str = ""

    @property
    def previewable(self) -> bool:
        """A raster image the preview draws (never SVG)."""
        return is_previewable(self.mime_type)


def parse_artifact(item_id: str, item: dict[str, Any]) -> ArtifactInfo | None:
    """The artifact an `artifact` item describes; None when it names no stored copy."""
    path = str(item.get("path") or "")
    if not path:
        return None
    size = item.get("size")
    return ArtifactInfo(
        id=item_id,
        name=str(item.get("name") or path.rsplit("/", 1)[-1]),
        caption=str(item.get("caption") or ""),
        mime_type=str(item.get("mime_type") or "application/octet-stream"),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
        path=path,
        source=str(item.get("source") or ""),
    )


def artifact_chat_text(artifact: ArtifactInfo) -> str:
    """`name — caption` (the chat shows it after the 📎 icon)."""
    return artifact.name + (f" — {artifact.caption}" if artifact.caption else "")
