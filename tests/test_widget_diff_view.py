"""DiffView mounted in a small app and driven with Pilot, on diffs made by real git."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.style import Style as RichStyle
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.strip import Strip

from codex_tui.tui.widgets.diff_view import EMPTY_TEXT, DiffView
from tests.conftest import make_repo, run_git

SNAPSHOT_APP = Path(__file__).parent / "snapshot_apps" / "diff_view_app.py"


class DiffApp(App[None]):
    """One DiffView filling the screen; records the messages it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = asyncio.Event()
        self.selected: list[DiffView.FileSelected] = []

    def compose(self) -> ComposeResult:
        yield DiffView()

    def on_diff_view_patch_loaded(self, _message: DiffView.PatchLoaded) -> None:
        self.loaded.set()

    def on_diff_view_file_selected(self, message: DiffView.FileSelected) -> None:
        self.selected.append(message)


async def load(pilot: Pilot[None], text: str) -> DiffView:
    """set_patch and wait until the patch is on screen."""
    app = pilot.app
    assert isinstance(app, DiffApp)
    app.loaded.clear()
    view = app.query_one(DiffView)
    view.set_patch(text)
    await asyncio.wait_for(app.loaded.wait(), timeout=10)
    await pilot.pause()
    return view


def screen_strips(view: DiffView) -> list[Strip]:
    """The body's visible rows as the compositor would draw them."""
    body = view.body
    return body.render_lines(Region(0, 0, body.size.width, body.size.height))


def screen_text(view: DiffView) -> list[str]:
    """The body's visible rows as text."""
    return [strip.text.rstrip() for strip in screen_strips(view)]


def style_of(strip: Strip, fragment: str) -> RichStyle | None:
    """The style of the segment holding `fragment`."""
    for segment in strip:
        if fragment in segment.text:
            return segment.style
    return None


def git_patch(tmp_path: Path, before: dict[str, str], after: dict[str, str]) -> str:
    """The staged diff between two versions of a repository's files."""
    repo = make_repo(tmp_path / "repo", before)
    for name in before:
        if name not in after:
            (repo / name).unlink()
    for name, text in after.items():
        (repo / name).write_text(text)
    run_git(repo, "add", "-A")
    return run_git(repo, "diff", "--cached")


def many_hunks(count: int) -> tuple[dict[str, str], dict[str, str]]:
    """A file in which every tenth line changes (one hunk each)."""
    lines = [f"value_{n} = {n}\n" for n in range(count * 10)]
    changed = [line.replace(" = ", " = -") if n % 10 == 5 else line for n, line in enumerate(lines)]
    return {"values.py": "".join(lines)}, {"values.py": "".join(changed)}


async def test_file_list_shows_paths_status_and_counts(tmp_path: Path) -> None:
    patch = git_patch(
        tmp_path,
        {"calc.py": "def add(a, b):\n    return a + b\n", "old.txt": "x\ny\n"},
        {
            "calc.py": "def add(a, b):\n    return a + b  # ok\n\n\ndef neg(a):\n    return -a\n",
            "new.md": "hi\n",
        },
    )
    async with DiffApp().run_test(size=(90, 30)) as pilot:
        view = await load(pilot, patch)
        entries = [
            str(view.file_list.get_option_at_index(i).prompt) for i in range(view.file_list.option_count)
        ]
        assert entries == ["M calc.py  +5 −1", "A new.md  +1 −0", "D old.txt  +0 −2"]
        text = screen_text(view)
        assert text[0].strip() == "M calc.py  modified  +5 −1"
        assert any(line.endswith("+     return a + b  # ok") for line in text)


async def test_empty_patch_shows_no_changes_yet() -> None:
    async with DiffApp().run_test(size=(60, 12)) as pilot:
        view = await load(pilot, "")
        text = screen_text(view)
        assert EMPTY_TEXT in "\n".join(text)
        assert not view.file_list.display


async def test_toggle_split_puts_old_and_new_side_by_side(tmp_path: Path) -> None:
    patch = git_patch(tmp_path, {"a.py": "x = 1\ny = 2\n"}, {"a.py": "x = 1\ny = 20\n"})
    async with DiffApp().run_test(size=(80, 16)) as pilot:
        view = await load(pilot, patch)
        unified = screen_text(view)
        assert any(line.endswith("- y = 2") for line in unified)
        assert any(line.endswith("+ y = 20") for line in unified)
        view.body.focus()
        await pilot.press("s")
        assert view.split
        split = screen_text(view)
        assert split != unified
        pair = next(line for line in split if "y = 2 " in line or line.endswith("y = 20"))
        left, right = pair.split("│")
        assert left.strip() == "2 - y = 2" and right.strip() == "2 + y = 20"
        await pilot.press("s")
        assert screen_text(view) == unified


async def test_next_and_prev_hunk_scroll_to_each_hunk(tmp_path: Path) -> None:
    before, after = many_hunks(12)
    patch = git_patch(tmp_path, before, after)
    async with DiffApp().run_test(size=(70, 14)) as pilot:
        view = await load(pilot, patch)
        hunk_rows = view.diff_layout.hunk_rows
        assert len(hunk_rows) == 12
        view.body.focus()
        await pilot.press("]")
        assert view.body.scroll_y == hunk_rows[0]
        await pilot.press("]", "]")
        assert view.body.scroll_y == hunk_rows[2]
        assert screen_text(view)[0].startswith("▶ @@")
        await pilot.press("[")
        assert view.body.scroll_y == hunk_rows[1]
        assert view.body.current_hunk == 1


