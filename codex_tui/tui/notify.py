"""Desktop notifications by terminal escape sequence, when a task finishes, fails or waits for approval.

Two sequences are in use: OSC 9 (`ESC ] 9 ; text BEL`: iTerm2, WezTerm, Windows Terminal, kitty)
and OSC 777 (`ESC ] 777 ; notify ; title ; body BEL`: rxvt, foot, Ghostty, VTE terminals). Which
one a terminal understands is read from its environment; inside tmux the sequence is wrapped in
tmux's DCS passthrough (it reaches the terminal when tmux has `set -g allow-passthrough on`).

The text is untrusted (task titles and failure messages come from the model and the sandbox):
control characters and escape sequences are removed, `;` (a field separator in both sequences —
Windows Terminal reads `9;4;…` as a progress report) becomes `,`, and the length is bounded.
The sequence goes through the app's driver, between frames, so it never tears the screen; nothing
is written in headless (tests) or web mode, where there is no terminal to notify.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final

from textual.app import App

from codex_tui.boundary.terminal import strip_controls
from codex_tui.config import Config
from codex_tui.tui.state import TaskModel

OSC9: Final = "osc9"
OSC777: Final = "osc777"
TITLE_LIMIT: Final = 60
"""Characters of a notification's title (terminals show one short line)."""
BODY_LIMIT: Final = 200
"""Characters of a notification's body."""
TASK_NOTICES: Final[Mapping[str, str]] = {
    "ready": "Task ready",
    "waiting_approval": "Approval needed",
    "failed": "Task failed",
}
"""The task statuses that notify, with the notification's title."""

_SPACES = re.compile(r"\s+")
_OSC9_PROGRAMS: Final = frozenset({"iTerm.app", "WezTerm"})


def terminal_kind(env: Mapping[str, str]) -> str | None:
    """The notification sequence this terminal understands (OSC9 or OSC777), or None for none known.

    Inside tmux TERM_PROGRAM names tmux, so the outer terminal is recognised by what it leaves in
    the environment (LC_TERMINAL, WT_SESSION, KITTY_WINDOW_ID, VTE_VERSION…).
    """
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    if env.get("STY") and not env.get("TMUX"):
        return None  # GNU screen: no passthrough we speak
    if program in _OSC9_PROGRAMS or env.get("LC_TERMINAL") == "iTerm2" or env.get("ITERM_SESSION_ID"):
        return OSC9
    if program == "ghostty" or term == "xterm-ghostty" or env.get("GHOSTTY_RESOURCES_DIR"):
        return OSC777
    if env.get("WT_SESSION") or env.get("KITTY_WINDOW_ID") or term == "xterm-kitty":
        return OSC9
    if env.get("WEZTERM_PANE") or env.get("WEZTERM_EXECUTABLE"):
        return OSC9
    if term.startswith(("foot", "rxvt")) or env.get("VTE_VERSION"):
        return OSC777
    return None


def clean_field(text: str, limit: int) -> str:
    """One line of untrusted text fit for an OSC field: no controls, no `;`, at most `limit` chars."""
    text = _SPACES.sub(" ", strip_controls(text)).strip().replace(";", ",")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def osc9(title: str, body: str) -> str:
    """`ESC ] 9 ; title: body BEL` (OSC 9 has one text field)."""
    title, body = clean_field(title, TITLE_LIMIT), clean_field(body, BODY_LIMIT)
    text = f"{title}: {body}" if title and body else title or body
    return f"\x1b]9;{text}\x07"


def osc777(title: str, body: str) -> str:
    """`ESC ] 777 ; notify ; title ; body BEL`."""
    return f"\x1b]777;notify;{clean_field(title, TITLE_LIMIT)};{clean_field(body, BODY_LIMIT)}\x07"


def tmux_wrap(sequence: str) -> str:
    """The sequence in tmux's DCS passthrough: `ESC P tmux; <sequence, ESC doubled> ESC \\`."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


class Notifier:
    """Sends desktop notifications for the app, as the `notifications` setting and the terminal allow."""

    def __init__(
        self, setting: str = "auto", env: Mapping[str, str] | None = None, *, headless_too: bool = False
    ) -> None:
        env = os.environ if env is None else env
        self.kind: str | None = terminal_kind(env) if setting == "auto" else setting
        """OSC9, OSC777, or None: no notifications (setting `off`, or a terminal with none known)."""
        if self.kind not in (OSC9, OSC777):
            self.kind = None
        self.in_tmux = bool(env.get("TMUX"))
        self.headless_too = headless_too
        """Write even under the headless driver (tests capturing the driver's output)."""

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier the config's `notifications` setting asks for."""
        return cls(config.notifications, env)

    def sequence(self, title: str, body: str) -> str:
        """The bytes to write for one notification ("" when notifications are off)."""
        if self.kind is None:
            return ""
        sequence = osc9(title, body) if self.kind == OSC9 else osc777(title, body)
        return tmux_wrap(sequence) if self.in_tmux else sequence

    def notify(self, app: App[Any], title: str, body: str) -> bool:
        """Send one notification through the app's driver; False when nothing was written."""
        driver = app._driver  # Textual's own clipboard and bell write here too
        if driver is None or app.is_web or (app.is_headless and not self.headless_too):
            return False
        sequence = self.sequence(title, body)
        if not sequence:
            return False
        driver.write(sequence)
        return True

    def notify_task(self, app: App[Any], task: TaskModel) -> bool:
        """Notify that a task is ready, failed or waits for approval (other statuses: nothing)."""
        title = TASK_NOTICES.get(task.status)
        if title is None:
            return False
        body = task.title or task.id
        if task.status == "failed" and task.message:
            body += f" — {task.message}"
        return self.notify(app, f"codex-tui: {title}", body)
