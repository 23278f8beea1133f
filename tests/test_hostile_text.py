"""Model- and sandbox-controlled text against the new display paths: toasts, tiles, the inbox, copy."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Markdown

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.attention import AttentionItem
from codex_tui.tui.copy_text import copy_to_clipboard
from codex_tui.tui.notify import OSC9, OSC777, Notifier
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.mission import INBOX_TEXT_WIDTH, MissionScreen, inbox_option
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.state import TaskModel, TodoItem
from codex_tui.tui.widgets.chat_view import ChatView, browser_url
from codex_tui.tui.widgets.task_tile import cut_text, tile_content, tile_info
from tests.test_tui_copy import PanesApp, osc52_text
from tests.test_tui_support import running_app, screen_text

BRACKETS = "[/]"
"""Content markup that does not parse: rendered as markup it raises MarkupError (the app dies)."""
CLICK = "[@click=app.quit]click me[/]"
"""Content markup that makes a toast's words run an app action when clicked."""

MARKUP_FAILURE = {
    "name": "markup-failure",
    "match": "(?i)broken markup",
    "turns": [{"errors": [{"status": 400, "message": f"Bad request {BRACKETS} {CLICK}"}], "text": "never"}],
}
MARKUP_HELLO = {"name": "markup-hello", "match": "(?i)say hello", "turns": [{"text": "Hello."}]}


async def test_toasts_show_task_titles_and_failure_messages_as_plain_text_not_markup(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, [MARKUP_HELLO, MARKUP_FAILURE]) as h:
        await h.send(f"Say hello to {BRACKETS} and {CLICK}")
        await h.wait(lambda: h.statuses() == ["ready"], what="the first task to end")
        await h.pilot.press("ctrl+n")
        await h.send("Broken markup job")
        await h.wait(lambda: sorted(h.statuses()) == ["failed", "ready"], what="both tasks to end")
        await h.wait(lambda: "Task failed" in h.text() and "Task ready" in h.text(), what="the toasts")
        await h.pilot.pause()
        text = h.text()
        assert h.app.is_running
        assert f"Bad request {BRACKETS} {CLICK}" in text
        assert f"Say hello to {BRACKETS} and {CLICK}" in text


# --- every view of the real app on a replay of hostile events ----------------------------------

ESCAPES = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b31m\x9d0;owned\x9c"
"""OSC 52 (write the clipboard), clear screen, 8-bit CSI, 8-bit OSC (retitle the window)."""
SURROGATES = "\ud800\udcff"
"""Lone surrogates (a tool call's JSON may say `\\ud800`): not UTF-8, the web driver's encode raises."""
BIDI = "\u202e\u2066"
"""A right-to-left override and isolate: a bidi terminal shows `rm` text reversed (Trojan Source)."""
WIDE = "界" * 90 + "😀" * 20
ZERO_WIDTH = "\u200b" * 40 + "e\u0301" * 40
HOSTILE = f"{BRACKETS} {CLICK} {ESCAPES} {SURROGATES} {BIDI} {WIDE} {ZERO_WIDTH} " + "A" * 5000
UNSEEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
"""What must never reach the screen: controls, surrogates and bidi overrides."""


