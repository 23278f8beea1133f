"""Images drawn in the terminal with textual-image: Kitty graphics, Sixel or Unicode half-blocks.

textual-image asks the terminal what it supports when it is imported, which must happen before
Textual takes over the terminal; this module is imported by the app for that reason. The questions
wait for answers a terminal without graphics never sends (tmux, most Linux terminals: ~0.6 s of
start-up, and a warning printed before the app starts), so they are asked only of terminals known
for Kitty graphics or Sixel (`graphics_terminal`); elsewhere pictures are drawn with half-blocks.
`CODEX_TUI_IMAGES=halfcell` forces half-blocks (tests and snapshots: the same output on every
machine), `CODEX_TUI_IMAGES=auto` asks any terminal. The widget's size in cells is computed here
from the picture's own size, so the layout does not depend on the terminal's reported cell size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

from PIL import Image as PILImage
from textual.widget import Widget

RENDERER_ENV = "CODEX_TUI_IMAGES"
"""`halfcell` forces Unicode half-blocks, `auto` asks any terminal; unset: see graphics_terminal."""
GRAPHICS_TERM_PROGRAMS = frozenset({"WezTerm", "iTerm.app", "ghostty", "mintty", "rio", "contour"})
GRAPHICS_TERMS = ("xterm-kitty", "foot", "mlterm", "xterm-ghostty", "contour", "yaft", "-sixel")


def graphics_terminal(env: Mapping[str, str]) -> bool:
    """Is this a terminal worth asking about Kitty graphics or Sixel (it will answer quickly)?"""
    setting = env.get(RENDERER_ENV, "").strip().lower()
    if setting in ("halfcell", "auto"):
        return setting == "auto"
    term = env.get("TERM", "")
    return bool(
        env.get("KITTY_WINDOW_ID")
        or env.get("WT_SESSION")
        or env.get("KONSOLE_VERSION")
        or env.get("TERM_PROGRAM", "") in GRAPHICS_TERM_PROGRAMS
        or any(term == name or (name.startswith("-") and term.endswith(name)) for name in GRAPHICS_TERMS)
    )


@contextlib.contextmanager
def _unasked_terminal() -> Iterator[None]:
    """While textual-image is imported, it sees no terminal: it asks nothing and picks text output."""
    real = sys.__stdout__
    sys.__stdout__ = io.StringIO()  # type: ignore[misc,assignment]  # isatty() is False
    try:
        yield
    finally:
        sys.__stdout__ = real  # type: ignore[misc]


logging.getLogger("textual_image").setLevel(logging.ERROR)  # nothing printed before the app starts
with contextlib.nullcontext() if graphics_terminal(os.environ) else _unasked_terminal():
    from textual_image.renderable import Image as AutoRenderable
    from textual_image.renderable import UnicodeImage
    from textual_image.widget import HalfcellImage
    from textual_image.widget import Image as AutoImage
MAX_DECODED_SIDE = 1024
"""Pictures are shrunk to this many pixels per side once decoded (a preview needs no more)."""
MAX_IMAGE_PIXELS = 25_000_000
"""Larger pictures are refused before decoding (a decompression bomb must not eat the memory)."""
MAX_IMAGE_SIDE = 16_384
"""Longer sides are refused before decoding: Pillow's memory grows with the rows, not only the
pixels (a 1×20,000,000 PNG of 40 KB takes 2.6 GB)."""
CELL_ASPECT = 2.0
"""A terminal cell is about twice as tall as it is wide."""
FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})


def forced_halfcell() -> bool:
    """The half-block renderer is forced (CODEX_TUI_IMAGES=halfcell)."""
    return os.environ.get(RENDERER_ENV, "").strip().lower() == "halfcell"


def renderer_name() -> str:
    """Which renderer previews use here: `halfcell`, `sixel`, `tgp` or `unicode`."""
    if forced_halfcell() or AutoRenderable is UnicodeImage:
        return "halfcell"  # no graphics protocol detected: half-blocks still show colours
    return AutoRenderable.__module__.rsplit(".", 1)[-1]


def load_image(path: Path) -> PILImage.Image | str:
    """Decode a PNG/JPEG/GIF/WebP file into a small RGB picture (blocking), or why it cannot be."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as image:
                if image.format not in FORMATS:
                    return f"{path.name}: not a PNG, JPEG, GIF or WebP image"
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
                    return f"{path.name}: {width}×{height} pixels is too large to preview"
                image.draft("RGB", (MAX_DECODED_SIDE, MAX_DECODED_SIDE))
                picture = image.convert("RGB")
    except Exception as exc:  # a hostile file makes Pillow raise SyntaxError, struct.error, EOFError…
        return f"{path.name}: cannot decode the image ({type(exc).__name__}: {exc})"
    picture.thumbnail((MAX_DECODED_SIDE, MAX_DECODED_SIDE))
    return picture


def fit_cells(pixel_width: int, pixel_height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest (columns, rows) box of the picture's shape within the limits (at least 1×1)."""
    if pixel_width <= 0 or pixel_height <= 0:
        return 1, 1
    ratio = pixel_width / (pixel_height / CELL_ASPECT)
    width, height = float(max_width), max_width / ratio
    if height > max_height:
        width, height = max_height * ratio, float(max_height)
    return max(1, round(width)), max(1, round(height))


def image_widget(
    picture: PILImage.Image, max_width: int, max_height: int, *, id: str | None = None, classes: str = ""
) -> Widget:
    """A widget drawing `picture` in at most max_width × max_height cells, keeping its shape."""
    widget_type = HalfcellImage if renderer_name() == "halfcell" else AutoImage
    widget = widget_type(picture, id=id, classes=classes)
    width, height = fit_cells(picture.width, picture.height, max_width, max_height)
    widget.styles.width = width
    widget.styles.height = height
    return widget
