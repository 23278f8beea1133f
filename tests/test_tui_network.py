"""The TUI's network lines in the sandbox log and the /network command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.tui.app import CodexApp
from codex_tui.tui.commands import SlashCommand, SlashError, complete_slash, parse_slash
from codex_tui.tui.network import NetworkChoice, NextNetwork, network_log_line, parse_network_arg
from codex_tui.tui.source import RolloutReplay
from codex_tui.tui.state import AppState
from codex_tui.tui.widgets.composer import Composer, PromptArea
from codex_tui.tui.widgets.sandbox_log import SandboxLog
from tests.test_tui_support import SIZE, screen_text

Snap = Callable[..., bool]


class RecordingReplay(RolloutReplay):
    """A replay that remembers the operations the app sends and accepts task.submit."""

    def __init__(self, events: list[p.Event]) -> None:
        super().__init__(events)
        self.ops: list[p.Op] = []

    async def submit(self, op: p.Op) -> p.OpResult:
        """Record the op; a submit is accepted (no task is created)."""
        self.ops.append(op)
        if op.type == p.OP_SUBMIT:
            return p.OpResult(True, "queued", {"task_ids": []})
        return await super().submit(op)


def request(seq: int, **data: Any) -> p.Event:
    """A network.request event of task t-1."""
    return p.Event(p.NETWORK_REQUEST, "t-1", seq, data, 1.0 + seq / 10)


def network_events() -> list[p.Event]:
    """A task whose command reached PyPI and was refused another host."""
    begin = {"id": "c-1", "type": p.ITEM_COMMAND, "command": "pip install requests", "status": "in_progress"}
    return [
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Install", "prompt": "Install requests"}, 1.0),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "running"}, 1.05),
        p.Event(p.ITEM_STARTED, "t-1", 2, {"item": begin}, 1.1),
        p.Event(
            p.OUTPUT_DELTA, "t-1", 3, {"item_id": "c-1", "stream": "stdout", "text": "Collecting\n"}, 1.2
        ),
        request(4, host="pypi.org", port=443, method="GET", allowed=True, rule="pypi.org", reason=""),
        request(
            5,
            host="evil.example",
            port=443,
            method="POST",
            allowed=False,
            rule="evil.example",
            reason="not in the allowlist [bold]x[/bold]\x1b[2J",
        ),
        p.Event(p.OUTPUT_DELTA, "t-1", 6, {"item_id": "c-1", "stream": "stdout", "text": "Done\n"}, 1.7),
        p.Event(p.TASK_STATUS, "t-1", 7, {"status": "ready"}, 1.8),
    ]


def make_app(tmp_path: Path, events: list[p.Event]) -> CodexApp:
    """The real app on synthetic events."""
    config = Config(layout="tabs", home=tmp_path / "home", model="scripted:default")
    return CodexApp(config, RecordingReplay(events), repo=tmp_path, show_elapsed=False)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until the events are folded in and a task is selected, with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        if not app._inbox and app.state.tasks and app.selected_id is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


async def show_log(pilot: Pilot[Any]) -> SandboxLog:
    """Switch to the Log pane and wait until the network lines are flushed into it."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    await pilot.press("f5")
    log = app.main_widget(SandboxLog)
    for _ in range(100):
        if any(line.kind.startswith("network") for line in log.lines):
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)
    return log


# --- lines ---------------------------------------------------------------------------------------


def test_allowed_request_line_names_the_rule_that_admitted_it() -> None:
    data = {"host": "pypi.org", "port": 443, "method": "get", "allowed": True, "rule": "pypi.org"}
    assert network_log_line(data) == ("⇄ GET pypi.org:443 allowed (pypi.org)", True)


def test_refused_request_line_gives_reason_and_the_rule_it_would_need() -> None:
    data = {"host": "evil.example", "port": 443, "method": "POST", "allowed": False}
    data |= {"rule": "evil.example", "reason": "not in the allowlist"}
    text, allowed = network_log_line(data)
    assert text == "⇄ POST evil.example:443 refused — not in the allowlist (would need: evil.example)"
    assert allowed is False


def test_network_request_becomes_a_log_op_without_control_sequences() -> None:
    state = AppState()
    for event in network_events():
        state.apply(event)
    nets = [op for op in state.tasks["t-1"].log if op[0] == "net"]
    assert [op[3] for op in nets] == [True, False]
    assert "\x1b" not in nets[1][2] and "[bold]x[/bold]" in nets[1][2]


async def test_log_pane_shows_network_lines_with_refused_ones_as_errors(tmp_path: Path) -> None:
    app = make_app(tmp_path, network_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        log = await show_log(pilot)
        kinds = {line.text: line.kind for line in log.lines}
        assert kinds["⇄ GET pypi.org:443 allowed (pypi.org)"] == "network-ok"
        refused = next(t for t in kinds if t.startswith("⇄ POST"))
        assert kinds[refused] == "network-refused"
        text = screen_text(app)
        assert "not in the allowlist [bold]x[/bold] (would need: evil.example)" in text  # not markup
        assert "Done" in text and "(continued)" in text


# --- /network ------------------------------------------------------------------------------------


def test_network_arguments_are_checked() -> None:
    assert parse_network_arg("") is None
    assert parse_network_arg("limited pypi.org *.github.com") == NetworkChoice(
        "limited", ("pypi.org", "*.github.com")
    )
    assert parse_network_arg("ON") == NetworkChoice("on")
    assert isinstance(parse_network_arg("sometimes"), str)
    assert parse_network_arg("on pypi.org") == "Domains only apply to /network limited"
    assert isinstance(parse_slash("/network limited https://x.org/"), SlashError)
    assert parse_slash("/network") == SlashCommand("network", "")
    assert "/network limited " in complete_slash("/network l")


def test_network_choice_applies_to_one_task_only() -> None:
    network = NextNetwork()
    assert network.take() == {}
    message, failed = network.command("limited pypi.org")
    assert not failed and "limited: pypi.org" in message
    assert network.label() == " · net limited: pypi.org"
    assert network.take() == {"network": "limited", "allowed_domains": ["pypi.org"]}
    assert network.take() == {} and network.label() == ""


async def test_network_command_is_shown_until_the_next_task_is_submitted(tmp_path: Path) -> None:
    app = make_app(tmp_path, network_events())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        composer = app.main_widget(Composer)
        composer.area.focus()
        composer.area.insert("/network limited pypi.org files.pythonhosted.org")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "net limited: pypi.org, files.pythonhosted.org" in str(composer.border_title)
        composer.area.insert("/network")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "Network of the next task: limited: pypi.org" in screen_text(app)
        composer.area.insert("Install requests")
        await pilot.press("enter")
        await pilot.pause(0.2)
        source = app.source
        assert isinstance(source, RecordingReplay)
        submits = [op.data for op in source.ops if op.type == p.OP_SUBMIT]
        assert submits and submits[-1]["network"] == "limited"
        assert submits[-1]["allowed_domains"] == ["pypi.org", "files.pythonhosted.org"]
        assert "net limited" not in str(composer.border_title)


async def test_bad_network_command_is_refused_with_a_message(tmp_path: Path) -> None:
    app = make_app(tmp_path, network_events())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        composer = app.main_widget(Composer)
        composer.area.focus()
        composer.area.insert("/network sometimes")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert "/network needs one of: off, limited, on" in screen_text(app)
        assert app.next_network.choice is None


# --- snapshot ------------------------------------------------------------------------------------


def test_snapshot_log_with_network_lines(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await show_log(pilot)

    assert snap_compare(make_app(tmp_path, network_events()), terminal_size=SIZE, run_before=run_before)
