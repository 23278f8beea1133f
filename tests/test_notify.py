"""Desktop notifications: the exact sequence per terminal, tmux wrapping, untrusted text, the driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from codex_tui.config import Config
from codex_tui.tui.notify import OSC9, OSC777, Notifier, clean_field, terminal_kind
from codex_tui.tui.state import TaskModel
from tests.test_tasks_support import scenario
from tests.test_tui_support import running_app

ESC, BEL = "\x1b", "\x07"


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"TERM_PROGRAM": "iTerm.app", "TERM": "xterm-256color"}, OSC9),
        ({"TERM_PROGRAM": "WezTerm"}, OSC9),
        ({"WT_SESSION": "5e7c", "TERM": "xterm-256color"}, OSC9),
        ({"KITTY_WINDOW_ID": "1", "TERM": "xterm-kitty"}, OSC9),
        ({"TERM": "foot"}, OSC777),
        ({"TERM": "rxvt-unicode-256color"}, OSC777),
        ({"TERM_PROGRAM": "ghostty", "TERM": "xterm-ghostty"}, OSC777),
        ({"VTE_VERSION": "7600", "TERM": "xterm-256color"}, OSC777),
        ({"TMUX": "/tmp/tmux-1/default,1,0", "TERM_PROGRAM": "tmux", "LC_TERMINAL": "iTerm2"}, OSC9),
        ({"TMUX": "/tmp/tmux-1/default,1,0", "TERM_PROGRAM": "tmux", "VTE_VERSION": "7600"}, OSC777),
        ({"TERM_PROGRAM": "Apple_Terminal", "TERM": "xterm-256color"}, None),
        ({"TERM": "xterm-256color"}, None),
        ({"STY": "123.pts-0", "VTE_VERSION": "7600"}, None),
    ],
)
def test_terminal_kind_is_read_from_the_environment(env: dict[str, str], kind: str | None) -> None:
    assert terminal_kind(env) == kind


def test_osc9_bytes_for_iterm() -> None:
    notifier = Notifier("auto", {"TERM_PROGRAM": "iTerm.app"})
    assert notifier.sequence("Task ready", "Fix the parser") == f"{ESC}]9;Task ready: Fix the parser{BEL}"


def test_osc777_bytes_for_foot() -> None:
    notifier = Notifier("auto", {"TERM": "foot"})
    assert (
        notifier.sequence("Task ready", "Fix the parser")
        == f"{ESC}]777;notify;Task ready;Fix the parser{BEL}"
    )


def test_inside_tmux_the_sequence_goes_through_dcs_passthrough_with_esc_doubled() -> None:
    notifier = Notifier("osc9", {"TMUX": "/tmp/tmux-1/default,1,0"})
    assert notifier.sequence("Approval needed", "Run tests") == (
        f"{ESC}Ptmux;{ESC}{ESC}]9;Approval needed: Run tests{BEL}{ESC}\\"
    )


def test_the_setting_forces_a_kind_whatever_the_terminal() -> None:
    assert (
        Notifier("osc777", {"TERM_PROGRAM": "iTerm.app"}).sequence("a", "b") == f"{ESC}]777;notify;a;b{BEL}"
    )
    assert Notifier("osc9", {}).sequence("a", "b") == f"{ESC}]9;a: b{BEL}"


def test_off_and_unknown_terminals_emit_nothing() -> None:
    assert Notifier("off", {"TERM_PROGRAM": "iTerm.app"}).sequence("Task ready", "x") == ""
    assert Notifier("auto", {"TERM": "xterm-256color"}).sequence("Task ready", "x") == ""


def test_untrusted_text_loses_controls_separators_and_length() -> None:
    title = "evil\x07\x1b]52;c;SGVsbG8=\x07 title"
    body = "line one\nline two; and\x1b[2J more " + "x" * 500
    sequence = Notifier("osc777", {}).sequence(title, body)
    assert sequence.count(ESC) == 1 and sequence.count(BEL) == 1  # only our own
    assert sequence.startswith(f"{ESC}]777;notify;evil title;line one line two, and more xxx")
    fields = sequence[len(f"{ESC}]777;") : -1].split(";")
    assert fields[0] == "notify" and len(fields) == 3
    assert len(fields[2]) == 200 and fields[2].endswith("…")


def test_osc9_text_cannot_become_a_windows_terminal_progress_report() -> None:
    assert clean_field("4;3;50", 60) == "4,3,50"


class _Bare(App[None]):
    """An app with nothing in it: only its driver matters here."""


async def test_notification_is_written_through_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _Bare()
    async with app.run_test() as pilot:
        written: list[str] = []
        assert app._driver is not None
        monkeypatch.setattr(app._driver, "write", written.append)
        assert Notifier("osc9", {}).notify(app, "Task ready", "done") is False  # headless: no terminal
        assert written == []
        assert Notifier("osc9", {}, headless_too=True).notify(app, "Task ready", "done") is True
        await pilot.pause()
        assert written == [f"{ESC}]9;Task ready: done{BEL}"]
        assert Notifier("off", {}, headless_too=True).notify(app, "Task ready", "done") is False
        assert written == [f"{ESC}]9;Task ready: done{BEL}"]


def test_only_finished_failed_and_waiting_tasks_notify() -> None:
    notifier = Notifier("osc777", {}, headless_too=True)

    class _Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def notify(self, app: object, title: str, body: str) -> bool:
            self.calls.append((title, body))
            return True

    recorder = _Recorder()
    notifier.notify = recorder.notify  # type: ignore[method-assign,assignment]
    for status in ("running", "queued", "ready", "waiting_approval", "failed"):
        task = TaskModel(id="t-1", title="Fix it", status=status, message="boom")
        notifier.notify_task(None, task)  # type: ignore[arg-type]
    assert recorder.calls == [
        ("codex-tui: Task ready", "Fix it"),
        ("codex-tui: Approval needed", "Fix it"),
        ("codex-tui: Task failed", "Fix it — boom"),
    ]


def test_from_config_reads_the_notifications_setting(tmp_path: Path) -> None:
    config = Config(home=tmp_path, notifications="off")
    assert Notifier.from_config(config, {"TERM_PROGRAM": "iTerm.app"}).kind is None
    config = Config(home=tmp_path, notifications="auto")
    assert Notifier.from_config(config, {"TERM_PROGRAM": "iTerm.app"}).kind == OSC9


async def test_a_finished_task_of_the_app_sends_its_notification(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenarios = [scenario("done", {"text": "All done."})]
    async with running_app(git_repo, tmp_path, scenarios, model="scripted:done") as harness:
        written: list[str] = []
        assert harness.app._driver is not None
        monkeypatch.setattr(harness.app._driver, "write", written.append)
        await harness.send("Tidy the README")
        task_id = next(iter(harness.app.state.tasks))
        await harness.wait_status(task_id, "ready")
        notifier = Notifier("auto", {"TERM": "foot"}, headless_too=True)
        assert notifier.notify_task(harness.app, harness.app.state.tasks[task_id])
        assert f"{ESC}]777;notify;codex-tui: Task ready;Tidy the README{BEL}" in written
