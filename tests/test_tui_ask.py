"""Ask mode in the TUI: the Code/Ask toggle, /ask and /code, "now do it", citations as links and the
read-only file viewer."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Markdown

from codex_tui import protocol as p
from codex_tui.tui.citations import Citation, find_citations, linkify, parse_href
from codex_tui.tui.review_ui import ASK_NO_DIFF, DO_IT_MESSAGE
from codex_tui.tui.screens.file_viewer import FileContent, FileViewerScreen
from codex_tui.tui.widgets.chat_view import ChatView
from codex_tui.tui.widgets.composer import Composer
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.file_viewer import FileView, split_lines
from tests.test_tui_review import review_app, until
from tests.test_tui_support import screen_text

# --- citations ---------------------------------------------------------------------------------


def test_citations_become_links_outside_code_fences() -> None:
    text = "See src/app.py:12 and `lib/x.py:3-5`.\n```\nfoo.py:3\n```\nAlso [a](b.py:3)."
    assert linkify(text) == (
        "See [src/app.py:12](cite:src/app.py:12-12) and [`lib/x.py:3-5`](cite:lib/x.py:3-5).\n"
        "```\nfoo.py:3\n```\nAlso [a](b.py:3)."
    )


def test_urls_times_and_plain_words_are_not_citations() -> None:
    assert find_citations("http://example.com:8080/x at 12:30, version 1.2:3 is not a file") == []
    assert linkify("no citations here") == "no citations here"


def test_citation_paths_are_made_relative_to_the_checkout() -> None:
    assert find_citations("/workspace/src/a.py:4-9 and ./b.py:2") == [
        Citation("src/a.py", 4, 9),
        Citation("b.py", 2, 2),
    ]


def test_citation_links_round_trip() -> None:
    citation = Citation("dir with space/a.py", 3, 7)
    assert parse_href(citation.href) == citation
    assert parse_href("https://example.com") is None
    assert parse_href("cite:nolines") is None


def test_file_lines_are_cleaned_of_control_characters() -> None:
    assert split_lines("a\x1b[31mb\r\n\tc\n") == ["a\ufffd[31mb", "    c"]


# --- the app -----------------------------------------------------------------------------------


async def test_ask_toggle_shows_in_the_composer_and_submits_an_ask_task(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.action_new_task()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert str(app.main_widget(Composer).border_title).startswith("New task · Ask")
        app.main_widget(Composer).area.insert("Where is median defined?")
        await pilot.press("enter")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the submit")
        op = next(op for op in source.ops if op.type == p.OP_SUBMIT)
        assert op.data["kind"] == "ask" and op.data["prompt"] == "Where is median defined?"
        await pilot.press("ctrl+o")
        app.action_new_task()
        await pilot.pause()
        assert str(app.main_widget(Composer).border_title).startswith("New task · Code")


async def test_ask_and_code_slash_commands_switch_the_kind(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        composer = app.main_widget(Composer)
        composer.area.insert("/ask What does slugify do?")
        await pilot.press("enter")
        await until(pilot, lambda: any(op.type == p.OP_SUBMIT for op in source.ops), "the submit")
        assert source.ops[-1].data["kind"] == "ask"
        composer.area.insert("/code")
        await pilot.press("enter")
        await pilot.pause()
        assert app.review_ui.next_kind == "code"
        assert str(composer.border_title).startswith("New task · Code")


async def test_now_do_it_turns_an_ask_task_into_a_code_task(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.goto_task("task-7")
        await pilot.pause(0.1)
        assert "Now do it" in screen_text(app)
        await pilot.press("f9")
        await until(pilot, lambda: any(op.type == p.OP_USER_MESSAGE for op in source.ops), "the message")
        kinds = [
            (op.type, op.data) for op in source.ops if op.task_id == "task-7" and op.type != p.OP_GET_DIFF
        ]
        assert kinds == [
            (p.OP_SET_KIND, {"kind": "code"}),
            (p.OP_USER_MESSAGE, {"text": DO_IT_MESSAGE, "images": []}),
        ]
        assert app.state.tasks["task-7"].kind == "code"


async def test_now_do_it_is_not_offered_for_code_tasks(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.goto_task("task-2")
        await pilot.pause(0.1)
        assert "Now do it" not in screen_text(app)
        await pilot.press("f9")
        await pilot.pause(0.1)
        assert not any(op.type == p.OP_SET_KIND for op in source.ops)


async def test_diff_pane_of_an_ask_task_says_no_diff_is_expected(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        app.goto_task("task-7")
        await pilot.pause(0.1)
        await pilot.press("f4")
        await until(
            pilot, lambda: app.shown_diff == ("task-7", app.state.tasks["task-7"].diff_rev), "the diff"
        )
        assert app.main_widget(DiffView).body.empty_text == ASK_NO_DIFF
        await until(pilot, lambda: "No diff expected: this is an Ask task" in screen_text(app))


async def test_clicking_a_citation_opens_the_file_viewer_at_its_lines(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, source):
        app.goto_task("task-7")
        await pilot.pause(0.1)
        await pilot.press("f2")
        chat = app.main_widget(ChatView)
        await until(pilot, lambda: chat.query(Markdown), "the answer")
        answer = list(chat.query(Markdown))[-1]
        answer.post_message(Markdown.LinkClicked(answer, "cite:textkit/stats.py:19-25"))
        await until(pilot, lambda: isinstance(app.screen, FileViewerScreen), "the file viewer")
        read = [op for op in source.ops if op.type == p.OP_READ_FILE]
        assert [(op.task_id, op.data) for op in read] == [("task-7", {"path": "textkit/stats.py"})]
        view = app.screen.query_one(FileView)
        await until(pilot, lambda: view.lines and (view.start, view.end) == (19, 25), "the cited lines")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "textkit/stats.py · lines 19–25 · read-only" in text
        assert "19 ▌ def median(values):" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, FileViewerScreen)


async def test_palette_offers_the_citations_of_the_latest_answer(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        app.goto_task("task-7")
        await pilot.pause(0.1)
        titles = [title for title, _help, _action in app.palette_actions()]
        assert "Open textkit/stats.py:19-25" in titles and "Open textkit/stats.py:6" in titles


async def test_file_viewer_shows_binary_and_truncated_files_plainly(tmp_path: Path) -> None:
    async with review_app(tmp_path) as (app, pilot, _):
        await app.push_screen(FileViewerScreen(FileContent("logo.png", "", binary=True)))
        await pilot.pause(0.2)
        assert "(binary file: not shown)" in screen_text(app)
        app.pop_screen()
        await app.push_screen(FileViewerScreen(FileContent("big.txt", "x\n", truncated=True), 1, 1))
        await pilot.pause(0.2)
        assert "truncated: the file is longer than shown" in screen_text(app)
