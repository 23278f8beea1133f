"""The `view_image` tool: attach an image file from the workspace to the conversation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath
from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_COMPLETED, ITEM_IMAGE, ITEM_STARTED
from codex_tui.tools.apply_patch import PatchPathError, relative_in_root, to_relative
from codex_tui.tools.arguments import ArgumentsError, parse_json_object, required_str
from codex_tui.tools.base import ToolContext, ToolResult

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
VIEW_IMAGE_DESCRIPTION: Final = (
    "Attach an image file from the workspace (PNG, JPEG, GIF or WebP) so you can look at it. "
    "`path` is relative to the workspace."
)


class ImageError(Exception):
    """The file cannot be attached; the message says why."""


@dataclass(slots=True)
class LoadedImage:
    """An image read from disk, ready to send as a data URL."""

    mime: str
    data: bytes

    @property
    def data_url(self) -> str:
        """`data:<mime>;base64,…`."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def sniff_image_type(header: bytes) -> str | None:
    """The MIME type from an image's first bytes, or None when it is not a supported image."""
    if header.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if header.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if header.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(header) >= 12 and header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "image/webp"
    return None


def load_workspace_image(
    root: Path, relative: str, shown: str, max_bytes: int = MAX_IMAGE_BYTES
) -> LoadedImage:
    """Read an image from a task's checkout without following links (blocking); raises ImageError."""
    try:
        with CheckoutRoot(root) as files:
            found = files.lstat(relative)
            if found is None:
                raise ImageError(f"image not found: {shown}")
            if stat.S_ISDIR(found.st_mode):
                raise ImageError(f"not a file: {shown}")
            if stat.S_ISREG(found.st_mode) and found.st_size > max_bytes:
                size = found.st_size / 1_048_576
                raise ImageError(
                    f"image too large: {shown} is {size:.1f} MB (limit {max_bytes // 1_048_576} MB)"
                )
            data = files.read_file(relative, max_bytes)
    except UnsafePath as error:
        raise ImageError(f"cannot attach {shown}: {error}") from None
    except OSError as error:
        raise ImageError(f"cannot read {shown}: {error.strerror or error}") from None
    return _checked_image(data, shown)


def _checked_image(data: bytes, shown: str) -> LoadedImage:
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise ImageError(f"not an image: {shown} is not a PNG, JPEG, GIF or WebP file")
    return LoadedImage(mime, data)


def load_image(path: Path, shown: str, max_bytes: int = MAX_IMAGE_BYTES) -> LoadedImage:
    """Read and check an image file (blocking: call it in a thread); raises ImageError."""
    try:
        if not path.exists():
            raise ImageError(f"image not found: {shown}")
        if not path.is_file():
            raise ImageError(f"not a file: {shown}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(
                f"image too large: {shown} is {size / 1_048_576:.1f} MB (limit {max_bytes // 1_048_576} MB)"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ImageError(f"cannot read {shown}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise ImageError(f"image too large: {shown} is over {max_bytes // 1_048_576} MB")
    return _checked_image(data, shown)


class ViewImageTool:
    """The `view_image` tool.

    With `copies` (a host folder outside the checkout), each image viewed is also kept there and the
    item names the copy (`preview_path`), so front ends can show it without opening the checkout.
    """

    def __init__(self, copies: Path | None = None) -> None:
        self.copies = copies
        self.spec = ToolSpec(
            name="view_image",
            description=VIEW_IMAGE_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Image path in the workspace."}},
                "required": ["path"],
                "additionalProperties": False,
            },
        )

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Check the path and the file, then return the image as a content part."""
        try:
            shown = required_str(parse_json_object(arguments), "path").strip()
            relative = _resolve(shown, ctx)
            image = await asyncio.to_thread(load_workspace_image, ctx.workspace, relative, shown)
        except (ArgumentsError, ImageError) as error:
            return ToolResult(str(error), success=False)
        item: dict[str, Any] = {"id": ctx.new_item_id(), "type": ITEM_IMAGE, "path": shown}
        if self.copies is not None:
            with contextlib.suppress(OSError):  # the preview is a convenience; the model has the image
                item["preview_path"] = await asyncio.to_thread(keep_copy, self.copies, item["id"], image)
        ctx.emit(ITEM_STARTED, {"item": item})
        ctx.emit(ITEM_COMPLETED, {"item": item})
        part = {"type": "image", "image_url": image.data_url, "name": shown}
        return ToolResult(f"attached image {shown}", images=[part])


def keep_copy(folder: Path, item_id: str, image: LoadedImage) -> str:
    """Write a viewed image (already checked, bounded) as a private new file; returns its path."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    extension = image.mime.rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", item_id)[:100]
    target = folder / f"{name}.{extension}"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(image.data)
    return str(target)


def _resolve(path: str, ctx: ToolContext) -> str:
    roots = (ctx.sandbox.workdir, str(ctx.workspace), os.path.realpath(ctx.workspace))
    relative = to_relative(path, roots=roots)
    if relative is None:
        raise ImageError(f"{path} is outside the workspace; give a path relative to the workspace")
    try:
        return relative_in_root(ctx.workspace, relative)
    except PatchPathError as error:
        raise ImageError(str(error)) from None
