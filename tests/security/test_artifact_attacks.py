"""Attacks on the artifact copy-out and its preview, as a task would make them: special and swapped
files in the checkout, hostile names, images built to crash or exhaust the previewer, many files.

The copy runs on the host against a real checkout folder (what the sandbox leaves there); links
swapped from inside a real container are in tests/test_artifacts_docker.py.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import struct
import threading
import zlib
from pathlib import Path

import pytest

from codex_tui.boundary.terminal import strip_controls
from codex_tui.tasks.artifacts import MAX_TASK_ARTIFACTS, ArtifactStore
from codex_tui.tools.artifact import ArtifactError, attach_file
from codex_tui.tui.images import load_image
from codex_tui.tui.preview import load_preview

BROKEN_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAACgAAAAeCAIAAADRv8uKAAAADElEQVR4nO3NMQEAAAQAMJz6hxJLBZ9nK7Cc7vhQL6tYLBaL"
    "xWKxWCwWi08W5uMBGPa2QY4AAAAASUVORK5CYII="
)
"""A 101-byte PNG found by fuzzing on which Pillow raises SyntaxError (not OSError) while decoding."""


def _png(width: int, height: int) -> bytes:
    """A valid grey PNG of any size, all zeros: it compresses to almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * ((width + 1) * height), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A task checkout as the sandbox left it."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """The task's artifact store in the data folder."""
    return ArtifactStore(tmp_path / "data", "task-attacked")


def _attach(checkout: Path, store: ArtifactStore, relative: str) -> dict[str, object]:
    return attach_file(checkout, relative, relative, "", "item", store)


# --- special files -----------------------------------------------------------------------------


def test_sparse_terabyte_file_is_refused_before_a_byte_is_read(checkout: Path, store: ArtifactStore) -> None:
    with open(checkout / "huge.bin", "wb") as handle:
        handle.truncate(1 << 40)
    with pytest.raises(ArtifactError, match="too large"):
        _attach(checkout, store, "huge.bin")
    assert store.items() == []


def test_unix_socket_is_refused(checkout: Path, store: ArtifactStore, tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(checkout / "s.png"))
    try:
        with pytest.raises(ArtifactError, match="a socket, not a regular file"):
            _attach(checkout, store, "s.png")
    finally:
        listener.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_device_node_is_refused_without_being_opened(checkout: Path, store: ArtifactStore) -> None:
    os.mknod(checkout / "zero.png", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    with pytest.raises(ArtifactError, match="a device, not a regular file"):
        _attach(checkout, store, "zero.png")
    assert store.items() == []


def test_links_fifos_and_files_swapped_in_a_loop_never_copy_a_host_file_or_block(
    checkout: Path, store: ArtifactStore, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.png"
    secret.write_bytes(b"HOST-SECRET")
    stop = threading.Event()

    def swap() -> None:
        target = checkout / "shot.png"
        while not stop.is_set():
            for kind in ("file", "link", "fifo", "file", "dir-link"):
                aside = checkout / ".next"
                if kind == "file":
                    aside.write_bytes(b"inside")
                elif kind == "link":
                    aside.symlink_to(secret)
                elif kind == "fifo":
                    os.mkfifo(aside)
                else:
                    aside.symlink_to(tmp_path)
                os.replace(aside, target)

    racer = threading.Thread(target=swap, daemon=True)
    racer.start()
    copied = refused = 0
    try:
        for _ in range(300):
            try:
                item = _attach(checkout, store, "shot.png")
            except ArtifactError:
                refused += 1
                continue
            copied += 1
            assert Path(str(item["path"])).read_bytes() == b"inside"
    finally:
        stop.set()
        racer.join()
    assert copied + refused == 300
    assert all(b"HOST-SECRET" not in Path(str(item["path"])).read_bytes() for item in store.items())


# --- hostile names and many files ---------------------------------------------------------------


def test_name_with_escapes_and_bidi_controls_is_kept_inert(checkout: Path, store: ArtifactStore) -> None:
    hostile = "\x1b]52;c;aGk=\x07shot\u202egnp.exe\x1b[2J.png"
    (checkout / hostile).write_bytes(b"text")
    item = attach_file(checkout, hostile, strip_controls(hostile), "\x1b[31mred\ncaption", "i1", store)
    copy = Path(str(item["path"]))
    assert copy.parent == store.folder and copy.read_bytes() == b"text"
    for key in ("name", "source", "caption"):
        value = str(item[key])
        assert value == strip_controls(value) and "\x1b" not in value and "\u202e" not in value
    assert "\n" not in str(item["caption"])
    assert all(c.isascii() and (c.isalnum() or c in "._+-") for c in copy.name)


def test_many_empty_artifacts_stop_at_the_task_limit(checkout: Path, store: ArtifactStore) -> None:
    for n in range(MAX_TASK_ARTIFACTS + 1):
        (checkout / f"e{n}.txt").write_bytes(b"")
    for n in range(MAX_TASK_ARTIFACTS):
        _attach(checkout, store, f"e{n}.txt")
    with pytest.raises(ArtifactError, match=f"already keeps {MAX_TASK_ARTIFACTS} artifacts"):
        _attach(checkout, store, f"e{MAX_TASK_ARTIFACTS}.txt")
    assert len(store.items()) == MAX_TASK_ARTIFACTS
    assert len(list(store.folder.iterdir())) == MAX_TASK_ARTIFACTS + 1  # the copies and the manifest


# --- images built against the previewer ---------------------------------------------------------


def test_broken_png_that_makes_pillow_raise_syntax_error_is_an_error_preview(
    checkout: Path, store: ArtifactStore
) -> None:
    (checkout / "broken.png").write_bytes(BROKEN_PNG)
    item = _attach(checkout, store, "broken.png")
    assert item["mime_type"] == "image/png"
    preview = load_preview(Path(str(item["path"])), "broken.png")
    assert preview.kind == "error" and "cannot decode the image" in preview.text


@pytest.mark.parametrize(
    ("width", "height"),
    [(1, 20_000_000), (100_000, 100_000), (20_000, 2), (6_000, 6_000)],
)
def test_images_too_large_to_preview_are_refused_before_decoding(
    tmp_path: Path, width: int, height: int
) -> None:
    bomb = tmp_path / "bomb.png"
    small = _png(1, 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    bomb.write_bytes(small[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + small[33:])
    result = load_image(bomb)
    assert isinstance(result, str)
    assert "too large to preview" in result or "decompression bomb" in result


def test_tall_thin_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "tall.png"
    bomb.write_bytes(_png(1, 1_000_000))
    assert len(bomb.read_bytes()) < 10_000
    result = load_image(bomb)
    assert isinstance(result, str) and "1×1000000 pixels is too large to preview" in result


def test_image_within_the_limits_still_previews(tmp_path: Path) -> None:
    picture = tmp_path / "ok.png"
    picture.write_bytes(_png(300, 200))
    result = load_image(picture)
    assert not isinstance(result, str) and result.size == (300, 200)
