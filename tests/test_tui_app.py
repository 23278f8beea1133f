"""The TUI driven with Pilot on the real task manager, local sandbox and scripted model server."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from textual import events

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.compare import CompareScreen
from codex_tui.tui.screens.help import HelpScreen
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.state import format_tokens
from codex_tui.tui.themes import read_state
from codex_tui.tui.widgets.composer import Composer, PromptArea
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.status_bar import StatusBar
from codex_tui.tui.widgets.task_list import TaskList, TaskRow, render_row
from tests.conftest import run_git
from tests.test_tasks_support import patch_call, shell_call
from tests.test_tui_support import SIZE, Harness, only_new_task, running_app, screen_text

EDIT_PATCH = (
    "*** Begin Patch\n*** Update File: calc.py\n@@\n def add(a, b):\n"
    "-    return a + b\n+    return a + b  # checked by the agent\n*** End Patch\n"
)
HELLO = {"name": "hello", "match": "(?i)say hello", "turns": [{"text": "Hello from the **agent**."}]}
EDIT = {
    "name": "edit",
    "match": "(?i)add a comment",
    "turns": [{"tool_calls": [patch_call(EDIT_PATCH)]}, {"text": "Added the comment."}],
}
SLOW = {
    "name": "slow",
    "match": "(?i)slow job",
    "turns": [
        {"tool_calls": [shell_call("python3", "-c", "import time; time.sleep(1.5); print('slept')")]},
        {"text": "Finished the slow job."},
    ],
}
ENDLESS = {
    "name": "endless",
    "match": "(?i)endless job",
    "turns": [
        {"tool_calls": [shell_call("python3", "-c", "import time; time.sleep(60)", timeout_ms=120_000)]},
        {"text": "never reached"},
    ],
}
NEEDS_OK = {
    "name": "needs-ok",
    "match": "(?i)network check",
    "turns": [
        {
            "tool_calls": [
                shell_call(
                    "python3",
                    "-c",
                    "print('reached the outside')",
                    with_escalated_permissions=True,
                    justification="Check that the link resolves (needs the network)",
                )
            ]
        },
        {"text": "Checked."},
    ],
}
SCENARIOS = [HELLO, EDIT, SLOW, ENDLESS, NEEDS_OK]


def tiny_png(path: Path) -> Path:
    """Write a valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


async def new_task(h: Harness, prompt: str) -> str:
    before = {t["id"] for t in h.manager.tasks()}
    await h.send(prompt)
    await h.wait(lambda: len(h.manager.tasks()) > len(before), what="the task to be created")
    task_id = only_new_task(h, before)
    await h.wait(lambda: h.app.selected_id == task_id, what="the new task to be selected")
    return task_id


def last_user_text(h: Harness) -> str:
    """The text of the newest user message the model server received."""
    body = h.server.model_requests()[-1].body
    texts = []
    for item in body.get("input", []):
        if item.get("role") == "user":
            for part in item.get("content", []):
                if part.get("type") == "input_text":
                    texts.append(part["text"])
    return texts[-1] if texts else ""


