"""The `attach_artifact` tool: copy a file the agent made (a screenshot, a plot, a report) out of the
task's checkout, as data, into the task's artifact store in the data folder.

The checkout is untrusted once the sandbox runs, so the copy goes through the same rules as every
other crossing: the path is checked lexically, folders are walked with `O_NOFOLLOW` from a
descriptor of the checkout (:class:`CheckoutRoot`), the file is opened `O_NOFOLLOW | O_NONBLOCK`,
and `fstat` must show the same regular file before and after the read (same inode, size and
modification time) — a link, FIFO, device, socket, folder or a file swapped or changed during the
copy is refused and nothing is kept. The type is sniffed from the bytes, never from the name.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath, read_bounded, split_relative
from codex_tui.boundary.terminal import strip_controls
from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_ARTIFACT, ITEM_COMPLETED, ITEM_STARTED
from codex_tui.tools.apply_patch import to_relative
from codex_tui.tools.arguments import ArgumentsError, optional_str, parse_json_object, required_str
from codex_tui.tools.base import ToolContext, ToolResult
from codex_tui.tools.view_image import sniff_image_type

MAX_ARTIFACT_BYTES: Final = 20 * 1024 * 1024
MAX_TASK_ARTIFACT_BYTES: Final = 100 * 1024 * 1024
NAME_MAX: Final = 100
CAPTION_MAX: Final = 500
SVG_TYPE: Final = "image/svg+xml"
PREVIEWABLE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Raster images a front end may render; SVG is untrusted XML and is treated as a plain file."""
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_UNSAFE_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9._+-]+")
ATTACH_ARTIFACT_DESCRIPTION: Final = (
    "Keep a file you produced (a screenshot, a plot, a report, a log) as an artifact of this task: it is "
    "copied out of the workspace, shown to the user and listed in the pull-request text. `path` is "
    "relative to the workspace (files elsewhere, e.g. /tmp, cannot be attached: write them into the "
    "workspace first); `caption` says in one sentence what it shows. Regular files only, at most "
    f"{MAX_ARTIFACT_BYTES // 1_048_576} MB each and {MAX_TASK_ARTIFACT_BYTES // 1_048_576} MB per task."
)


class ArtifactError(Exception):
    """The file cannot be attached; the message says why (it goes back to the model)."""


class ArtifactSink(Protocol):
    """Where copies go: the task's artifact store (`codex_tui.tasks.artifacts.ArtifactStore`)."""

    def remaining_bytes(self) -> int:
        """How many more bytes this task may keep as artifacts."""
        ...

    def save(self, item: dict[str, Any], data: bytes) -> dict[str, Any]:
        """Write the copy and record it; returns `item` with `path` set. Raises ArtifactError."""
        ...


@dataclass(slots=True, frozen=True)
class CopiedFile:
    """The bytes of a file read safely out of a checkout, with what was learnt about them."""

    data: bytes
    mime_type: str
    sha256: str


def sniff_mime(data: bytes) -> str:
    """The MIME type from a file's first bytes: raster images, SVG, PDF, UTF-8 text, else binary."""
    image = sniff_image_type(data[:16])
    if image is not None:
        return image
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith(b"<svg") or (
        head.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in head
    ):
        return SVG_TYPE
    if b"\0" not in data[:8192]:
        try:
            data[:8192].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as error:
            if error.start >= 8188 and len(data) > 8192:
                return "text/plain"  # a character cut by the sample's end
    return "application/octet-stream"


def is_previewable(mime_type: str) -> bool:
    """True for raster images a terminal preview may draw (never SVG: it is untrusted XML)."""
    return mime_type in PREVIEWABLE_TYPES


def sanitize_name(path: str) -> str:
    """A safe file name for the copy: the last path component, controls stripped, odd characters
    replaced, no leading dot, at most NAME_MAX characters ("artifact" when nothing is left)."""
    base = strip_controls(posixpath.basename(path.rstrip("/")))
    name = _UNSAFE_NAME_CHARS.sub("_", base).lstrip("._-")
    if len(name) > NAME_MAX:
        _stem, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 10 else ""
        name = name[: NAME_MAX - len(keep) - 1].rstrip("._-") + ("." + keep if keep else "")
    return name or "artifact"


def clean_caption(caption: str) -> str:
    """One line of at most CAPTION_MAX characters, control sequences removed."""
    text = " ".join(strip_controls(caption).split())
    return text if len(text) <= CAPTION_MAX else text[: CAPTION_MAX - 1] + "…"


def read_artifact(root: Path, relative: str, shown: str, max_bytes: int) -> CopiedFile:
    """Read the regular file `relative` beneath the checkout `root` without trusting it (blocking)."""
    try:
        with CheckoutRoot(root) as files, files.parent_of(relative) as (dir_fd, name):
            return _read_checked(dir_fd, name, shown, max_bytes)
    except FileNotFoundError:
        raise ArtifactError(f"cannot attach {shown}: no such file in the workspace") from None
    except UnsafePath as error:
        raise ArtifactError(f"cannot attach {shown}: {error}") from None
    except OSError as error:
        raise ArtifactError(f"cannot attach {shown}: {error.strerror or error}") from None


