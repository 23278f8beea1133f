"""The TUI's artifacts: the chat line, the Artifacts pane and the preview (pictures, text, binary)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from textual.pilot import Pilot
from textual_image.widget import HalfcellImage

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.images import RENDERER_ENV, fit_cells, load_image, renderer_name
from codex_tui.tui.preview import load_preview
from codex_tui.tui.screens.preview import PreviewScreen
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.state import AppState
from codex_tui.tui.widgets.artifact_list import ArtifactList
from codex_tui.tui.widgets.chat_view import ChatView, ToolLine, UserLine
from codex_tui.tui.widgets.composer import PromptArea
from tests.test_tui_support import SIZE, screen_text

Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def halfcell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pictures drawn with half-blocks: the same output on every terminal."""
    monkeypatch.setenv(RENDERER_ENV, "halfcell")


SMALL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAADAAAAAYCAIAAAAzn+mLAAAAUklEQVR4nGOUm/CfgRrg4WUPqpjDRBVTqAhGHUQIjD"
    "qIEBh1ECEw6iBCYNRBhACLiK0xdUxyP0cVYwZdCI06iBAYdRAhMOogQmDUQYTAqIMIAQAZxgV0wJ/4nAAAAABJRU5E"
    "rkJggg=="
)
WIDE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAAAgCAIAAAAt/+nTAAAAXUlEQVR4nO3RQQ2AMBQEUSBI6LkmOHMGeVXWSxWgBF"
    "RsJyTzBOzP5K+1vUvSM+7o/hZdn8AAmgE0A2gG0AygGUAzgLaX88heuHp0/vcfMIBmAM0AmgE0A2gG0AygfZs6BYQH"
    "n/MfAAAAAElFTkSuQmCC"
)
FOUR_QUARTERS = {(48, 24): SMALL_PNG, (64, 32): WIDE_PNG}
"""The pictures write_png draws, as encoded once: snapshots show their byte size, which must not
depend on the zlib at hand."""


def write_png(path: Path, size: tuple[int, int] = (48, 24)) -> Path:
    """A small picture with four coloured quarters."""
    if size in FOUR_QUARTERS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(FOUR_QUARTERS[size]))
        return path
    image = PILImage.new("RGB", size, (30, 144, 255))
    width, height = size
    for x in range(width):
        for y in range(height):
            if x >= width // 2 and y < height // 2:
                image.putpixel((x, y), (255, 99, 71))
            elif x < width // 2 and y >= height // 2:
                image.putpixel((x, y), (50, 205, 50))
            elif x >= width // 2:
                image.putpixel((x, y), (255, 215, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")
    return path


def artifact_files(tmp_path: Path) -> dict[str, Path]:
    """Copies as the artifact store keeps them: a PNG, an SVG, a text report and a binary file."""
    store = tmp_path / "home" / "data" / "artifacts" / "t-1"
    store.mkdir(parents=True, exist_ok=True)
    svg = store / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n')
    report = store / "report.txt"
    report.write_text("3 tests passed\n\x1b]0;pwned\x07\x1b[31mred[/red] line\n")
    blob = store / "data.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    return {
        "shot.png": write_png(store / "shot.png"),
        "logo.svg": svg,
        "report.txt": report,
        "data.bin": blob,
    }


def artifact_item(seq: int, path: Path, mime: str, caption: str) -> p.Event:
    """An item.completed artifact event of task t-1."""
    item = {
        "id": f"a-{seq}",
        "type": p.ITEM_ARTIFACT,
        "name": path.name,
        "caption": caption,
        "mime_type": mime,
        "size": path.stat().st_size,
        "sha256": "0" * 64,
        "source": f"out/{path.name}",
        "path": str(path),
    }
    return p.Event(p.ITEM_COMPLETED, "t-1", seq, {"item": item}, 1.0 + seq / 10)


def artifact_events(tmp_path: Path) -> list[p.Event]:
    """A finished task that kept four files, and a second task that kept none."""
    files = artifact_files(tmp_path)
    return [
        p.Event(p.TASK_CREATED, "t-2", 0, {"title": "No files", "prompt": "Say hi"}, 0.5),
        p.Event(p.TASK_STATUS, "t-2", 1, {"status": "ready"}, 0.6),
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Screenshot", "prompt": "Take a screenshot"}, 1.0),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "running"}, 1.05),
        artifact_item(2, files["shot.png"], "image/png", "The home page after the fix"),
        artifact_item(3, files["logo.svg"], "image/svg+xml", "The logo"),
        artifact_item(4, files["report.txt"], "text/plain", "Test report"),
        artifact_item(5, files["data.bin"], "application/octet-stream", ""),
        p.Event(p.TASK_STATUS, "t-1", 6, {"status": "ready"}, 1.7),
    ]


def make_app(tmp_path: Path, events: list[p.Event]) -> CodexApp:
    """The real app on synthetic events."""
    config = Config(layout="tabs", home=tmp_path / "home", model="scripted:default")
    return CodexApp(config, RolloutReplay(events), repo=tmp_path, show_elapsed=False)


async def settle(pilot: Pilot[Any], task_id: str = "t-1") -> CodexApp:
    """Wait until the events are folded in and `task_id` is shown, with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        if not app._inbox and task_id in app.state.tasks and app.selected_id is not None:
            break
        await pilot.pause(0.05)
    if app.selected_id != task_id:
        app.goto_task(task_id)
    await pilot.pause(0.2)
    return app


async def open_artifact(pilot: Pilot[Any], index: int) -> PreviewScreen:
    """Show the Artifacts pane, highlight row `index`, press Enter and wait for the preview."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    await pilot.press("f10")
    await pilot.pause(0.1)
    artifacts = app.main_widget(ArtifactList)
    artifacts.focus()
    artifacts.highlighted = index
    await pilot.press("enter")
    return await wait_preview(pilot)


async def wait_preview(pilot: Pilot[Any]) -> PreviewScreen:
    """The preview screen, once its file is loaded and shown."""
    for _ in range(100):
        screen = pilot.app.screen
        if isinstance(screen, PreviewScreen) and screen.preview is not None:
            await pilot.pause(0.1)
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"no preview\n{screen_text(pilot.app)}")  # type: ignore[arg-type]


