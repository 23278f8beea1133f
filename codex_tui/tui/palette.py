"""The command palette's entries: every action of the app, as the action strings its keys run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_tui import protocol as p

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp

PANES = ("chat", "todo", "diff", "log", "review", "artifacts")
DIFF_PALETTE = (
    ("toggle_split", "split / unified"),
    ("next_hunk", "next hunk"),
    ("prev_hunk", "previous hunk"),
    ("next_file", "next file"),
    ("prev_file", "previous file"),
    ("next_finding", "next review finding"),
    ("prev_finding", "previous review finding"),
    ("copy", "copy the selection or the current hunk"),
)
LOG_PALETTE = (
    ("follow", "follow the end"),
    ("scroll_home", "go to the top"),
    ("copy", "copy the selection or the lines in view"),
)


def palette_actions(app: CodexApp) -> list[tuple[str, str, str]]:
    """(title, help, action) for every action: the same action strings the key bindings run."""
    rows: list[tuple[str, str, str]] = [
        ("New task", "start a new task with the composer", "new_task"),
        ("Interrupt task", "stop the selected task's turn", "interrupt"),
        ("Cancel task", "cancel the selected task", "cancel"),
        ("Retry task", "run the selected task again", "retry"),
        ("Archive task", "hide the selected task", "archive"),
        ("Apply diff", "apply the selected task's diff to your working tree", "apply"),
        ("Apply to branch", "commit the diff to the task's branch", "branch"),
        ("Undo last turn", "restore files and conversation", "undo"),
        ("Compact context", "summarise the history", "compact"),
        ("Compare attempts", "side-by-side view", "compare"),
        ("Mission control", "every task as a live tile; the attention inbox", "mission"),
        ("Next task needing you", "a waiting approval, a failure, an unseen result", "next_attention"),
        ("Review…", "start a code review (uncommitted, base branch, commit, task)", "review"),
        ("Ask / Code mode", "switch the kind of the next new task", "toggle_ask"),
        ("Now do it", "turn the selected Ask task into a change", "do_it"),
        ("Maximise pane", "toggle the current pane full screen", "toggle_maximize"),
        ("Copy", "the selection, else the focused pane's current item (OSC 52)", "copy"),
        ("Layout: panes / tabs", "auto → panes together → tabs (remembered)", "cycle_layout"),
        ("Next pane", "focus the next pane (next tab in the tabs layout)", "focus_pane(1)"),
        ("Previous pane", "focus the previous pane", "focus_pane(-1)"),
        ("Wider left column", "panes layout: widen the chat/diff column", "resize_split(1)"),
        ("Narrower left column", "panes layout: narrow the chat/diff column", "resize_split(-1)"),
        ("Previous task", "select the task above", "select_task(-1)"),
        ("Next task", "select the task below", "select_task(1)"),
        ("Focus task list", "keys c / r / a cancel, retry, archive", "focus_tasks"),
        ("Focus composer", "type a prompt or a /command", "focus_composer"),
        ("Status", "model, mode, context, tokens", "status"),
        ("MCP servers", "configured servers, their state and tools", "mcp"),
        ("Model", "which models are in use", "set_model"),
        ("Help", "keys and slash commands", "help"),
        ("Quit", "leave codex-tui (tasks are saved)", "quit"),
    ]
    for citation in app.review_ui.latest_citations():
        rows.append((f"Open {citation.label}", "cited in the answer", f"open_citation({citation.href!r})"))
    for pane, label in zip(PANES, ("Chat", "To-do", "Diff", "Log", "Review", "Artifacts"), strict=True):
        rows.append((f"Show {label} pane", f"pane {pane}", f"show_pane({pane!r})"))
    for action, title in DIFF_PALETTE:
        rows.append((f"Diff: {title}", "in the diff pane", f"pane_key('diff', {action!r})"))
    for action, title in LOG_PALETTE:
        rows.append((f"Log: {title}", "in the sandbox log pane", f"pane_key('log', {action!r})"))
    for mode in p.SANDBOX_MODES:
        rows.append((f"Mode: {mode}", "sandbox mode of the selected/next task", f"set_mode({mode!r})"))
    for attempts in range(1, 5):
        rows.append((f"Attempts: {attempts}", "for the next new task", f"set_attempts({attempts})"))
    for model in app.known_models():
        rows.append((f"Model: {model}", "for the next new tasks", f"set_model({model!r})"))
    for task in app.state.visible_tasks():
        rows.append(
            (f"Switch to task: {task.title}", f"{task.status} · {task.id}", f"goto_task({task.id!r})")
        )
    for name in sorted(app.available_themes):
        rows.append((f"Theme: {name}", "switch theme (remembered)", f"set_theme({name!r})"))
    return rows