async def test_new_task_from_the_composer_runs_and_shows_the_answer(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Say hello please")
        await h.wait_status(task_id, "ready")
        await h.wait(lambda: "Hello from the agent." in h.text(), what="the answer in the chat")
        text = h.text()
        assert "you Say hello please" in text
        assert "✔ Say hello please" in text
        assert h.task(task_id)["title"] == "Say hello please"
        assert h.app.main_widget(Composer).area.text == ""


async def test_typing_while_a_task_runs_steers_it(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Run the slow job")
        await h.wait(lambda: h.app.state.tasks[task_id].commands, what="the command to start")
        assert "Steer · Run the slow job" in h.text()
        await h.send("also print the result")
        await h.wait_status(task_id, "ready")
        await h.wait(lambda: "steer also print the result" in h.text(), what="the steer in the chat")
        assert "also print the result" in last_user_text(h)
        steers = [b for b in h.app.state.tasks[task_id].blocks if b.kind == "user" and b.level == "steer"]
        assert [b.text for b in steers] == ["also print the result"]


async def test_escape_interrupts_the_running_task(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Start the endless job")
        await h.wait(lambda: h.app.state.tasks[task_id].commands, what="the command to start")
        await h.pilot.press("escape")
        await h.wait(lambda: h.task(task_id)["status"] not in ("running", "starting"), what="interrupt")
        await h.wait(lambda: not h.app.state.tasks[task_id].active, what="the app to see it stop")
        assert h.task(task_id)["status"] in ("ready", "failed", "cancelled")
        command = next(iter(h.app.state.tasks[task_id].commands.values()))
        assert command.done and command.exit_code != 0
        assert "Running python3" not in h.text()


async def test_approval_dialog_approves_once(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Do the network check")
        await h.wait(lambda: isinstance(h.app.screen, ApprovalScreen), what="the approval dialog")
        text = h.text()
        assert "Approval needed" in text and "Check that the link resolves" in text
        assert "python3 -c" in text and "reached the outside" in text
        await h.pilot.press("y")
        await h.wait_status(task_id, "ready")
        assert not isinstance(h.app.screen, ApprovalScreen)
        ran = next(iter(h.app.state.tasks[task_id].commands.values()))
        assert ran.exit_code == 0
        log = "".join(op[3] for op in h.app.state.tasks[task_id].log if op[0] == "out")
        assert "reached the outside" in log
        assert "Approved: python3" in h.text()


async def test_toasts_announce_a_waiting_approval_and_a_finished_task(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Do the network check")
        await h.wait(lambda: isinstance(h.app.screen, ApprovalScreen), what="the approval dialog")
        await h.pilot.press("y")
        await h.wait(lambda: not isinstance(h.app.screen, ApprovalScreen), what="the dialog to close")
        assert "Approval needed" in h.text(), "the approval toast outlives the dialog"
        await h.wait_status(task_id, "ready")
        await h.wait(lambda: "Task ready" in h.text(), what="the task-ready toast")
        lines = h.text().splitlines()
        title_row = next(i for i, line in enumerate(lines) if "Task ready" in line)
        assert "Do the network check" in lines[title_row + 1], "the toast names the task"


async def test_approval_dialog_denies_with_n(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Do the network check")
        await h.wait(lambda: isinstance(h.app.screen, ApprovalScreen), what="the approval dialog")
        await h.pilot.press("n")
        await h.wait_status(task_id, "ready")
        await h.wait(lambda: "Denied: python3" in h.text(), what="the denial in the chat")
        log = "".join(op[3] for op in h.app.state.tasks[task_id].log if op[0] == "out")
        assert "reached the outside" not in log


async def test_attached_image_is_sent_with_the_prompt(
    git_repo: Path, isolated_home: Path, tmp_path: Path
) -> None:
    image = tiny_png(tmp_path / "screenshot.png")
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        composer = h.app.main_widget(Composer)
        await h.send(f"/image {image}")
        await h.wait(lambda: "screenshot.png 69 B" in h.text(), what="the attachment chip")
        pasted = tiny_png(tmp_path / "second.png")
        composer.area.post_message(events.Paste(f"'{pasted}'"))
        await h.wait(lambda: "second.png" in h.text(), what="the pasted image chip")
        assert composer.area.text == ""
        stray = tiny_png(tmp_path / "stray.png")
        await h.send(f"/image {stray}")
        await h.wait(lambda: "stray.png" in h.text(), what="the third chip")
        await h.pilot.click(composer.query(".chip").last())
        await h.wait(lambda: "stray.png" not in h.text(), what="the chip to be removed")
        task_id = await new_task(h, "Say hello about these pictures")
        await h.wait_status(task_id, "ready")
        assert composer.attachments == []
        await h.wait(lambda: "▣ screenshot.png  ▣ second.png" in h.text(), what="image names in the chat")
        body = json.dumps(h.server.model_requests()[0].body)
        assert body.count("data:image/png;base64,") == 2


async def test_switching_tasks_shows_the_other_tasks_chat(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        first = await new_task(h, "Say hello first")
        await h.wait_status(first, "ready")
        await h.pilot.press("ctrl+n")
        second = await new_task(h, "Add a comment to calc.py")
        await h.wait_status(second, "ready")
        await h.wait(lambda: "Added the comment." in h.text(), what="the second chat")
        assert "Hello from the agent." not in h.text()
        await h.pilot.press("ctrl+up")
        await h.wait(lambda: h.app.selected_id == first, what="selection")
        await h.wait(lambda: "Hello from the agent." in h.text(), what="the first chat")
        assert "Added the comment." not in h.text()
        assert h.app.main_widget(TaskList).selected_id == first
        assert "Follow up · Say hello first" in h.text()


async def test_apply_writes_the_diff_into_the_working_tree(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Add a comment to calc.py")
        await h.wait_status(task_id, "ready")
        await h.pilot.press("f4")
        await h.wait(lambda: "# checked by the agent" in h.text(), what="the diff pane")
        assert "checked by the agent" not in (git_repo / "calc.py").read_text()
        await h.pilot.press("ctrl+g")
        await h.wait_status(task_id, "applied")
        assert "return a + b  # checked by the agent" in (git_repo / "calc.py").read_text()
        assert "calc.py" in run_git(git_repo, "status", "--porcelain")
        await h.wait(lambda: "applied" in h.text(), what="the applied status in the list")


async def test_compare_view_applies_the_chosen_attempt(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.send("/attempts 2")
        assert "New task ×2" in h.text()
        await h.send("Add a comment to calc.py")
        await h.wait(lambda: len(h.manager.tasks()) == 2, what="two attempts")
        ids = [t["id"] for t in h.manager.tasks()]
        for task_id in ids:
            await h.wait_status(task_id, "ready")
        await h.wait(lambda: "1/2" in h.text() and "2/2" in h.text(), what="attempt numbers in the list")
        await h.pilot.press("f7")
        await h.wait(lambda: isinstance(h.app.screen, CompareScreen), what="the compare view")
        screen = h.app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.task_ids == ids
        await h.wait(lambda: h.text().count("# checked by the agent") >= 2, what="both diffs side by side")
        assert "Attempt 1/2" in h.text() and "Attempt 2/2" in h.text()
        await h.pilot.press("right")
        assert screen.chosen()["task_id"] == ids[1]
        await h.pilot.press("enter")
        await h.wait_status(ids[1], "applied")
        assert h.task(ids[0])["status"] == "ready"
        assert "# checked by the agent" in (git_repo / "calc.py").read_text()
        assert not isinstance(h.app.screen, CompareScreen)


async def test_compare_view_shows_each_attempts_log_and_chat(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.send("/attempts 2")
        await h.send("Run the slow job")
        await h.wait(lambda: len(h.manager.tasks()) == 2, what="two attempts")
        for task_id in [t["id"] for t in h.manager.tasks()]:
            await h.wait_status(task_id, "ready")
        await h.pilot.press("f7")
        await h.wait(lambda: isinstance(h.app.screen, CompareScreen), what="the compare view")
        await h.pilot.press("l")
        await h.wait(lambda: h.text().count("slept") >= 2, what="both sandbox logs side by side")
        assert h.text().count("$ python3 -c") >= 2 or h.text().count("python3 -c") >= 2
        assert "showing log" in h.text()
        await h.pilot.press("c")
        await h.wait(lambda: h.text().count("Finished the slow job.") >= 2, what="both chats side by side")
        await h.pilot.press("escape")
        await h.wait(lambda: not isinstance(h.app.screen, CompareScreen), what="back to the main view")


async def test_theme_switch_is_live_and_remembered(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        assert h.app.theme == "codex-dark"
        await h.send("/theme ember")
        assert h.app.theme == "ember"
        assert h.app.current_theme.primary == "#f29d49"
        state = json.loads((isolated_home / "state.json").read_text())
        assert state["theme"] == "ember"
        await h.send("/theme no-such-theme")
        assert h.app.theme == "ember"
        await h.wait(lambda: "Unknown theme 'no-such-theme'" in h.text(), what="the error toast")
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        assert h.app.theme == "ember"


async def test_key_remapped_in_config_takes_effect(git_repo: Path, isolated_home: Path) -> None:
    keymap = {"task.new": "ctrl+b", "pane.diff": "f9", "diff.toggle_split": "v"}
    async with running_app(git_repo, isolated_home, SCENARIOS, keymap=keymap) as h:
        first = await new_task(h, "Say hello first")
        await h.wait_status(first, "ready")
        assert "Unknown binding ids" not in h.text()
        assert "^b New task" in h.text() and "f9 Diff" in h.text()
        await h.pilot.press("ctrl+n")
        assert "New task" not in h.app.main_widget(Composer).border_title
        await h.pilot.press("ctrl+b")
        assert str(h.app.main_widget(Composer).border_title).startswith("New task")
        await h.pilot.press("f9")
        assert h.app.active_pane() == "diff"
        diff = h.app.main_widget(DiffView)
        diff.query_one("#diff-body").focus()
        await h.pilot.press("s")
        assert not diff.split, "the default key no longer toggles"
        await h.pilot.press("v")
        assert diff.split
        await h.pilot.press("f1")
        await h.wait(lambda: isinstance(h.app.screen, HelpScreen), what="help")
        await h.wait(lambda: "Ctrl+B" in h.text() and "task.new" in h.text(), what="the remapped key in help")
        help_body = h.app.help_text()
        assert "| `v` | Split/unified | `diff.toggle_split` |" in help_body
        assert "`sandbox_log.follow`" in help_body


async def test_help_palette_and_slash_errors(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.send("/attempts 7")
        await h.wait(lambda: "/attempts needs a number from 1 to 4" in h.text(), what="the error toast")
        await h.type("/com")
        await h.wait(lambda: "/compact" in h.text(), what="slash completion")
        await h.pilot.press("tab")
        assert h.app.main_widget(Composer).area.text == "/compact"
        entries = [title for title, _help, _cb in h.app.palette_entries()]
        for needed in ("New task", "Compare attempts", "Apply diff", "Undo last turn", "Theme: ember"):
            assert needed in entries


async def test_composer_history_walks_sent_messages(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Say hello once")
        await h.wait_status(task_id, "ready")
        area = h.app.main_widget(PromptArea)
        await h.pilot.press("up")
        assert area.text == "Say hello once"
        await h.pilot.press("down")
        assert area.text == ""
        await h.pilot.press("a", "ctrl+j", "b")
        assert area.text == "a\nb"
        await h.pilot.press("up")
        assert area.text == "a\nb" and area.cursor_location[0] == 0
        await h.pilot.press("up")
        assert area.text == "Say hello once"
        assert [t["title"] for t in h.manager.tasks()] == ["Say hello once"]


async def test_diff_pane_fetches_the_patch_when_shown(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Add a comment to calc.py")
        await h.wait_status(task_id, "ready")
        await h.pilot.press("f4")
        await h.wait(lambda: "return a + b  # checked by the agent" in h.text(), what="the diff")
        diff = h.app.main_widget(DiffView)
        assert [f.path for f in diff.patch.files] == ["calc.py"]
        result = await h.manager.submit(p.Op(p.OP_GET_DIFF, task_id))
        assert "# checked by the agent" in result.data["patch"]


async def test_at_mention_completes_a_repository_path(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        composer = h.app.main_widget(Composer)
        await h.wait(lambda: bool(composer.mention_files), what="the repository file list")
        await h.type("look at @test_c")
        await h.wait(lambda: composer.completing, what="the completion list")
        assert "test_calc.py" in h.text()
        await h.pilot.press("tab")
        assert composer.area.text == "look at @test_calc.py "
        assert not composer.completing


async def test_command_palette_reaches_app_actions(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        await h.pilot.press("ctrl+p")
        await h.pilot.press(*"glacier")
        await h.wait(lambda: "Theme: glacier" in h.text(), what="the palette entry")
        await h.pilot.press("enter")
        await h.wait(lambda: h.app.theme == "glacier", what="the theme switch")
        await h.wait(lambda: read_state(isolated_home).get("theme") == "glacier", what="state.json")
        await h.pilot.press("ctrl+p")
        await h.pilot.press(*"compare attempts")
        await h.wait(lambda: "Compare attempts" in h.text(), what="the compare entry")
        await h.pilot.press("enter")
        await h.wait(lambda: "Nothing to compare" in h.text(), what="the compare action to run")


async def test_task_list_keys_cancel_retry_and_archive(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Start the endless job")
        await h.wait(lambda: h.app.state.tasks[task_id].commands, what="the command to start")
        await h.pilot.press("ctrl+t")
        assert isinstance(h.app.focused, TaskList)
        await h.pilot.press("c")
        await h.wait_status(task_id, "cancelled")
        await h.pilot.press("r")
        await h.wait(lambda: len(h.manager.tasks()) == 2, what="the retried task")
        retry_id = only_new_task(h, {task_id})
        assert h.task(retry_id)["title"] == "Start the endless job"
        await h.wait(lambda: h.app.selected_id == retry_id, what="the retry to be selected")
        await h.pilot.press("escape")
        await h.wait(lambda: h.task(retry_id)["status"] not in ("queued", "starting", "running"), what="stop")
        await h.pilot.press("ctrl+t", "ctrl+up")
        await h.wait(lambda: h.app.selected_id == task_id, what="the cancelled task selected")
        await h.pilot.press("a")
        await h.wait(lambda: task_id not in {t["id"] for t in h.manager.tasks()}, what="the archive")
        await h.wait(lambda: task_id not in [t.id for t in h.app.state.visible_tasks()], what="list update")
        assert h.app.main_widget(TaskList).option_count == 1


async def test_maximise_fills_the_screen_with_the_pane(git_repo: Path, isolated_home: Path) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS) as h:
        task_id = await new_task(h, "Say hello please")
        await h.wait_status(task_id, "ready")
        await h.pilot.press("f6")
        assert h.app.screen.maximized is not None
        await h.wait(lambda: "Describe a task" not in h.text(), what="the composer to be hidden")
        assert "Hello from the agent." in h.text()
        await h.pilot.press("escape")
        assert h.app.screen.maximized is None
        await h.wait(lambda: "Describe a task" in h.text(), what="the layout to come back")


async def test_status_bar_counts_running_and_queued_tasks_and_shows_usage(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, SCENARIOS, max_parallel_tasks=1) as h:
        status = h.app.main_widget(StatusBar)
        assert "0 running · 0 queued" in str(status.render())
        await h.send("/attempts 2")
        await h.send("Run the slow job")
        await h.wait(lambda: "1 running · 1 queued" in str(status.render()), what="one running, one queued")
        line = str(status.render())
        assert "model scripted" in line and "mode auto" in line
        ids = [t["id"] for t in h.manager.tasks()]
        for task_id in ids:
            await h.wait_status(task_id, "ready")
        await h.wait(lambda: "0 running · 0 queued" in str(status.render()), what="both finished")
        line = str(status.render())
        assert "% left" in line and "0 tokens" not in line
        tokens = h.app.state.tasks[h.app.selected_id or ""].tokens
        assert tokens > 0 and f"{format_tokens(tokens)} tokens" in line


def test_task_card_shows_status_title_elapsed_counts_tokens_and_attempt() -> None:
    row = TaskRow("t-1", "●", "running", "Add reading_time()", "1m 05s", 12, 3, "4.2k", "2/3")
    text = render_row(row, 40).plain
    assert text.splitlines() == ["● Add reading_time()", "  1m 05s  +12 −3  4.2k tok  2/3  running"]


async def test_patch_approval_shows_the_patch_verbatim(tmp_path: Path) -> None:
    patch = "*** Begin Patch\n*** Update File: a.py\n@@\n-old = 1\n+new = 2\n*** End Patch\n"
    events = [
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Edit a.py", "prompt": "Edit a.py"}, 1.0),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "waiting_approval"}, 1.1),
        p.Event(
            p.APPROVAL_REQUESTED,
            "t-1",
            2,
            {"request_id": "r-1", "kind": "patch", "patch": patch, "reason": "outside the workspace"},
            1.2,
        ),
    ]
    app = CodexApp(
        Config(layout="tabs", home=tmp_path / "home"),
        RolloutReplay(events),
        repo=tmp_path,
        show_elapsed=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            if isinstance(app.screen, ApprovalScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "The agent wants to apply a patch." in text and "Reason: outside the workspace" in text
        for line in patch.splitlines():
            assert line in text