def hostile_events() -> list[p.Event]:
    """Two attempts, a failure and an approval whose titles, commands, paths, plans, logs are hostile."""
    events: list[p.Event] = []

    def emit(task_id: str, type_: str, **data: Any) -> None:
        events.append(p.Event(type_, task_id, len(events) + 1, data, 1000.0 + len(events)))

    for number, task_id in enumerate(("h1", "h2"), 1):
        emit(
            task_id,
            p.TASK_CREATED,
            title=HOSTILE,
            prompt=HOSTILE,
            repo="/r",
            group_id="g",
            attempt=number,
            attempts=2,
            model="m",
        )
        emit(task_id, p.TASK_STATUS, status="running")
        items = [{"text": HOSTILE, "status": "in_progress"}, {"text": HOSTILE, "status": "pending"}]
        emit(
            task_id,
            p.ITEM_UPDATED,
            item={"id": "plan", "type": p.ITEM_TODO_LIST, "items": items, "explanation": HOSTILE},
        )
        emit(task_id, p.ITEM_STARTED, item={"id": "c1", "type": p.ITEM_COMMAND, "command": HOSTILE})
        emit(task_id, p.OUTPUT_DELTA, item_id="c1", stream="stdout", text=(HOSTILE + "\n") * 3)
        emit(task_id, p.ITEM_COMPLETED, item={"id": "m1", "type": p.ITEM_AGENT_MESSAGE, "text": HOSTILE})
        emit(task_id, p.DIFF_UPDATED, files=[{"path": HOSTILE, "status": "modified", "added": 1}], added=1)
    emit("h3", p.TASK_CREATED, title=HOSTILE, prompt=HOSTILE, repo="/r", model="m")
    emit("h3", p.DIFF_UPDATED, files=[{"path": HOSTILE, "status": "modified", "added": 1}], added=1)
    emit("h3", p.TASK_STATUS, status="waiting_approval")
    emit("h3", p.APPROVAL_REQUESTED, request_id="r1", kind="command", command=HOSTILE, reason=HOSTILE)
    emit("h4", p.TASK_CREATED, title=HOSTILE, prompt=HOSTILE, repo="/r", model="m")
    emit("h4", p.TASK_STATUS, status="running")
    emit("h4", p.TASK_STATUS, status="failed", message=HOSTILE)
    return events


