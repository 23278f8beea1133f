"""Text from a task never drives the terminal: no clipboard writes, title changes or screen clears.

A hostile command prints escape sequences, names files with them and the model answers with them;
`codex-tui exec` (human and JSON), `tasks show`, `tasks list` and every TUI pane must print the
words and none of the sequences.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Static

from codex_tui import protocol as p
from codex_tui.boundary.terminal import strip_controls
from codex_tui.exec_printers import json_line
from codex_tui.scripted import ScriptedServer
from codex_tui.tui.state import AppState
from codex_tui.tui.widgets.diff_view import file_list_prompt
from tests.test_exec import provider_flags, run_cli
from tests.test_tasks_support import add_file_patch, patch_call, scenario, shell_call
from tests.test_tui_support import running_app
from tests.test_widget_diff_view import DiffApp, git_patch, load, screen_strips

HOSTILE = (
    "\x1b]52;c;cm0gLXJmIH4K\x07"  # OSC 52: write "rm -rf ~" into the clipboard
    "\x1b]0;pwned\x1b\\"  # OSC 0: retitle the window (ended by ST)
    "\x1b[2J\x1b[H"  # CSI: clear the screen, cursor home
    "\x9b6n\x9d2;c1-title\x9c"  # C1 (8-bit) CSI and OSC
    "\x1bP+q544e\x1b\\"  # DCS: ask the terminal for its capabilities
    "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\"  # APC, PM, SOS strings
    "\x1b7\x1bc"  # two-character sequences: save cursor, full reset
    "\x07\x08\x7f\x85"  # BEL, BS, DEL, NEL
)
"""Every kind of control sequence a task could try on the user's terminal."""
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Characters that must never reach the terminal from a task (newline and tab may)."""
INJECTED = ("\x1b]52", "\x1b]0;pwned", "\x1b[2J", "\x1bP", "\x1b_", "\x1bc", "\x07", "\x9b", "\x9d")
"""What would show in the raw terminal output if task text were drawn unstripped."""


# --- strip_controls ------------------------------------------------------------------------------


def test_clipboard_title_and_clear_sequences_are_removed_whole() -> None:
    text = f"before {HOSTILE}after"
    assert strip_controls(text) == "before after"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink
        ("\x1b[38;2;255;0;0mred\x1b[0m", "red"),  # colours
        ("\x1b[?1049h\x1b[?1000h", ""),  # alternate screen, mouse reporting
        ("a\x1b(Bb", "ab"),  # charset designation (nF)
        ("tail \x1b]52;c;never-terminated", "tail "),  # a cut-off string goes to its end
        ("tail \x1b", "tail "),  # a lone ESC at the end
        ("\x1b[31", "31"),  # a cut-off CSI: its ESC [ goes, the digits stay harmless
        ("nul\x00 del\x7f nel\x85 bs\x08", "nul del nel bs"),  # single C0, DEL and C1 characters
    ],
)
def test_each_kind_of_escape_sequence_is_removed(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


def test_newlines_tabs_and_unicode_stay_and_crlf_becomes_lf() -> None:
    assert strip_controls("a\tb\r\nc\nd\re") == "a\tb\nc\nde"
    assert strip_controls("café ✔ 日本語 🙂\u2028") == "café ✔ 日本語 🙂\u2028"


def test_a_sequence_split_across_chunks_leaves_no_control_character() -> None:
    rng = random.Random(7)
    alphabet = "ab \n\t\x1b\x07\x9b\x9c\x9d[]P\\;0123456789m"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        cut = rng.randint(0, len(text))
        for chunk in (text, text[:cut], text[cut:]):
            assert not CONTROL.search(strip_controls(chunk)), repr(chunk)


def test_json_lines_escape_del_and_c1_that_json_leaves_raw() -> None:
    line = json_line({"text": HOSTILE})
    assert not CONTROL.search(line)
    assert json.loads(line) == {"text": HOSTILE}, "the data itself is kept, only escaped"


# --- the TUI -------------------------------------------------------------------------------------


def test_tui_model_holds_no_control_sequence_from_any_event() -> None:
    state = AppState()
    item = {"id": "c1", "type": p.ITEM_COMMAND, "command": f"echo {HOSTILE}", "status": "in_progress"}
    events: list[tuple[str, dict[str, Any]]] = [
        (p.TASK_CREATED, {"title": f"title {HOSTILE}", "prompt": f"prompt {HOSTILE}"}),
        (p.ITEM_STARTED, {"item": item}),
        (p.OUTPUT_DELTA, {"item_id": "c1", "stream": "stdout", "text": f"out {HOSTILE}\n"}),
        (p.ITEM_COMPLETED, {"item": {**item, "status": "failed", "exit_code": 1}}),
        (p.MESSAGE_DELTA, {"item_id": "m1", "delta": f"answer {HOSTILE}"}),
        (p.ITEM_COMPLETED, {"item": {"id": "m1", "type": p.ITEM_AGENT_MESSAGE, "text": f"answer {HOSTILE}"}}),
        (p.ITEM_COMPLETED, {"item": {"id": "l", "type": p.ITEM_TODO_LIST, "items": [{"text": HOSTILE}]}}),
        (p.APPROVAL_REQUESTED, {"request_id": "r", "command": HOSTILE, "reason": HOSTILE, "patch": HOSTILE}),
        (p.NOTE, {"level": "error", "message": f"note {HOSTILE}"}),
        (p.TASK_STATUS, {"status": "waiting_approval", "message": HOSTILE}),
    ]
    for seq, (type_, data) in enumerate(events, 1):
        state.apply(p.Event(type_, "t-1", seq, data))
    task = state.tasks["t-1"]
    shown = [task.title, *(b.text for b in task.blocks), *(str(op) for op in task.log)]
    shown += [t.text for t in task.todos] + [a.command + a.reason + a.patch for a in task.approvals.values()]
    assert "".join(shown).count("answer") >= 1 and "out " in "".join(shown)
    assert not [text for text in shown if CONTROL.search(text)]


def raw_terminal_output(app: App[Any]) -> str:
    """The bytes the app would send to the terminal for a full repaint of the current screen."""
    width, height = app.size
    buffer = io.StringIO()
    console = Console(
        width=width,
        height=height,
        file=buffer,
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return buffer.getvalue()


async def test_textual_alone_would_send_a_task_escape_sequence_to_the_terminal() -> None:
    """Why every front end strips: Textual drops only BEL, BS, VT, FF and CR, not ESC or C1."""

    class Plain(App[None]):
        def compose(self) -> ComposeResult:
            yield Static(f"raw {HOSTILE}")

    async with Plain().run_test(size=(60, 5)) as pilot:
        await pilot.pause()
        raw = raw_terminal_output(pilot.app)
    assert "\x1b]52;c;" in raw and "\x9b" in raw


PRINTS_HOSTILE_OUTPUT = (
    "python3",
    "-c",
    "import sys; sys.stdout.write(sys.argv[1] + 'visible-' + 'output\\n')",
    HOSTILE,
)
"""A command printing every sequence, then `visible-output` (a text its command line does not hold)."""

HOSTILE_TASK = {
    "name": "hostile",
    "match": "(?i)hostile",
    "turns": [
        {
            "reasoning": f"thinking {HOSTILE}",
            "tool_calls": [
                shell_call(*PRINTS_HOSTILE_OUTPUT),
                patch_call(add_file_patch("notes.txt", f"line {HOSTILE}diff-line")),
            ],
        },
        {"text": f"final-answer {HOSTILE}"},
    ],
}


async def test_every_pane_draws_a_hostile_task_without_its_control_sequences(
    git_repo: Path, isolated_home: Path
) -> None:
    async with running_app(git_repo, isolated_home, [HOSTILE_TASK]) as h:
        await h.send("run the hostile task")
        await h.wait(lambda: bool(h.manager.tasks()), what="the task")
        task_id = h.manager.tasks()[0]["id"]
        await h.wait_status(task_id, "ready", "failed")
        for pane, words in (("chat", "final-answer"), ("log", "visible-output"), ("diff", "diff-line")):
            h.app.action_show_pane(pane)

            def shown(words: str = words) -> bool:
                return words in h.text()

            await h.wait(shown, what=f"{words} in the {pane} pane")
            raw = raw_terminal_output(h.app)
            assert [s for s in INJECTED if s in raw] == [], f"{pane} pane sent a task's control sequence"
        h.app.notify(f"toast {HOSTILE}")
        await h.pilot.pause()
        assert [s for s in INJECTED if s in raw_terminal_output(h.app)] == []


async def test_diff_pane_shows_a_hostile_file_name_and_line_without_the_sequences(tmp_path: Path) -> None:
    name = "evil\x1b]0;pwned\x07\x9b2J.txt"
    patch = git_patch(tmp_path, {"a.txt": "a\n"}, {"a.txt": "a\n", name: f"x = 1 {HOSTILE}still-shown\n"})
    assert "evil\\033]0;pwned\\a" in patch, "git quotes the name; the pane decodes it"
    async with DiffApp().run_test(size=(220, 12)) as pilot:
        view = await load(pilot, patch)
        drawn = [segment.text for strip in screen_strips(view) for segment in strip]
        drawn += [file_list_prompt(file).plain for file in view.patch.files]
        assert not [text for text in drawn if CONTROL.search(text)]
        assert any("still-shown" in text for text in drawn), "the code after a sequence is not hidden"
        assert any("evil" in text and ".txt" in text for text in drawn)


# --- exec, tasks show, tasks list ----------------------------------------------------------------

FAILING_HOSTILE = scenario(
    "hostile-exec",
    {
        "reasoning": f"thinking {HOSTILE}",
        "tool_calls": [
            shell_call(*PRINTS_HOSTILE_OUTPUT[:2], PRINTS_HOSTILE_OUTPUT[2] + "; sys.exit(3)", HOSTILE)
        ],
    },
    {"text": f"final-answer {HOSTILE}"},
)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[ScriptedServer]:
    """A scripted model whose command output and answer are full of control sequences."""
    server = ScriptedServer([FAILING_HOSTILE]).start_in_thread()
    yield server
    server.stop()


def test_exec_and_tasks_commands_print_a_hostile_task_without_its_control_sequences(
    git_repo: Path, isolated_home: Path, hostile_server: ScriptedServer
) -> None:
    flags = provider_flags(hostile_server.base_url, "scripted:hostile-exec")
    prompt = f"fix it {HOSTILE}"
    human = run_cli("exec", prompt, "-C", str(git_repo), *flags, home=isolated_home)
    assert human.returncode == 0, human.stderr
    assert "visible-output" in human.stderr and "thinking" in human.stderr, (
        "the failed command's tail is shown"
    )
    assert "final-answer" in human.stdout
    assert not CONTROL.search(human.stdout) and not CONTROL.search(human.stderr)

    as_json = run_cli("exec", prompt, "-C", str(git_repo), "--json", *flags, home=isolated_home)
    assert as_json.returncode == 0, as_json.stderr
    assert not CONTROL.search(as_json.stdout) and not CONTROL.search(as_json.stderr)
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    [command] = [i for i in items if i["type"] == "command_execution"]
    assert "\x1b]52;c;" in command["aggregated_output"], "JSON keeps the data, escaped"
    task_id = events[0]["thread_id"]

    show = run_cli("tasks", "show", task_id, home=isolated_home)
    listing = run_cli("tasks", "list", home=isolated_home)
    assert show.returncode == 0 and listing.returncode == 0, show.stderr + listing.stderr
    assert "final-answer" in show.stdout and "fix it" in listing.stdout
    for out in (show.stdout, show.stderr, listing.stdout, listing.stderr):
        assert not CONTROL.search(out)
