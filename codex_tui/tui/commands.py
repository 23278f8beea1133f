"""Slash commands typed in the composer, and the command palette provider reaching every action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from codex_tui.protocol import SANDBOX_MODES
from codex_tui.tui.network import parse_network_arg


@dataclass(frozen=True, slots=True)
class SlashSpec:
    """One slash command: its name, argument hint and help line."""

    name: str
    args: str
    help: str
    choices: tuple[str, ...] = ()


SLASH_COMMANDS: tuple[SlashSpec, ...] = (
    SlashSpec("new", "[PROMPT]", "start a new task (with the prompt, or with the next message)"),
    SlashSpec("attempts", "N", "run the next new task as N attempts (1-4)", ("1", "2", "3", "4")),
    SlashSpec("image", "PATH", "attach an image file to the next message"),
    SlashSpec("mode", "MODE", "sandbox mode of the selected task / next task", SANDBOX_MODES),
    SlashSpec(
        "network",
        "[off|limited|on] [DOMAIN …]",
        "internet of the next new task (limited: the allowlist plus DOMAINs); alone: the current choice",
        ("off", "limited ", "on"),
    ),
    SlashSpec("model", "[NAME]", "model for the next new tasks (without NAME: the models in use)"),
    SlashSpec(
        "review",
        "[TARGET] [INSTRUCTIONS]",
        "code review of TARGET: uncommitted, base BRANCH, commit SHA, task, attempts (none: a picker)",
        ("uncommitted", "base ", "commit ", "task", "attempts"),
    ),
    SlashSpec("ask", "[PROMPT]", "Ask mode: new tasks answer questions without changing files"),
    SlashSpec("code", "[PROMPT]", "Code mode: new tasks may change files (the default)"),
    SlashSpec("diff", "", "show the selected task's diff"),
    SlashSpec("apply", "", "apply the selected task's diff to your working tree"),
    SlashSpec("branch", "", "commit the selected task's diff to its own branch"),
    SlashSpec("undo", "", "undo the selected task's last turn"),
    SlashSpec("compact", "", "summarise the selected task's history to free context"),
    SlashSpec("status", "", "show model, mode, context and token usage"),
    SlashSpec("mcp", "", "list the MCP servers: transport, state, error, tools"),
    SlashSpec("theme", "NAME", "switch theme (remembered)"),
    SlashSpec("help", "", "list commands and key bindings"),
    SlashSpec("quit", "", "leave codex-tui (tasks are saved)"),
)
SLASH_BY_NAME = {spec.name: spec for spec in SLASH_COMMANDS}


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """A parsed slash command."""

    name: str
    arg: str = ""


@dataclass(frozen=True, slots=True)
class SlashError:
    """A slash command that cannot run, with the reason to show the user."""

    message: str


def parse_slash(text: str) -> SlashCommand | SlashError | None:
    """Parse `/name arg`; None when the text is not a slash command (a plain prompt)."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, arg = stripped[1:].partition(" ")
    name = head.strip().lower()
    arg = arg.strip()
    if not name:
        return SlashError("Type a command after '/' (try /help)")
    spec = SLASH_BY_NAME.get(name)
    if spec is None:
        close = [s.name for s in SLASH_COMMANDS if s.name.startswith(name[:2])]
        hint = f" — did you mean /{close[0]}?" if close else " (try /help)"
        return SlashError(f"Unknown command /{name}{hint}")
    return _check_args(spec, arg)


def _check_args(spec: SlashSpec, arg: str) -> SlashCommand | SlashError:
    if spec.name == "attempts":
        if not arg.isdigit() or not 1 <= int(arg) <= 4:
            return SlashError("/attempts needs a number from 1 to 4")
    elif spec.name == "mode":
        if arg not in SANDBOX_MODES:
            return SlashError(f"/mode needs one of: {', '.join(SANDBOX_MODES)}")
    elif spec.name == "network":
        problem = parse_network_arg(arg)
        if isinstance(problem, str):
            return SlashError(problem)
    elif spec.name in ("image", "theme") and not arg:
        return SlashError(f"/{spec.name} needs {spec.args}")
    elif spec.args == "" and arg:
        return SlashError(f"/{spec.name} takes no argument")
    return SlashCommand(spec.name, arg)


def complete_slash(text: str, themes: list[str] | None = None) -> list[str]:
    """Completions for a partially typed slash command (whole replacement texts)."""
    if not text.startswith("/") or "\n" in text:
        return []
    head, sep, arg = text[1:].partition(" ")
    if not sep:
        return [f"/{s.name}" + (" " if s.args else "") for s in SLASH_COMMANDS if s.name.startswith(head)]
    spec = SLASH_BY_NAME.get(head.lower())
    if spec is None:
        return []
    choices = list(spec.choices) or (sorted(themes or []) if spec.name == "theme" else [])
    return [f"/{spec.name} {c}" for c in choices if c.startswith(arg) and c != arg]


def slash_help() -> str:
    """Markdown table of the slash commands (for /help)."""
    rows = [f"| `/{s.name}{' ' + s.args if s.args else ''}` | {s.help} |" for s in SLASH_COMMANDS]
    return "| command | what it does |\n|---|---|\n" + "\n".join(rows)


def complete_mention(text: str, files: list[str], limit: int = 12) -> tuple[str, list[str]]:
    """For text ending in `@partial`, the partial and matching repository paths (prefix hits first)."""
    at = text.rfind("@")
    if at < 0 or (at > 0 and not text[at - 1].isspace()):
        return "", []
    partial_path = text[at + 1 :]
    if any(c.isspace() for c in partial_path):
        return "", []
    needle = partial_path.lower()
    starts = [f for f in files if f.lower().startswith(needle)]
    contains = [f for f in files if needle in f.lower() and not f.lower().startswith(needle)]
    return partial_path, (starts + contains)[:limit]


# --- command palette ------------------------------------------------------------------------------

PaletteEntry = tuple[str, str, Callable[[], Any]]
"""(title, help, callback)"""


@runtime_checkable
class PaletteHost(Protocol):
    """What the palette needs of the app (the app itself, without importing it)."""

    def palette_entries(self) -> list[PaletteEntry]:
        """Every action as (title, help, callback)."""
        ...


class CodexCommands(Provider):
    """Palette entries for every action: tasks, panes, views, apply/branch/undo, themes."""

    def _entries(self) -> list[PaletteEntry]:
        host = self.app
        if not isinstance(host, PaletteHost):
            return []
        return host.palette_entries()

    async def discover(self) -> Hits:
        """Show every entry when nothing is typed yet."""
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Fuzzy-match entries against the query."""
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(callback), help=help_text)
