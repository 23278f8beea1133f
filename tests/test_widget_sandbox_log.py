"""SandboxLog mounted in a small app and driven with Pilot."""

from __future__ import annotations

from pathlib import Path

from rich.style import Style as RichStyle
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.strip import Strip

from codex_tui.tui.widgets.sandbox_log import (
    EMPTY_TEXT,
    SandboxLog,
    apply_carriage_returns,
    footer_text,
    format_duration,
)

SNAPSHOT_APP = Path(__file__).parent / "snapshot_apps" / "sandbox_log_app.py"


class LogApp(App[None]):
    """One SandboxLog filling the screen."""

    def __init__(self, max_lines: int = 20_000, max_line_length: int = 2_000) -> None:
        super().__init__()
        self.max_lines = max_lines
        self.max_line_length = max_line_length

    def compose(self) -> ComposeResult:
        yield SandboxLog(max_lines=self.max_lines, max_line_length=self.max_line_length)


def visible(log: SandboxLog) -> list[Strip]:
    """The rows on screen as the compositor would draw them."""
    return log.render_lines(Region(0, 0, log.size.width, log.size.height))


def texts(log: SandboxLog) -> list[str]:
    """Every kept line's text, oldest first."""
    return [line.text for line in log.lines]


def text_style(strip: Strip) -> RichStyle | None:
    """The style of the first segment with visible text."""
    return next((segment.style for segment in strip if segment.text.strip()), None)


async def wait_flushed(pilot: Pilot[None], log: SandboxLog) -> None:
    """Let the flush timer run until nothing is buffered."""
    for _ in range(200):
        if not log.pending_chunks:
            break
        await pilot.pause(0.01)
    await pilot.pause()


async def test_commands_become_sections_with_exit_codes_and_durations() -> None:
    async with LogApp().run_test(size=(60, 12)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "pytest -q")
        log.append_output("c1", "stdout", "3 passed\n")
        log.end_command("c1", 0, 1234)
        log.begin_command("c2", "make lint")
        log.append_output("c2", "stderr", "lint failed\n")
        log.end_command("c2", 2, 300, "timed out")
        await wait_flushed(pilot, log)
        assert texts(log) == [
            "$ pytest -q",
            "3 passed",
            "exit 0 · 1.2 s",
            "$ make lint",
            "lint failed",
            "exit 2 · 300 ms · timed out",
        ]
        assert [line.kind for line in log.lines] == [
            "command",
            "stdout",
            "exit-ok",
            "command",
            "stderr",
            "exit-failed",
        ]
        rows = visible(log)
        ok, failed = text_style(rows[2]), text_style(rows[5])
        assert ok is not None and failed is not None and ok.color != failed.color


async def test_stderr_is_drawn_in_another_colour_than_stdout() -> None:
    async with LogApp().run_test(size=(60, 8)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "build")
        log.append_output("c1", "stdout", "compiling\n")
        log.append_output("c1", "stderr", "warning: unused\n")
        log.flush()
        rows = visible(log)
        assert [row.text.rstrip() for row in rows[:3]] == ["$ build", "compiling", "warning: unused"]
        stdout, stderr = text_style(rows[1]), text_style(rows[2])
        assert stdout is not None and stderr is not None
        assert stdout.color != stderr.color
        assert stdout.bgcolor == stderr.bgcolor


async def test_partial_lines_are_joined_across_chunks() -> None:
    async with LogApp().run_test(size=(60, 8)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "echo")
        for chunk in ["hel", "lo\nwor", "ld\nand a tail"]:
            log.append_output("c1", "stdout", chunk)
        log.flush()
        assert texts(log) == ["$ echo", "hello", "world", "and a tail"]
        log.append_output("c1", "stdout", " that ends\n")
        log.end_command("c1", 0, 5)
        log.flush()
        assert texts(log) == ["$ echo", "hello", "world", "and a tail that ends", "exit 0 · 5 ms"]
        assert visible(log)[3].text.rstrip() == "and a tail that ends"


async def test_progress_bars_keep_their_last_carriage_return_segment() -> None:
    async with LogApp().run_test(size=(60, 8)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "pip install")
        log.append_output("c1", "stderr", "10%\r50%\r")
        log.flush()
        assert texts(log)[-1] == "50%"
        log.append_output("c1", "stderr", "100%\r\ndone\r\n")
        log.flush()
        assert texts(log) == ["$ pip install", "100%", "done"]
    assert apply_carriage_returns("", "a\rb\r\rc", False) == ("c", False)
    assert apply_carriage_returns("abc", "", True) == ("abc", True)


async def test_ansi_escapes_are_stripped_even_when_split_across_chunks() -> None:
    async with LogApp().run_test(size=(60, 8)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "ls --color")
        log.append_output("c1", "stdout", "\x1b[01;34msrc\x1b[0m\n\x1b[3")
        log.append_output("c1", "stdout", "2mtests\x1b[0m\n\x1b]0;title\x07plain\n")
        log.flush()
        assert texts(log) == ["$ ls --color", "src", "tests", "plain"]


async def test_control_characters_and_tabs_render_on_one_row() -> None:
    async with LogApp().run_test(size=(40, 6)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "cat")
        log.append_output("c1", "stdout", "a\tb\x07c\n")
        log.flush()
        assert visible(log)[1].text.rstrip() == "a   b\ufffdc"


async def test_long_lines_are_capped_with_an_ellipsis() -> None:
    async with LogApp(max_line_length=100).run_test(size=(60, 6)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "minified")
        log.append_output("c1", "stdout", "x" * 5000 + "\n")
        log.append_output("c1", "stdout", "y" * 80)
        log.append_output("c1", "stdout", "y" * 80 + "\n")
        log.flush()
        assert texts(log)[1:] == ["x" * 100 + "…", "y" * 100 + "…"]


