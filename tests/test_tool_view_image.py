"""view_image: real image files in a workspace, and everything that is not one."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from codex_tui.protocol import ITEM_COMPLETED, ITEM_IMAGE
from codex_tui.tools.base import ToolContext, ToolResult
from codex_tui.tools.view_image import MAX_IMAGE_BYTES, ViewImageTool
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def setup(root: Path) -> tuple[Recorder, ToolContext]:
    recorder = Recorder()
    return recorder, make_context(root, RecordingSandbox(root), recorder)


async def view(ctx: ToolContext, path: str) -> ToolResult:
    return await ViewImageTool().run(json.dumps({"path": path}), ctx)


async def test_png_in_the_workspace_is_attached_as_a_data_url(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    data = png_1x1()
    (tmp_path / "shots/ui.png").write_bytes(data)
    recorder, ctx = setup(tmp_path)
    result = await view(ctx, "shots/ui.png")
    assert result.success
    assert result.images == [
        {
            "type": "image",
            "image_url": "data:image/png;base64," + base64.b64encode(data).decode(),
            "name": "shots/ui.png",
        }
    ]
    assert recorder.items(ITEM_COMPLETED) == [{"id": "item_1", "type": ITEM_IMAGE, "path": "shots/ui.png"}]


@pytest.mark.parametrize(
    ("name", "header", "mime"),
    [
        ("a.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        ("a.gif", b"GIF89a\x01\x00\x01\x00", "image/gif"),
        ("a.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
async def test_other_formats_are_recognised_by_their_magic_bytes(
    tmp_path: Path, name: str, header: bytes, mime: str
) -> None:
    (tmp_path / name).write_bytes(header + b"\x00" * 32)
    _, ctx = setup(tmp_path)
    result = await view(ctx, name)
    assert result.images[0]["image_url"].startswith(f"data:{mime};base64,")


async def test_absolute_path_under_the_workspace_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "ui.png").write_bytes(png_1x1())
    _, ctx = setup(tmp_path)
    assert (await view(ctx, str(tmp_path / "ui.png"))).success


async def test_missing_image_is_reported(tmp_path: Path) -> None:
    _, ctx = setup(tmp_path)
    result = await view(ctx, "nope.png")
    assert not result.success
    assert result.output == "image not found: nope.png"


async def test_a_text_file_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_text("definitely text\n")
    _, ctx = setup(tmp_path)
    result = await view(ctx, "fake.png")
    assert not result.success
    assert result.output == "not an image: fake.png is not a PNG, JPEG, GIF or WebP file"
    assert result.images == []


async def test_an_oversized_image_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.write(png_1x1())
        handle.truncate(MAX_IMAGE_BYTES + 1)
    _, ctx = setup(tmp_path)
    result = await view(ctx, "big.png")
    assert not result.success
    assert result.output.startswith("image too large: big.png")


async def test_a_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    _, ctx = setup(tmp_path)
    assert (await view(ctx, "dir")).output == "not a file: dir"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../outside.png", "outside the workspace"),
        ("/etc/passwd", "outside the workspace"),
        ("link.png", "links in the workspace are not followed"),
        ("linkdir/outside.png", "links in the workspace are not followed"),
    ],
)
async def test_images_outside_the_workspace_are_refused(tmp_path: Path, path: str, message: str) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(png_1x1())
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    (root / "linkdir").symlink_to(tmp_path)
    _, ctx = setup(root)
    result = await view(ctx, path)
    assert not result.success
    assert message in result.output
    assert result.images == []


async def test_missing_path_argument_is_reported(tmp_path: Path) -> None:
    _, ctx = setup(tmp_path)
    result = await ViewImageTool().run("{}", ctx)
    assert result.output == "missing or invalid field `path`: expected a string"


async def test_a_viewed_image_is_kept_as_a_private_host_copy_for_previews(tmp_path: Path) -> None:
    workspace, copies = tmp_path / "ws", tmp_path / "data" / "viewed"
    workspace.mkdir()
    data = png_1x1()
    (workspace / "ui.png").write_bytes(data)
    recorder, ctx = setup(workspace)
    result = await ViewImageTool(copies).run(json.dumps({"path": "ui.png"}), ctx)
    assert result.success
    [item] = recorder.items(ITEM_COMPLETED)
    kept = Path(item["preview_path"])
    assert kept.parent == copies and kept.read_bytes() == data
    assert kept.stat().st_mode & 0o777 == 0o600 and copies.stat().st_mode & 0o777 == 0o700
    (workspace / "ui.png").write_bytes(b"changed by the sandbox later")
    assert kept.read_bytes() == data  # the preview never reads the checkout again
