"""Images in: Ctrl+V pastes the clipboard's image into the composer as a chip with a small preview."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual_image.widget import HalfcellImage

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui import clipboard
from codex_tui.tui.app import CodexApp
from codex_tui.tui.clipboard import NO_IMAGE, NO_TOOL, clipboard_command, save_pasted_image
from codex_tui.tui.images import RENDERER_ENV
from codex_tui.tui.widgets.composer import Composer, PromptArea
from tests.test_tui_artifacts import write_png
from tests.test_tui_network import RecordingReplay
from tests.test_tui_support import SIZE, screen_text

Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def halfcell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pictures drawn with half-blocks: the same output on every terminal."""
    monkeypatch.setenv(RENDERER_ENV, "halfcell")


def stub_tool(bin_dir: Path, name: str, payload: Path | None) -> None:
    """A clipboard program on PATH that prints `payload` (nothing and exit 1 when None)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    body = (
        f"import sys; sys.stdout.buffer.write(open({str(payload)!r}, 'rb').read())"
        if payload is not None
        else "import sys; sys.stderr.write('No suitable type of content copied\\n'); sys.exit(1)"
    )
    script = bin_dir / name
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(0o755)


def make_app(tmp_path: Path) -> CodexApp:
    """The real app on an empty replay (the composer starts a new task)."""
    config = Config(layout="tabs", home=tmp_path / "home", model="scripted:default")
    return CodexApp(config, RecordingReplay([]), repo=tmp_path, show_elapsed=False)


async def ready(pilot: Pilot[Any]) -> Composer:
    """The focused composer with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    await app.source_ready.wait()
    composer = app.main_widget(Composer)
    app.main_widget(PromptArea).cursor_blink = False
    composer.area.focus()
    await pilot.pause(0.1)
    return composer


async def wait_previews(pilot: Pilot[Any], composer: Composer, count: int) -> None:
    """Until `count` attachments are shown with their previews."""
    for _ in range(200):
        if len(composer.attachments) == count and len(composer.previews_shown) == count:
            await pilot.pause(0.1)
            return
        await pilot.pause(0.05)
    raise AssertionError(f"no preview\n{screen_text(pilot.app)}")  # type: ignore[arg-type]


async def wait_text(pilot: Pilot[Any], text: str) -> None:
    """Until `text` is on screen (a toast)."""
    for _ in range(200):
        if text in screen_text(pilot.app):  # type: ignore[arg-type]
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{text!r} not shown\n{screen_text(pilot.app)}")  # type: ignore[arg-type]


# --- the clipboard tool --------------------------------------------------------------------------


def test_clipboard_tool_is_chosen_by_platform_order() -> None:
    def which_of(*present: str) -> Callable[[str], str | None]:
        return lambda name: f"/usr/bin/{name}" if name in present else None

    assert clipboard_command(which_of("xclip", "wl-paste")) == [
        "/usr/bin/wl-paste",
        "--no-newline",
        "--type",
        "image/png",
    ]
    assert clipboard_command(which_of("xclip")) == [
        "/usr/bin/xclip",
        "-selection",
        "clipboard",
        "-t",
        "image/png",
        "-o",
    ]
    assert clipboard_command(which_of("pngpaste")) == ["/usr/bin/pngpaste", "-"]
    assert clipboard_command(which_of()) is None


def test_pasted_image_is_private(tmp_path: Path) -> None:
    path = save_pasted_image(b"\x89PNG\r\n\x1a\nrest", tmp_path / "data" / "pasted")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.name.startswith("pasted-") and path.suffix == ".png"


# --- in the app ----------------------------------------------------------------------------------


async def test_ctrl_v_attaches_the_clipboard_image_with_a_chip_and_preview(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_tool(tmp_path / "bin", "xclip", write_png(tmp_path / "copied.png"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = await ready(pilot)
        await pilot.press("ctrl+v")
        await wait_previews(pilot, composer, 1)
        pasted = composer.attachments[0].path
        assert pasted.parent == app.config.data_dir / "pasted"
        assert stat.S_IMODE(pasted.stat().st_mode) == 0o600
        assert pasted.read_bytes() == (tmp_path / "copied.png").read_bytes()
        assert f"▣ {pasted.name}" in screen_text(app)
        assert len(composer.query_one("#previews").query(HalfcellImage)) == 1
        composer.area.insert("Make the page look like this")
        await pilot.press("enter")
        await pilot.pause(0.2)
        source = app.source
        assert isinstance(source, RecordingReplay)
        submit = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert submit.data["images"] == [str(pasted)]
        assert not composer.attachments and not composer.query_one("#previews").display


async def test_ctrl_v_without_a_clipboard_tool_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = await ready(pilot)
        await pilot.press("ctrl+v")
        await wait_text(pilot, NO_TOOL.split(":")[0])
        assert not composer.attachments


async def test_ctrl_v_with_no_image_in_the_clipboard_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_tool(tmp_path / "bin", "wl-paste", None)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = await ready(pilot)
        await pilot.press("ctrl+v")
        await wait_text(pilot, NO_IMAGE.split(" (")[0])
        assert not composer.attachments
        assert not (app.config.data_dir / "pasted").exists() or not any(
            (app.config.data_dir / "pasted").iterdir()
        )


async def test_ctrl_v_without_an_image_pastes_text_copied_in_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = await ready(pilot)
        app.copy_to_clipboard("copied words")
        await pilot.press("ctrl+v")
        for _ in range(100):
            if composer.area.text:
                break
            await pilot.pause(0.05)
        assert composer.area.text == "copied words" and not composer.attachments


async def test_a_pasted_file_path_still_attaches_and_shows_a_preview(tmp_path: Path) -> None:
    picture = write_png(tmp_path / "mock up.png")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        composer = await ready(pilot)
        composer.area.post_message(PromptArea.ImagePasted(picture))
        await wait_previews(pilot, composer, 1)
        assert composer.attachments[0].path == picture.resolve()
        assert "▣ mock up.png" in screen_text(app)


# --- snapshot ------------------------------------------------------------------------------------


def test_snapshot_composer_with_pasted_image_chip_and_preview(
    snap_compare: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_tool(tmp_path / "bin", "pngpaste", write_png(tmp_path / "copied.png", (64, 32)))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(clipboard, "pasted_name", lambda: "pasted-image.png")

    async def run_before(pilot: Pilot[Any]) -> None:
        composer = await ready(pilot)
        await pilot.press("ctrl+v")
        await wait_previews(pilot, composer, 1)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)