async def test_one_hundred_thousand_lines_keep_the_store_bounded() -> None:
    async with LogApp(max_lines=5_000).run_test(size=(60, 10)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "seq 100000")
        for start in range(0, 100_000, 1000):
            log.append_output("c1", "stdout", "".join(f"{n}\n" for n in range(start, start + 1000)))
        log.end_command("c1", 0, 900)
        await wait_flushed(pilot, log)
        assert log.line_count == 5_000
        assert texts(log)[-2:] == ["99999", "exit 0 · 900 ms"]
        assert texts(log)[0] == str(100_000 - 4_999)
        assert visible(log)[-1].text.rstrip() == "exit 0 · 900 ms"


async def test_many_appends_are_flushed_in_a_few_batches() -> None:
    async with LogApp().run_test(size=(60, 10)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        await pilot.pause()
        log.begin_command("c1", "chatty")
        for n in range(3000):
            log.append_output("c1", "stdout" if n % 2 else "stderr", f"line {n}\n")
        assert log.line_count == 0 and log.pending_chunks == 3001
        await wait_flushed(pilot, log)
        assert log.line_count == 3001
        assert 1 <= log.flush_count <= 3


async def test_follow_mode_releases_on_scroll_up_and_returns_with_end() -> None:
    async with LogApp().run_test(size=(60, 10)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.focus()
        assert log.follow
        log.begin_command("c1", "seq")
        log.append_output("c1", "stdout", "".join(f"{n}\n" for n in range(200)))
        log.flush()
        assert log.scroll_y == log.max_scroll_y > 0
        await pilot.press("pageup")
        assert not log.follow
        held = log.scroll_y
        log.append_output("c1", "stdout", "".join(f"more {n}\n" for n in range(50)))
        log.flush()
        assert log.scroll_y == held and log.scroll_y < log.max_scroll_y
        await pilot.press("end")
        assert log.follow and log.scroll_y == log.max_scroll_y
        await pilot.press("up", "up")
        assert not log.follow
        await pilot.press("G")
        assert log.follow
        log.append_output("c1", "stdout", "newest\n")
        log.flush()
        assert visible(log)[-1].text.rstrip() == "newest"


async def test_scrolling_back_to_the_bottom_re_engages_follow() -> None:
    async with LogApp().run_test(size=(60, 10)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.focus()
        log.begin_command("c1", "seq")
        log.append_output("c1", "stdout", "".join(f"{n}\n" for n in range(100)))
        log.flush()
        await pilot.press("up")
        assert not log.follow
        await pilot.press("down")
        assert log.follow


async def test_when_not_following_dropped_lines_do_not_move_the_view() -> None:
    async with LogApp(max_lines=300).run_test(size=(60, 10)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.focus()
        log.begin_command("c1", "seq")
        log.append_output("c1", "stdout", "".join(f"{n}\n" for n in range(300)))
        log.flush()
        await pilot.press("pageup", "pageup")
        top = visible(log)[0].text.rstrip()
        log.append_output("c1", "stdout", "".join(f"x{n}\n" for n in range(20)))
        log.flush()
        assert visible(log)[0].text.rstrip() == top


async def test_interleaved_commands_repeat_their_header() -> None:
    async with LogApp().run_test(size=(60, 12)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("a", "npm test")
        log.begin_command("b", "cargo build")
        log.append_output("a", "stdout", "ok a\n")
        log.append_output("b", "stdout", "ok b\n")
        log.end_command("a", 0, 10)
        log.append_output("ghost", "stdout", "no begin\n")
        log.flush()
        assert texts(log) == [
            "$ npm test",
            "$ cargo build",
            "$ npm test  (continued)",
            "ok a",
            "$ cargo build  (continued)",
            "ok b",
            "$ npm test  (continued)",
            "exit 0 · 10 ms",
            "$ …  (output)",
            "no begin",
        ]


async def test_clear_empties_the_log_and_shows_the_empty_text() -> None:
    async with LogApp().run_test(size=(60, 6)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "x")
        log.append_output("c1", "stdout", "y\n")
        log.flush()
        log.append_output("c1", "stdout", "buffered\n")
        log.clear()
        log.flush()
        assert log.line_count == 0 and log.pending_chunks == 0
        assert visible(log)[0].text.rstrip() == EMPTY_TEXT


async def test_theme_change_restyles_the_rows() -> None:
    async with LogApp().run_test(size=(60, 6)) as pilot:
        log = pilot.app.query_one(SandboxLog)
        log.begin_command("c1", "x")
        log.append_output("c1", "stderr", "oops\n")
        log.flush()
        dark = text_style(visible(log)[1])
        pilot.app.theme = "textual-light"
        await pilot.pause()
        light = text_style(visible(log)[1])
        assert dark is not None and light is not None and dark.color != light.color


def test_durations_and_footers_read_naturally() -> None:
    assert [format_duration(ms) for ms in (0, 999, 1000, 59_949, 125_000)] == [
        "0 ms",
        "999 ms",
        "1.0 s",
        "59.9 s",
        "2 m 05 s",
    ]
    assert footer_text(None, None, "interrupted") == "no exit code · interrupted"
    assert footer_text(137, 2_000, "out of memory") == "exit 137 · 2.0 s · out of memory"


def test_snapshot_of_sections(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def flushed(pilot: Pilot[None]) -> None:
        pilot.app.query_one(SandboxLog).flush()
        await pilot.pause()

    assert snap_compare(SNAPSHOT_APP, terminal_size=(70, 18), run_before=flushed)