async def test_next_file_scrolls_and_posts_file_selected(tmp_path: Path) -> None:
    files = {f"m{n}.py": "".join(f"v{i} = {i}\n" for i in range(12)) for n in range(4)}
    patch = git_patch(
        tmp_path, files, {name: text.replace("v3 = 3", "v3 = 33") for name, text in files.items()}
    )
    async with DiffApp().run_test(size=(70, 14)) as pilot:
        view = await load(pilot, patch)
        view.body.focus()
        await pilot.press("}", "}")
        assert view.body.scroll_y == view.diff_layout.file_rows[2]
        await pilot.press("{")
        assert view.body.scroll_y == view.diff_layout.file_rows[1]
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, DiffApp)
        assert [(m.path, m.index) for m in app.selected] == [("m1.py", 1), ("m2.py", 2), ("m1.py", 1)]
        assert view.file_list.highlighted == 1


async def test_picking_a_file_in_the_list_scrolls_to_it(tmp_path: Path) -> None:
    files = {f"m{n}.py": "".join(f"v{i} = {i}\n" for i in range(12)) for n in range(3)}
    patch = git_patch(
        tmp_path, files, {name: text.replace("v3 = 3", "v3 = 33") for name, text in files.items()}
    )
    async with DiffApp().run_test(size=(70, 20)) as pilot:
        view = await load(pilot, patch)
        view.file_list.focus()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, DiffApp)
        assert [m.path for m in app.selected] == ["m2.py"]
        assert view.body.scroll_y == min(view.diff_layout.file_rows[2], view.body.max_scroll_y)
        assert view.body.has_focus


async def test_new_patch_keeps_the_scroll_position_in_the_same_file(tmp_path: Path) -> None:
    before, after = many_hunks(12)
    patch = git_patch(tmp_path, {"a.txt": "a\n", **before}, {"a.txt": "b\n", **after})
    smaller = git_patch(tmp_path / "second", before, after)
    async with DiffApp().run_test(size=(70, 14)) as pilot:
        view = await load(pilot, patch)
        view.body.focus()
        await pilot.press("]", "]", "]", "]")
        top_line = screen_text(view)[0]
        view = await load(pilot, smaller)
        assert screen_text(view)[0].removeprefix("▶ ").lstrip() == top_line.removeprefix("▶ ").lstrip()
        assert view.body.scroll_y == view.diff_layout.hunk_rows[2]


async def test_ten_thousand_line_diff_opens_and_shows_its_first_screen(tmp_path: Path) -> None:
    before = {
        f"pkg/mod{n}.py": "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(125))
        for n in range(40)
    }
    after = {name: text.replace("return x +", "return x *") for name, text in before.items()}
    patch = git_patch(tmp_path, before, after)
    assert patch.count("\n") > 10_000
    async with DiffApp().run_test(size=(100, 40)) as pilot:
        started = time.perf_counter()
        view = await load(pilot, patch)
        text = screen_text(view)
        elapsed = time.perf_counter() - started
        assert view.file_list.option_count == 40
        assert text[0].strip() == "M pkg/mod0.py  modified  +125 −125"
        assert text[1].startswith("  @@ -1,")
        assert any(line.endswith("-     return x + 0") for line in text)
        assert elapsed < 5  # a sanity bound; the 300 ms budget is checked by bench/bench_widgets.py
        view.body.scroll_to(y=view.body.max_scroll_y, animate=False, immediate=True)
        assert any("return x * 124" in line for line in screen_text(view))


async def test_python_lines_are_syntax_highlighted_with_theme_colours(tmp_path: Path) -> None:
    patch = git_patch(tmp_path, {"a.py": "x = 1\n"}, {"a.py": "x = 1\ndef grow(n):\n    return n\n"})
    async with DiffApp().run_test(size=(60, 12)) as pilot:
        view = await load(pilot, patch)
        strip = next(s for s in screen_strips(view) if "def grow" in s.text)
        keyword, punctuation = style_of(strip, "def"), style_of(strip, "(")
        assert keyword is not None and punctuation is not None
        assert keyword.color != punctuation.color
        assert keyword.bgcolor == punctuation.bgcolor  # one added-line tint under every token


async def test_added_and_removed_tints_follow_the_theme(tmp_path: Path) -> None:
    patch = git_patch(tmp_path, {"a.txt": "old\n"}, {"a.txt": "new\n"})
    async with DiffApp().run_test(size=(60, 12)) as pilot:
        view = await load(pilot, patch)

        def tints() -> tuple[object, object]:
            strips = screen_strips(view)
            added = next(s for s in strips if s.text.rstrip().endswith("+ new"))
            removed = next(s for s in strips if s.text.rstrip().endswith("- old"))
            added_style, removed_style = style_of(added, "new"), style_of(removed, "old")
            assert added_style is not None and removed_style is not None
            return added_style.bgcolor, removed_style.bgcolor

        dark = tints()
        assert dark[0] != dark[1]
        pilot.app.theme = "textual-light"
        await pilot.pause()
        light = tints()
        assert light[0] != dark[0] and light[1] != dark[1]


async def test_bad_patch_text_does_not_crash_the_pane() -> None:
    async with DiffApp().run_test(size=(60, 12)) as pilot:
        view = await load(pilot, "@@ -1 +1 @@\n\x00\x1b[31m garbage\n")
        assert view.patch.files == []
        assert "a hunk before any file header" in "\n".join(screen_text(view))


def test_snapshot_of_unified_diff(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def loaded(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(SNAPSHOT_APP, terminal_size=(90, 26), run_before=loaded)


def test_snapshot_of_split_diff(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def split(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("tab", "s", "]", "]")

    assert snap_compare(SNAPSHOT_APP, terminal_size=(90, 26), run_before=split)
