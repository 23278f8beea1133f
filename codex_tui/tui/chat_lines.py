"""One-line texts of the chat and task list: commands, patches, durations, token counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CommandInfo:
    """What the log pane knows about one command, kept after its output has been dropped."""

    item_id: str
    command: str
    exit_code: int | None = None
    duration_ms: int | None = None
    note: str = ""
    done: bool = False


def command_line(command: str, info: CommandInfo, status: str = "") -> str:
    """The compact chat line for a command: `Ran pytest -q · exit 1 · 2.3 s`."""
    short = " ".join(command.split())
    if len(short) > 100:
        short = short[:99] + "…"
    if status == "declined":
        return f"Declined {short}"
    if not info.done:
        return f"Running {short}"
    parts = [f"Ran {short}"]
    if info.exit_code is not None:
        parts.append(f"exit {info.exit_code}")
    if info.duration_ms is not None:
        parts.append(format_duration(info.duration_ms / 1000))
    if info.note:
        parts.append(info.note)
    return " · ".join(parts)


def file_change_line(item: dict[str, Any]) -> str:
    """The compact chat line for a patch: `Edited src/a.py +3 −1`."""
    verbs = {"add": "Added", "delete": "Deleted", "update": "Edited"}
    changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
    if item.get("status") == "failed":
        return f"Patch failed: {item.get('error') or 'could not apply'}"
    if not changes:
        return "Edited files"
    first = changes[0]
    verb = verbs.get(str(first.get("kind")), "Edited")
    path = str(first.get("path", ""))
    if first.get("move_path"):
        path = f"{path} → {first['move_path']}"
    more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
    counts = ""
    if "added" in item or "removed" in item:
        counts = f" +{as_int(item.get('added'), 0)} −{as_int(item.get('removed'), 0)}"
    return f"{verb} {path}{more}{counts}"


def format_duration(seconds: float) -> str:
    """`0.4 s`, `2.3 s`, `1m 05s`, `2h 03m`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_tokens(tokens: int) -> str:
    """`950`, `12.3k`, `1.2M`."""
    if tokens < 1000:
        return str(tokens)
    if tokens < 1_000_000:
        return f"{tokens / 1000:.1f}k"
    return f"{tokens / 1_000_000:.1f}M"


def command_note(item: dict[str, Any]) -> str:
    if item.get("timed_out"):
        return "timed out"
    if item.get("status") == "declined":
        return "declined"
    return ""


def as_int(value: Any, default: int) -> int:
    """A whole number from event data (a float is cut; anything else, a bool included, is `default`)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return default