# --- model ---------------------------------------------------------------------------------------


def test_artifact_item_is_listed_and_shown_as_a_chat_line(tmp_path: Path) -> None:
    state = AppState()
    for event in artifact_events(tmp_path):
        state.apply(event)
    task = state.tasks["t-1"]
    assert [a.name for a in task.artifacts] == ["shot.png", "logo.svg", "report.txt", "data.bin"]
    assert [a.previewable for a in task.artifacts] == [True, False, False, False]
    line = next(b for b in task.blocks if b.id == "a-2")
    assert (line.icon, line.text) == ("📎", "shot.png — The home page after the fix")
    assert line.preview.endswith("shot.png")
    assert not state.tasks["t-2"].artifacts


def test_preview_reads_svg_as_text_and_other_bytes_as_binary(tmp_path: Path) -> None:
    files = artifact_files(tmp_path)
    assert load_preview(files["shot.png"], "shot").kind == "image"
    svg = load_preview(files["logo.svg"], "logo")
    assert svg.kind == "text" and "<script>" in svg.text
    report = load_preview(files["report.txt"], "report")
    assert "\x1b" not in report.text and "\x07" not in report.text and "red[/red] line" in report.text
    blob = load_preview(files["data.bin"], "data")
    assert (blob.kind, blob.text) == ("binary", "binary file, 1,024 bytes")


def test_preview_never_follows_a_link_or_reads_a_fifo(tmp_path: Path) -> None:
    target = write_png(tmp_path / "real.png")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert load_preview(link, "link").kind == "error"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fifo_preview = load_preview(fifo, "pipe")
    assert fifo_preview.kind == "error" and "not a regular file" in fifo_preview.text


def test_preview_text_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_text("line\n" * 1000)
    preview = load_preview(big, "big", max_text=100)
    assert preview.truncated and len(preview.text) == 100


def test_images_keep_their_shape_and_a_non_image_is_refused(tmp_path: Path) -> None:
    assert fit_cells(200, 100, 100, 30) == (100, 25)
    assert fit_cells(100, 100, 16, 4) == (8, 4)
    assert renderer_name() == "halfcell"
    not_image = tmp_path / "x.png"
    not_image.write_text("hello")
    assert isinstance(load_image(not_image), str)


# --- pane and preview ----------------------------------------------------------------------------


