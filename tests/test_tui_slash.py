"""Slash commands, fast typing and the command palette, on the real app, manager and model server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import events
from textual.binding import Binding

from codex_tui import protocol as p
from codex_tui.tui.bindings import ALL_BINDINGS
from codex_tui.tui.screens.help import HelpScreen
from codex_tui.tui.widgets.composer import Composer
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.status_bar import StatusBar
from tests.conftest import run_git
from tests.test_tui_app import SCENARIOS, new_task
from tests.test_tui_support import Harness, running_app


def post_keys(h: Harness, text: str) -> None:
    """Queue key presses the way the terminal driver does: all at once, nothing awaited between."""
    names = {" ": "space", "/": "slash", "\n": "enter"}
    for char in text:
        h.app.post_message(events.Key(names.get(char, char), "\r" if char == "\n" else char))


def status_line(h: Harness) -> str:
    """The status bar's text."""
    return str(h.app.main_widget(StatusBar).render())


async def test_status_diff_branch_and_undo_slash_commands(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Add a comment to calc.py")
        await h.wait_status(task_id, "ready")
        await h.send("/status")
        await h.wait(lambda: "diff +1 −1 in 1 file(s)" in h.text(), what="the status toast")
        assert "model scripted · mode auto" in h.text()
        await h.send("/diff")
        assert h.app.active_pane() == "diff"
        await h.wait(lambda: "# checked by the agent" in h.text(), what="the diff pane")

        await h.send("/branch")
        await h.wait(lambda: run_git(git_repo, "branch", "--list", "codex/*").strip() != "", what="a branch")
        branch = run_git(git_repo, "branch", "--list", "codex/*").strip()
        assert "# checked by the agent" in run_git(git_repo, "show", f"{branch}:calc.py")
        assert "checked by the agent" not in (git_repo / "calc.py").read_text()
        await h.wait(lambda: f"committed 1 file(s) to {branch}" in h.text(), what="the branch toast")

        await h.send("/undo")
        await h.wait(lambda: "Undid turn 1" in h.text(), what="the undo note")
        result = await h.manager.submit(p.Op(p.OP_GET_DIFF, task_id))
        assert result.data["patch"] == ""
        await h.wait(lambda: h.app.state.tasks[task_id].added == 0, what="the emptied diff counts")
        await h.wait(lambda: "No changes yet" in h.text(), what="the empty diff pane")
        assert "# checked by the agent" not in h.text()


TWO_TURNS = {
    "name": "two-turns",
    "match": "(?i)greet me twice",
    "turns": [{"text": "First greeting from the agent."}, {"text": "Second greeting from the agent."}],
}


async def test_undo_removes_the_undone_turn_from_the_chat_and_keeps_the_earlier_one(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, [TWO_TURNS, *SCENARIOS]) as h:
        task_id = await new_task(h, "Greet me twice please")
        await h.wait_status(task_id, "ready")
        await h.wait(lambda: "First greeting from the agent." in h.text(), what="the first answer")
        await h.send("Now the second one")
        await h.wait(lambda: "Second greeting from the agent." in h.text(), what="the second answer")
        await h.wait_status(task_id, "ready")
        assert "follow-up Now the second one" in h.text()

        await h.send("/undo")
        await h.wait(lambda: "Undid turn 2" in h.text(), what="the undo note")
        await h.wait(
            lambda: "Second greeting from the agent." not in h.text(), what="the undone answer to go"
        )
        text = h.text()
        assert "follow-up Now the second one" not in text
        assert "First greeting from the agent." in text and "you Greet me twice please" in text
        blocks = [b.text for b in h.app.state.tasks[task_id].blocks]
        assert "Second greeting from the agent." not in blocks and "First greeting from the agent." in blocks


async def test_compact_slash_command_summarises_the_conversation(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Say hello please")
        await h.wait_status(task_id, "ready")
        before = len(h.server.model_requests())
        await h.send("/compact")
        await h.wait(lambda: "Context compacted" in h.text(), what="the compaction note in the chat")
        assert len(h.server.model_requests()) == before + 1
        summary_request = h.server.model_requests()[-1].body
        assert not summary_request.get("tools")


async def test_model_and_mode_slash_commands_reach_the_manager(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.send("/model scripted:hello")
        await h.wait(lambda: "New tasks use model scripted:hello" in h.text(), what="the model toast")
        await h.send("/mode read-only")
        task_id = await new_task(h, "Tell me anything")
        await h.wait_status(task_id, "ready")
        assert h.task(task_id)["model"] == "scripted:hello"
        assert h.task(task_id)["mode"] == "read-only"
        assert h.server.model_requests()[-1].body["model"] == "scripted:hello"
        await h.wait(lambda: "Hello from the agent." in h.text(), what="the hello scenario's answer")
        assert "model scripted:hello" in status_line(h) and "mode read-only" in status_line(h)

        await h.send("/model")
        await h.wait(lambda: "selected task: scripted:hello" in h.text(), what="the model summary")
        await h.send("/mode full-access")
        await h.wait(lambda: h.task(task_id)["mode"] == "full-access", what="the task's mode to change")
        await h.wait(lambda: "Mode for the next turn: full-access." in h.text(), what="the mode note")
        assert "mode full-access" in status_line(h)


async def test_new_with_a_prompt_starts_a_second_task_while_one_is_selected(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        first = await new_task(h, "Say hello first")
        await h.wait_status(first, "ready")
        assert "Follow up · Say hello first" in h.text()
        await h.send("/new Say hello again")
        await h.wait(lambda: len(h.manager.tasks()) == 2, what="a second task")
        titles = [t["title"] for t in h.manager.tasks()]
        assert titles == ["Say hello first", "Say hello again"]


async def test_help_and_quit_slash_commands(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.send("/help")
        await h.wait(lambda: isinstance(h.app.screen, HelpScreen), what="the help screen")
        await h.pilot.press("escape")
        await h.wait(lambda: not isinstance(h.app.screen, HelpScreen), what="help to close")
        await h.pilot.press("ctrl+t", "question_mark")
        await h.wait(lambda: isinstance(h.app.screen, HelpScreen), what="? to open help from the task list")
        await h.pilot.press("escape")
        await h.wait(lambda: not isinstance(h.app.screen, HelpScreen), what="help to close")
        await h.pilot.press("ctrl+l")
        await h.send("/quit")
        for _ in range(100):
            if h.app.return_code is not None:
                break
            await asyncio.sleep(0.02)
        assert h.app.return_code == 0


async def test_enter_right_after_fast_typing_sends_everything_typed(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        h.app.main_widget(Composer).area.focus()
        await h.pilot.pause()
        post_keys(h, "Say hello quickly\n")
        await h.wait(lambda: len(h.manager.tasks()) == 1, what="the task typed in one burst")
        assert h.manager.tasks()[0]["title"] == "Say hello quickly"
        post_keys(h, "/status\n")
        await h.wait(lambda: "Status" in h.text() and "attempt 1/1" in h.text(), what="the status toast")
        assert h.app.main_widget(Composer).area.text == ""


async def test_enter_runs_the_highlighted_command_but_only_completes_one_with_an_argument(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        composer = h.app.main_widget(Composer)
        await h.type("/hel")
        await h.wait(lambda: composer.completing, what="the completion list")
        await h.pilot.press("enter")
        await h.wait(lambda: isinstance(h.app.screen, HelpScreen), what="/help to run")
        await h.pilot.press("escape")
        await h.type("/the")
        await h.wait(lambda: composer.completing, what="the completion list")
        await h.pilot.press("enter")
        await h.wait(lambda: composer.area.text == "/theme ", what="the command to be completed")
        await h.type("gla")
        await h.wait(lambda: composer.completing, what="theme names")
        await h.pilot.press("enter")
        await h.wait(lambda: h.app.theme == "glacier", what="the theme switch")
        await h.type("look at @calc")
        await h.wait(lambda: composer.completing, what="the path completion")
        await h.pilot.press("escape")
        await h.pilot.press("enter")
        await h.wait(lambda: len(h.manager.tasks()) == 1, what="the prompt sent as typed")
        assert h.manager.tasks()[0]["title"] == "look at @calc"


def binding_actions(group: str) -> list[str]:
    """The actions of one help group's bindings."""
    return [b.action for b in ALL_BINDINGS[group] if isinstance(b, Binding)]


async def test_palette_reaches_every_key_binding_action(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Add a comment to calc.py")
        await h.wait_status(task_id, "ready")
        actions = {action for _title, _help, action in h.app.palette_actions()}
        wanted = [a.removeprefix("app.") for a in binding_actions("Main") + binding_actions("Task list")]
        wanted += [f"pane_key('diff', {a!r})" for a in binding_actions("Diff pane")]
        wanted += [f"pane_key('log', {a!r})" for a in binding_actions("Log pane")]
        wanted += [f"set_mode({m!r})" for m in p.SANDBOX_MODES]
        wanted += [f"goto_task({task_id!r})", "set_model('scripted')"]
        assert [a for a in wanted if a not in actions] == []

        await h.pilot.press("ctrl+p")
        await h.pilot.press(*"split")
        await h.wait(lambda: "Diff: split / unified" in h.text(), what="the palette entry")
        await h.pilot.press("enter")
        await h.wait(lambda: h.app.main_widget(DiffView).split, what="the split diff")
        assert h.app.active_pane() == "diff"
        await h.pilot.press("ctrl+p")
        await h.pilot.press(*"mode: read")
        await h.wait(lambda: "Mode: read-only" in h.text(), what="the mode entry")
        await h.pilot.press("enter")
        await h.wait(lambda: h.task(task_id)["mode"] == "read-only", what="the mode change")
