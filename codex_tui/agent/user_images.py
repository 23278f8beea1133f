"""Images the user attaches to a message: checked, then loaded as content parts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from codex_tui.tools.view_image import ImageError, load_image, sniff_image_type


def load_image_parts(paths: list[Path]) -> list[dict[str, Any]]:
    """Content parts for images the user attached (blocking); ValueError says which file is wrong."""
    parts: list[dict[str, Any]] = []
    for path in paths:
        try:
            image = load_image(path, str(path))
        except ImageError as exc:
            raise ValueError(str(exc)) from None
        parts.append({"type": "image", "image_url": image.data_url, "name": path.name})
    return parts


async def load_images(paths: list[Path]) -> list[dict[str, Any]]:
    """`load_image_parts` in a thread; no parts for no paths."""
    return await asyncio.to_thread(load_image_parts, paths) if paths else []


def check_image_paths(paths: list[Path]) -> None:
    """A quick check (reads 16 bytes each) that every path is an image; raises ValueError."""
    for path in paths:
        try:
            with path.open("rb") as handle:
                header = handle.read(16)
        except FileNotFoundError:
            raise ValueError(f"image not found: {path}") from None
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        if sniff_image_type(header) is None:
            raise ValueError(f"not an image: {path} is not a PNG, JPEG, GIF or WebP file")


def image_names(parts: list[dict[str, Any]]) -> list[str]:
    """The file names of image parts, for the user_message event."""
    return [str(part.get("name", "image")) for part in parts]