def _read_checked(dir_fd: int, name: str, shown: str, max_bytes: int) -> CopiedFile:
    listed = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    _check_kind(listed.st_mode, shown)
    _check_size(listed.st_size, shown, max_bytes)
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ArtifactError(
                f"cannot attach {shown}: it became a symbolic link while it was opened"
            ) from None
        raise
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or (before.st_dev, before.st_ino) != (
            listed.st_dev,
            listed.st_ino,
        ):
            raise ArtifactError(
                f"cannot attach {shown}: it was replaced while it was opened; nothing was copied"
            )
        _check_size(before.st_size, shown, max_bytes)
        try:
            data = read_bounded(fd, max_bytes, shown)
        except UnsafePath:
            raise ArtifactError(_too_large(shown, max_bytes, None)) from None
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(
        data
    ) != after.st_size:
        raise ArtifactError(f"cannot attach {shown}: it changed while it was copied; nothing was copied")
    return CopiedFile(data, sniff_mime(data), hashlib.sha256(data).hexdigest())


def _check_kind(mode: int, shown: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISLNK(mode):
        what = "a symbolic link (links are never followed; attach the file itself)"
    elif stat.S_ISDIR(mode):
        what = "a folder (attach the files in it one by one)"
    elif stat.S_ISFIFO(mode):
        what = "a FIFO"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "a special file"
    raise ArtifactError(f"cannot attach {shown}: it is {what}, not a regular file; nothing was copied")


def _check_size(size: int, shown: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise ArtifactError(_too_large(shown, max_bytes, size))


def _too_large(shown: str, max_bytes: int, size: int | None) -> str:
    limit = f"{max_bytes / 1_048_576:.1f} MB"
    if max_bytes < MAX_ARTIFACT_BYTES:
        limit += f" left of this task's {MAX_TASK_ARTIFACT_BYTES // 1_048_576} MB for artifacts"
    found = f"{size / 1_048_576:.1f} MB" if size is not None else "larger"
    return f"cannot attach {shown}: it is too large ({found}; the limit is {limit}); nothing was copied"


def attach_file(
    root: Path, relative: str, shown: str, caption: str, item_id: str, sink: ArtifactSink
) -> dict[str, Any]:
    """Copy one file into `sink` and return its `artifact` item (blocking); raises ArtifactError."""
    remaining = sink.remaining_bytes()
    if remaining <= 0:
        raise ArtifactError(
            f"cannot attach {shown}: this task already keeps {MAX_TASK_ARTIFACT_BYTES // 1_048_576} MB "
            "of artifacts (the limit)"
        )
    copied = read_artifact(root, relative, shown, min(MAX_ARTIFACT_BYTES, remaining))
    item: dict[str, Any] = {
        "id": item_id,
        "type": ITEM_ARTIFACT,
        "name": sanitize_name(relative),
        "caption": clean_caption(caption),
        "mime_type": copied.mime_type,
        "size": len(copied.data),
        "sha256": copied.sha256,
        "source": strip_controls(relative),
    }
    return sink.save(item, copied.data)


class AttachArtifactTool:
    """The `attach_artifact` tool, bound to one task's artifact store."""

    def __init__(self, sink: ArtifactSink) -> None:
        self.sink = sink
        self.spec = ToolSpec(
            name="attach_artifact",
            description=ATTACH_ARTIFACT_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path in the workspace."},
                    "caption": {"type": "string", "description": "What the file shows, in one sentence."},
                },
                "required": ["path"],
                "additionalProperties": False,
            },
        )

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Copy the file out of the checkout and emit an `artifact` item; errors go back to the model."""
        try:
            args = parse_json_object(arguments)
            shown = strip_controls(required_str(args, "path").strip())
            caption = optional_str(args, "caption") or ""
            relative = _resolve(shown, ctx)
            item_id = ctx.new_item_id()
            item = await asyncio.to_thread(
                attach_file, ctx.workspace, relative, shown, caption, item_id, self.sink
            )
        except (ArgumentsError, ArtifactError) as error:
            return ToolResult(str(error), success=False)
        ctx.emit(ITEM_STARTED, {"item": item})
        ctx.emit(ITEM_COMPLETED, {"item": item})
        kind = "image" if is_previewable(item["mime_type"]) else item["mime_type"]
        return ToolResult(
            f"attached {item['name']} ({kind}, {item['size']} bytes, sha256 {item['sha256'][:12]}…) "
            "as an artifact of this task"
        )


def _resolve(path: str, ctx: ToolContext) -> str:
    if not path:
        raise ArtifactError("missing `path`: give the file's path relative to the workspace")
    roots = (ctx.sandbox.workdir, str(ctx.workspace), os.path.realpath(ctx.workspace))
    relative = to_relative(path, roots=roots)
    if relative is None:
        raise ArtifactError(
            f"cannot attach {path}: it is outside the workspace; copy it into the workspace first "
            "and give a path relative to the workspace"
        )
    try:
        return "/".join(split_relative(relative))
    except UnsafePath as error:
        raise ArtifactError(f"cannot attach {path}: {error}") from None