async def until(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    """Let the app run until `condition()` holds (fails after about 10 s)."""
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app never reached the expected view")


def assert_clean(app: CodexApp, where: str) -> None:
    """The app runs, and the screen holds no control, surrogate or bidi override (and encodes)."""
    assert app.is_running, where
    text = screen_text(app)
    text.encode("utf-8")  # what textual-serve's web driver does with every frame
    found = UNSEEN.search(text)
    assert found is None, f"{where}: {found.group()!r} on screen"


async def test_hostile_titles_paths_plans_and_logs_reach_no_view_raw(tmp_path: Path) -> None:
    config = Config(home=tmp_path / "home", theme="codex-dark", model="m")
    app = CodexApp(config, RolloutReplay(hostile_events()), repo=tmp_path, show_elapsed=False)
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        await until(pilot, lambda: not app._inbox and len(app.state.tasks) == 4 and bool(app.selected_id))
        await pilot.pause(0.2)
        assert_clean(app, "the main view")
        for key in ("f3", "f4", "f5", "f2"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert_clean(app, f"after {key}")
        app.select("h3")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.1)
        assert_clean(app, "the approval dialog")
        await pilot.press("escape")  # closes the dialog
        app.select("h1")
        await pilot.pause(0.1)
        await pilot.press("escape")  # the toast `Interrupting <title>`
        await pilot.pause(0.2)
        assert any(n.message.startswith("Interrupting [/]") for n in app._notifications)
        assert_clean(app, "the interrupt toast")
        await pilot.press("f11")
        await until(
            pilot, lambda: isinstance(app.screen, MissionScreen) and len(app.screen.query("TaskTile")) == 4
        )
        await pilot.pause(0.3)
        assert_clean(app, "mission control")
        await pilot.press("escape")
        await pilot.pause(0.1)
        app.select("h1")
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause(0.2)
        assert_clean(app, "the compare view")


# --- layout: wide and zero-width characters -----------------------------------------------------


def test_tile_and_inbox_lines_fit_their_width_in_cells_with_wide_characters() -> None:
    task = TaskModel(id="t1", title=WIDE, status="waiting_approval")
    task.todos = [TodoItem(WIDE, "in_progress")]
    info = tile_info(task, None, attention="approval", attention_detail=WIDE, conflict=WIDE + " also changed")
    info = replace(info, log=(WIDE, ZERO_WIDTH + WIDE))
    for width in (12, 13, 33, 60):
        for line in tile_content(info, width, 20).split("\n"):
            assert line.cell_length <= width, (width, line.plain)
    item = AttentionItem("t1", "approval", WIDE, WIDE)
    prompt = inbox_option(item).prompt
    assert isinstance(prompt, Content)
    for line in prompt.split("\n"):
        assert line.cell_length <= INBOX_TEXT_WIDTH, line.plain


def test_cut_text_counts_cells_and_never_splits_a_wide_character() -> None:
    assert cut_text("界界界", 6) == "界界界"
    assert cut_text("界界界", 5) == "界界…"
    assert cut_text("界界界", 4) == "界…", "no half of a wide character"
    assert cut_text("abcdef", 4) == "abc…"
    assert cut_text("e\u0301" * 10, 10) == "e\u0301" * 10, "combining marks take no cell"


# --- the terminal's own channels: desktop notifications and the clipboard -----------------------


@pytest.mark.parametrize("kind", [OSC9, OSC777])
@pytest.mark.parametrize("in_tmux", [False, True])
def test_a_notification_of_hostile_text_is_one_bounded_sequence_of_plain_words(
    kind: str, in_tmux: bool
) -> None:
    env = {"TMUX": "/tmp/tmux-1/default,1,0"} if in_tmux else {}
    sequence = Notifier(kind, env).sequence(HOSTILE, HOSTILE + "; 4;100")
    sequence.encode("utf-8")
    inner = sequence.removeprefix("\x1bPtmux;").removesuffix("\x1b\\") if in_tmux else sequence
    inner = inner.replace("\x1b\x1b", "\x1b") if in_tmux else inner
    assert inner.startswith(("\x1b]9;", "\x1b]777;notify;")) and inner.endswith("\x07")
    body = inner[2:-1]
    assert UNSEEN.search(body) is None, repr(UNSEEN.search(body))
    assert body.count(";") == (1 if kind == OSC9 else 3), "the text adds no field"
    assert len(body) < 300


async def test_copying_hostile_text_puts_only_its_words_on_the_clipboard() -> None:
    app = PanesApp()
    async with app.run_test(size=(120, 20)) as pilot:
        assert copy_to_clipboard(app, f"ok {ESCAPES}{SURROGATES}{BIDI} done", "[/] what")
        await pilot.pause()
        assert app.is_running
        assert app.clipboard == "ok  done"
        assert osc52_text(app.osc52[-1]) == "ok  done"


# --- links in the model's answer ----------------------------------------------------------------


def test_only_plain_http_links_are_handed_to_the_browser() -> None:
    assert browser_url("https://example.com/a?b=c#d") == "https://example.com/a?b=c#d"
    assert browser_url("HTTP://example.com") == "HTTP://example.com"
    for href in (
        "javascript:alert(document.domain)",  # `%6Aavascript:` after Textual's unquote
        "java\tscript:alert(1)",  # the browser drops the tab
        " javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vscode://vscode.git/clone?url=https://attacker.example/x",
        "ms-msdt:/id PCWDiagnostic",
        "https:attacker.example",
        "//attacker.example",
        "http://[::1",
    ):
        assert browser_url(href) is None, href


async def test_a_model_link_that_decodes_to_javascript_is_not_opened(tmp_path: Path) -> None:
    """Served, the page does `window.open(url)`: a `javascript:` URL would run there, with the token."""
    text = "See [the docs](%6Aavascript:alert(document.domain)) or [the site](https://example.com/a)."
    events = [
        p.Event(p.TASK_CREATED, "m1", 1, {"title": "links", "prompt": "links", "repo": "/r"}, 1.0),
        p.Event(
            p.ITEM_COMPLETED, "m1", 2, {"item": {"id": "a", "type": p.ITEM_AGENT_MESSAGE, "text": text}}, 2.0
        ),
        p.Event(p.TASK_STATUS, "m1", 3, {"status": "ready"}, 3.0),
    ]
    config = Config(home=tmp_path / "home", theme="codex-dark", model="m")
    app = CodexApp(config, RolloutReplay(events), repo=tmp_path, show_elapsed=False)
    opened: list[str] = []
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.open_url = lambda url, *, new_tab=True: opened.append(url)  # type: ignore[method-assign]
        await until(pilot, lambda: any(chat.query(Markdown) for chat in app.query(ChatView)))
        markdown = app.query_one(ChatView).query(Markdown).first(Markdown)
        markdown.post_message(Markdown.LinkClicked(markdown, "%6Aavascript:alert(document.domain)"))
        markdown.post_message(Markdown.LinkClicked(markdown, "https://example.com/a"))
        await pilot.pause(0.2)
        assert opened == ["https://example.com/a"]
        assert any(n.message.startswith("Not opened: only http(s) links") for n in app._notifications)
