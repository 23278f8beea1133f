"""What a file preview shows: a picture, bounded text, or "binary file, N bytes" (loaded in a thread).

Only raster images (PNG, JPEG, GIF, WebP, sniffed from the bytes) are drawn; SVG and everything else
is shown as text when it decodes as UTF-8, with terminal control sequences removed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image as PILImage

from codex_tui.boundary.terminal import strip_controls
from codex_tui.tools.artifact import is_previewable
from codex_tui.tools.view_image import sniff_image_type
from codex_tui.tui.images import load_image

MAX_TEXT_BYTES = 256 * 1024
"""Text beyond this is cut (the preview says so)."""
PreviewKind = Literal["image", "text", "binary", "error"]


@dataclass(slots=True)
class Preview:
    """A loaded preview: `picture` for images, `text` for text, the message otherwise."""

    kind: PreviewKind
    title: str
    size: int = 0
    text: str = ""
    picture: PILImage.Image | None = None
    truncated: bool = False


def load_preview(path: Path, title: str, max_text: int = MAX_TEXT_BYTES) -> Preview:
    """Read `path` (a trusted host file: an artifact's copy, an image the user attached); blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return Preview("error", title, text=f"Cannot open {path.name}: {exc.strerror or exc}")
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return Preview("error", title, text=f"{path.name} is not a regular file")
        head = handle.read(max_text + 1)
    size = info.st_size
    mime = sniff_image_type(head[:16]) or ""
    if is_previewable(mime):
        picture = load_image(path)
        if isinstance(picture, str):
            return Preview("error", title, size, text=picture)
        return Preview("image", title, size, picture=picture)
    body = head[:max_text]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 3 or b"\x00" in body:
            return Preview("binary", title, size, text=f"binary file, {size:,} bytes")
        text = body[: exc.start].decode("utf-8")
    if "\x00" in text:
        return Preview("binary", title, size, text=f"binary file, {size:,} bytes")
    return Preview("text", title, size, text=strip_controls(text), truncated=len(head) > max_text)
