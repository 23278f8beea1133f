"""attach_artifact on the local backend: files copied out as data, and everything that must be refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from codex_tui.protocol import ITEM_ARTIFACT, ITEM_COMPLETED, ITEM_STARTED
from codex_tui.tasks.artifacts import ArtifactStore, list_artifacts
from codex_tui.tools.artifact import (
    MAX_ARTIFACT_BYTES,
    ArtifactError,
    AttachArtifactTool,
    attach_file,
    is_previewable,
    sanitize_name,
    sniff_mime,
)
from codex_tui.tools.base import ToolContext, ToolResult
from codex_tui.tools.registry import run_tool
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context
from tests.test_tool_view_image import png_1x1


def setup(
    tmp_path: Path, *, max_total_bytes: int = 100 * 1024 * 1024
) -> tuple[Path, Recorder, ToolContext, ArtifactStore]:
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    recorder = Recorder()
    store = ArtifactStore(tmp_path / "data", "task-1", max_total_bytes=max_total_bytes)
    return workspace, recorder, make_context(workspace, RecordingSandbox(workspace), recorder), store


async def attach(ctx: ToolContext, store: ArtifactStore, path: str, caption: str = "") -> ToolResult:
    tool = AttachArtifactTool(store)
    return await run_tool("attach_artifact", json.dumps({"path": path, "caption": caption}), ctx, [tool])


async def test_png_is_copied_into_the_data_folder_with_its_hash(tmp_path: Path) -> None:
    workspace, recorder, ctx, store = setup(tmp_path)
    (workspace / "shots").mkdir()
    data = png_1x1()
    (workspace / "shots/home page.png").write_bytes(data)
    result = await attach(ctx, store, "shots/home page.png", "The home page at 1280×800")
    assert result.success, result.output
    [item] = recorder.items(ITEM_COMPLETED)
    assert recorder.items(ITEM_STARTED) == [item]
    assert item["type"] == ITEM_ARTIFACT
    assert item["name"] == "home_page.png"
    assert item["caption"] == "The home page at 1280×800"
    assert item["mime_type"] == "image/png"
    assert item["size"] == len(data)
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    assert item["source"] == "shots/home page.png"
    copy = Path(item["path"])
    assert copy.parent == tmp_path / "data" / "artifacts" / "task-1"
    assert copy.read_bytes() == data
    assert list_artifacts(tmp_path / "data", "task-1") == [item]
    assert "attached home_page.png (image" in result.output


async def test_artifact_survives_the_checkout_being_removed(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "report.txt").write_text("all green\n")
    assert (await attach(ctx, store, "report.txt")).success
    (workspace / "report.txt").unlink()
    workspace.rmdir()
    [item] = list_artifacts(tmp_path / "data", "task-1")
    assert Path(item["path"]).read_text() == "all green\n"
    assert item["mime_type"] == "text/plain"


async def test_absolute_path_under_the_workspace_is_accepted(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "plot.png").write_bytes(png_1x1())
    result = await attach(ctx, store, f"{ctx.sandbox.workdir}/plot.png")
    assert result.success, result.output


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "outside the workspace"),
        ("../outside.txt", "leaves the workspace"),
        (".git/config", ".git"),
        ("", "missing `path`"),
        ("missing.png", "no such file"),
    ],
)
async def test_bad_paths_are_refused_with_a_clear_message(tmp_path: Path, path: str, message: str) -> None:
    _workspace, recorder, ctx, store = setup(tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    result = await attach(ctx, store, path)
    assert not result.success
    assert message in result.output
    assert recorder.events == []
    assert store.items() == []


async def test_link_to_a_host_file_is_refused_and_nothing_copied(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "passwd.png").symlink_to("/etc/passwd")
    result = await attach(ctx, store, "passwd.png")
    assert not result.success
    assert "symbolic link" in result.output and "nothing was copied" in result.output
    assert not (tmp_path / "data" / "artifacts").exists()


async def test_linked_folder_on_the_way_is_refused(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "etc").symlink_to("/etc")
    result = await attach(ctx, store, "etc/passwd")
    assert not result.success
    assert "is not a folder" in result.output and "symbolic link" in result.output


async def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    os.mkfifo(workspace / "pipe.png")
    result = await attach(ctx, store, "pipe.png")
    assert not result.success
    assert "a FIFO, not a regular file" in result.output


async def test_folder_is_refused(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "shots").mkdir()
    result = await attach(ctx, store, "shots")
    assert not result.success and "a folder" in result.output


async def test_file_over_the_artifact_limit_is_refused(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    with (workspace / "huge.bin").open("wb") as handle:
        handle.truncate(MAX_ARTIFACT_BYTES + 1)
    result = await attach(ctx, store, "huge.bin")
    assert not result.success
    assert "too large" in result.output and "the limit is 20.0 MB" in result.output
    assert store.items() == []


async def test_task_limit_counts_earlier_artifacts(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path, max_total_bytes=1000)
    (workspace / "a.txt").write_text("a" * 600)
    (workspace / "b.txt").write_text("b" * 600)
    assert (await attach(ctx, store, "a.txt")).success
    result = await attach(ctx, store, "b.txt")
    assert not result.success and "too large" in result.output and "left of this task" in result.output
    assert [item["name"] for item in store.items()] == ["a.txt"]
    assert sorted(p.name for p in store.folder.iterdir()) == ["001-a.txt", "manifest.json"]


def test_file_changed_during_the_copy_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, _recorder, _ctx, store = setup(tmp_path)
    source = workspace / "log.txt"
    source.write_text("first\n")
    real_read = os.read
    appended: list[bool] = []

    def read_then_append(fd: int, size: int) -> bytes:
        chunk = real_read(fd, size)
        if chunk and not appended:
            appended.append(True)
            with source.open("a") as handle:
                handle.write("more\n")
        return chunk

    monkeypatch.setattr("codex_tui.boundary.safe_fs.os.read", read_then_append)
    with pytest.raises(ArtifactError, match="changed while it was copied"):
        attach_file(workspace, "log.txt", "log.txt", "", "item_1", store)
    assert store.items() == []


def test_file_swapped_for_another_between_listing_and_opening_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, _recorder, _ctx, store = setup(tmp_path)
    (workspace / "shot.png").write_bytes(png_1x1())
    (workspace / "other.png").write_bytes(png_1x1())
    real_open = os.open

    def swap_then_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path == "shot.png" and kwargs.get("dir_fd") is not None:
            os.rename("other.png", "shot.png", src_dir_fd=kwargs["dir_fd"], dst_dir_fd=kwargs["dir_fd"])
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("codex_tui.tools.artifact.os.open", swap_then_open)
    with pytest.raises(ArtifactError, match="replaced while it was opened"):
        attach_file(workspace, "shot.png", "shot.png", "", "item_1", store)
    assert store.items() == []


def test_link_swapped_in_between_listing_and_opening_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, _recorder, _ctx, store = setup(tmp_path)
    (workspace / "shot.png").write_bytes(png_1x1())
    real_open = os.open

    def link_then_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path == "shot.png" and kwargs.get("dir_fd") is not None:
            os.unlink("shot.png", dir_fd=kwargs["dir_fd"])
            os.symlink("/etc/passwd", "shot.png", dir_fd=kwargs["dir_fd"])
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("codex_tui.tools.artifact.os.open", link_then_open)
    with pytest.raises(ArtifactError, match="became a symbolic link"):
        attach_file(workspace, "shot.png", "shot.png", "", "item_1", store)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png_1x1(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b"<svg onload='alert(1)'></svg>", "image/svg+xml"),
        (b"%PDF-1.7\n", "application/pdf"),
        ("résumé\n".encode(), "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
    ],
)
def test_type_is_sniffed_from_the_bytes(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime


async def test_png_named_txt_is_still_an_image_and_svg_is_never_previewable(tmp_path: Path) -> None:
    workspace, recorder, ctx, store = setup(tmp_path)
    (workspace / "notes.txt").write_bytes(png_1x1())
    (workspace / "logo.png").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    assert (await attach(ctx, store, "notes.txt")).success
    assert (await attach(ctx, store, "logo.png")).success
    first, second = recorder.items(ITEM_COMPLETED)
    assert (first["mime_type"], second["mime_type"]) == ("image/png", "image/svg+xml")
    assert is_previewable(first["mime_type"]) and not is_previewable(second["mime_type"])


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("shots/ok-1.png", "ok-1.png"),
        ("../../.bashrc", "bashrc"),
        ("a\x1b]52;c;ZXZpbA==\x07b.png", "ab.png"),
        ("weird name;rm -rf $(x).png", "weird_name_rm_-rf_x_.png"),
        ("...", "artifact"),
        ("x" * 300 + ".png", "x" * 96 + ".png"),
    ],
)
def test_copy_names_are_sanitised(path: str, name: str) -> None:
    assert sanitize_name(path) == name


async def test_caption_loses_control_sequences_and_newlines(tmp_path: Path) -> None:
    workspace, recorder, ctx, store = setup(tmp_path)
    (workspace / "a.txt").write_text("x")
    assert (await attach(ctx, store, "a.txt", "line one\n\x1b[31mred\x1b[0m")).success
    [item] = recorder.items(ITEM_COMPLETED)
    assert item["caption"] == "line one red"


async def test_two_artifacts_with_the_same_name_keep_both_copies(tmp_path: Path) -> None:
    workspace, _recorder, ctx, store = setup(tmp_path)
    (workspace / "a").mkdir()
    (workspace / "b").mkdir()
    (workspace / "a/shot.png").write_bytes(png_1x1())
    (workspace / "b/shot.png").write_bytes(png_1x1() + b"x")
    assert (await attach(ctx, store, "a/shot.png")).success
    assert (await attach(ctx, store, "b/shot.png")).success
    first, second = store.items()
    assert Path(first["path"]).name == "001-shot.png" and Path(second["path"]).name == "002-shot.png"
    assert Path(second["path"]).read_bytes().endswith(b"x")


async def test_bad_arguments_come_back_to_the_model(tmp_path: Path) -> None:
    _workspace, _recorder, ctx, store = setup(tmp_path)
    result = await run_tool("attach_artifact", "{not json", ctx, [AttachArtifactTool(store)])
    assert not result.success and "failed to parse function arguments" in result.output
