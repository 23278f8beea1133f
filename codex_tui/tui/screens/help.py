"""The help screen: every key binding (as remapped by the user's keymap) and the slash commands."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from codex_tui.tui.bindings import ALL_BINDINGS, HELP_BINDINGS
from codex_tui.tui.commands import slash_help


def key_label(keys: str) -> str:
    """`ctrl+n` → `Ctrl+N`, `f1,question_mark` → `F1 / ?`."""
    names = {"question_mark": "?", "escape": "Esc", "enter": "Enter", "up": "↑", "down": "↓"}
    out = []
    for key in keys.split(","):
        *mods, last = key.strip().split("+")
        single = last.upper() if mods else last
        label = names.get(last, single if len(last) == 1 else last.capitalize())
        out.append("+".join([*(m.capitalize() for m in mods), label]))
    return " / ".join(out)


def bindings_markdown(keymap: dict[str, str]) -> str:
    """One table per group: key (after remapping), what it does, binding id."""
    sections = []
    for group, bindings in ALL_BINDINGS.items():
        rows = []
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = keymap.get(b.id or "", b.key)
            rows.append(f"| `{key_label(keys)}` | {b.description or b.action} | `{b.id}` |")
        sections.append(f"### {group}\n\n| key | action | id |\n|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(sections)


def help_markdown(keymap: dict[str, str]) -> str:
    """The whole help page."""
    return (
        '## Keys\n\nRemap any of them under `[keymap]` in config.toml: `"task.new" = "ctrl+t"`.\n\n'
        + bindings_markdown(keymap)
        + "\n\n## Slash commands\n\n"
        + slash_help()
        + "\n\nType `@` to mention a repository file; paste an image path to attach it."
    )


class HelpScreen(ModalScreen[None]):
    """Esc, F1 or q closes it."""

    CSS_PATH = "help.tcss"

    BINDINGS: ClassVar[list[BindingType]] = HELP_BINDINGS

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.remapped = keymap

    def compose(self) -> ComposeResult:
        """A scrollable Markdown page."""
        with VerticalScroll(id="help-dialog"):
            yield Static("codex-tui help — Esc to close", id="help-title")
            yield Markdown(help_markdown(self.remapped), id="help-body")

    async def action_dismiss(self, result: None = None) -> None:
        """Close the help screen."""
        self.dismiss(result)