async def test_artifacts_tab_appears_only_for_a_task_with_artifacts(tmp_path: Path) -> None:
    app = make_app(tmp_path, artifact_events(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, "t-2")
        app.goto_task("t-2")
        await pilot.pause(0.2)
        assert "Artifacts" not in screen_text(app)
        assert not app.check_action("show_pane", ("artifacts",))
        app.goto_task("t-1")
        await pilot.pause(0.2)
        assert "Artifacts" in screen_text(app)
        await pilot.press("f10")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "📎 shot.png  image/png · " in text and "The home page after the fix" in text
        assert "report.txt  text/plain" in text and "data.bin  application/octet-stream · 1 KB" in text


async def test_enter_on_a_png_artifact_draws_it_with_half_blocks(tmp_path: Path) -> None:
    app = make_app(tmp_path, artifact_events(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_artifact(pilot, 0)
        assert screen.preview is not None and screen.preview.kind == "image"
        image = screen.query_one("#preview-image")
        assert isinstance(image, HalfcellImage)
        assert "▄" in screen_text(app) or "▀" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, PreviewScreen)


async def test_svg_artifact_is_shown_as_text_never_drawn(tmp_path: Path) -> None:
    app = make_app(tmp_path, artifact_events(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_artifact(pilot, 1)
        assert screen.preview is not None and screen.preview.kind == "text"
        assert not screen.query("#preview-image")
        assert "<script>alert(1)</script>" in screen_text(app)


async def test_binary_artifact_says_its_size(tmp_path: Path) -> None:
    app = make_app(tmp_path, artifact_events(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_artifact(pilot, 3)
        assert "binary file, 1,024 bytes" in screen_text(app)


async def test_clicking_the_chat_line_of_an_artifact_previews_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, artifact_events(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "📎 report.txt — Test report" in screen_text(app)
        line = next(w for w in app.main_widget(ChatView).query(ToolLine) if w.block.id == "a-4")
        await pilot.click(line)
        screen = await wait_preview(pilot)
        assert screen.preview is not None and screen.preview.kind == "text"
        assert "red[/red] line" in screen_text(app)


async def test_clicking_a_message_with_an_attached_image_previews_it(tmp_path: Path) -> None:
    picture = write_png(tmp_path / "mock.png")
    events = [
        p.Event(
            p.TASK_CREATED, "t-1", 0, {"title": "Mock", "prompt": "Match it", "images": [str(picture)]}, 1
        ),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "ready"}, 1.1),
    ]
    app = make_app(tmp_path, events)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        line = app.main_widget(ChatView).query_one(UserLine)
        await pilot.click(line)
        screen = await wait_preview(pilot)
        assert screen.preview is not None and screen.preview.kind == "image"


# --- snapshot ------------------------------------------------------------------------------------


def test_snapshot_artifacts_pane_with_png_preview(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await open_artifact(pilot, 0)

    app = make_app(tmp_path, artifact_events(tmp_path))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_clicking_a_viewed_image_line_previews_its_host_copy(tmp_path: Path) -> None:
    picture = write_png(tmp_path / "kept.png")
    item = {"id": "v-1", "type": p.ITEM_IMAGE, "path": "shots/ui.png", "preview_path": str(picture)}
    events = [
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Look", "prompt": "Check the page"}, 1),
        p.Event(p.ITEM_COMPLETED, "t-1", 1, {"item": item}, 1.1),
        p.Event(p.TASK_STATUS, "t-1", 2, {"status": "ready"}, 1.2),
    ]
    app = make_app(tmp_path, events)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "Viewed image shots/ui.png" in screen_text(app)
        line = next(w for w in app.main_widget(ChatView).query(ToolLine) if w.block.id == "v-1")
        await pilot.click(line)
        screen = await wait_preview(pilot)
        assert screen.preview is not None and screen.preview.kind == "image"


def test_only_terminals_known_for_graphics_are_asked_about_them_at_start() -> None:
    from codex_tui.tui.images import graphics_terminal

    assert graphics_terminal({"TERM": "xterm-kitty"}) and graphics_terminal({"TERM_PROGRAM": "WezTerm"})
    assert graphics_terminal({"TERM": "foot"}) and graphics_terminal({"WT_SESSION": "1"})
    assert graphics_terminal({"TERM": "xterm-256color", RENDERER_ENV: "auto"})
    # tmux and plain xterms never answer the graphics questions: half-blocks, no start-up wait
    assert not graphics_terminal({"TERM": "tmux-256color"})
    assert not graphics_terminal({"TERM": "xterm-256color", "COLORTERM": "truecolor"})
    assert not graphics_terminal({"TERM": "xterm-kitty", RENDERER_ENV: "halfcell"})
