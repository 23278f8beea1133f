"""Images in from the clipboard: the platform's clipboard tool, run off the event loop, into a private file.

Wayland has `wl-paste`, X11 `xclip`, macOS `pngpaste`; whichever is on PATH is used. The bytes must
be a PNG; they are saved with mode 0600 in a 0700 folder of the app's data folder (never a
world-readable /tmp file), and the composer attaches that file like any other image.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CLIPBOARD_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("wl-paste", "--no-newline", "--type", "image/png"),
    ("xclip", "-selection", "clipboard", "-t", "image/png", "-o"),
    ("pngpaste", "-"),
)
"""Tried in order; the first whose program is on PATH is run."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_CLIPBOARD_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 10.0
NO_TOOL = "No clipboard tool found: install wl-clipboard (Wayland), xclip (X11) or pngpaste (macOS)"
NO_IMAGE = "The clipboard holds no image (copy a PNG image first, or paste a file path)"


class ClipboardError(Exception):
    """No image could be read from the clipboard; the message says why."""


def clipboard_command(which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The clipboard command for this machine, with its program's full path, or None."""
    for command in CLIPBOARD_COMMANDS:
        program = which(command[0])
        if program:
            return [program, *command[1:]]
    return None


def read_clipboard_image(command: list[str] | None = None, timeout: float = TIMEOUT_S) -> bytes:
    """The clipboard's PNG bytes (blocking: call from a thread); raises ClipboardError."""
    command = command or clipboard_command()
    if command is None:
        raise ClipboardError(NO_TOOL)
    try:
        result = subprocess.run(
            command, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ClipboardError(f"{Path(command[0]).name} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ClipboardError(f"Cannot run {Path(command[0]).name}: {exc.strerror or exc}") from None
    data = result.stdout
    if result.returncode != 0 or not data.startswith(PNG_MAGIC):
        raise ClipboardError(NO_IMAGE)
    if len(data) > MAX_CLIPBOARD_BYTES:
        raise ClipboardError(f"The clipboard image is over {MAX_CLIPBOARD_BYTES // 1_048_576} MB")
    return data


def pasted_name() -> str:
    """`pasted-<time>-<random>.png`: a new name for each paste."""
    return f"pasted-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}.png"


def save_pasted_image(data: bytes, folder: Path) -> Path:
    """Write `data` to a new 0600 file (see `pasted_name`) in `folder` (made 0700)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / pasted_name()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def paste_image(folder: Path, command: list[str] | None = None) -> Path:
    """Read the clipboard's image and save it privately; returns the file (blocking)."""
    return save_pasted_image(read_clipboard_image(command), folder)
