"""Every key binding of the app, each with an `id` the user can remap under [keymap] in config.toml."""

from __future__ import annotations

from textual.binding import Binding, BindingType

APP_BINDINGS: list[BindingType] = [
    Binding("ctrl+n", "new_task", "New task", id="task.new", tooltip="Start a new task with the composer"),
    Binding("escape", "interrupt", "Interrupt", id="task.interrupt", tooltip="Stop the selected task's turn"),
    Binding("f2", "show_pane('chat')", "Chat", id="pane.chat", show=False, priority=True),
    Binding("f3", "show_pane('todo')", "To-do", id="pane.todo", show=False, priority=True),
    Binding("f4", "show_pane('diff')", "Diff", id="pane.diff", priority=True, tooltip="Show the diff"),
    Binding("f5", "show_pane('log')", "Log", id="pane.log", show=False, priority=True),
    Binding(
        "f6", "toggle_maximize", "Maximise", id="view.maximize", priority=True, tooltip="Maximise the pane"
    ),
    Binding("f12", "cycle_layout", "Layout", id="view.layout", show=False, priority=True),
    Binding("alt+right", "focus_pane(1)", "Next pane", id="pane.focus_next", show=False, priority=True),
    Binding("alt+left", "focus_pane(-1)", "Prev pane", id="pane.focus_prev", show=False, priority=True),
    Binding("alt+shift+right", "resize_split(1)", "Wider", id="view.split_wider", show=False, priority=True),
    Binding(
        "alt+shift+left", "resize_split(-1)", "Narrow", id="view.split_narrower", show=False, priority=True
    ),
    Binding("f7", "compare", "Compare", id="view.compare", priority=True, tooltip="Attempts side by side"),
    Binding(
        "f11", "mission", "Mission", id="view.mission", priority=True, tooltip="Every task as a live tile"
    ),
    Binding(
        "ctrl+f",
        "next_attention",
        "Next attention",
        id="attention.next",
        show=False,
        priority=True,
        tooltip="Jump to the next task that needs you (approval, failure, unseen result)",
    ),
    Binding("f8", "show_pane('review')", "Review", id="pane.review", priority=True, tooltip="The review"),
    Binding(
        "ctrl+o", "toggle_ask", "Ask/Code", id="composer.toggle_ask", priority=True, tooltip="Ask or Code"
    ),
    Binding(
        "f9", "do_it", "Now do it", id="task.do_it", priority=True, tooltip="Turn the answer into a change"
    ),
    Binding("ctrl+g", "apply", "Apply", id="task.apply", tooltip="Apply the selected task's diff"),
    Binding("ctrl+r", "retry", "Retry", id="task.retry", show=False),
    Binding("ctrl+up", "select_task(-1)", "Prev task", id="task.prev", show=False),
    Binding("ctrl+down", "select_task(1)", "Next task", id="task.next", show=False),
    Binding("ctrl+t", "focus_tasks", "Tasks", id="focus.tasks", show=False),
    Binding("ctrl+l", "focus_composer", "Composer", id="focus.composer", show=False),
    Binding("f1", "help", "Help", id="app.help", priority=True, tooltip="Show every key binding"),
    Binding("question_mark", "help", "Help", id="app.help_key", show=False),
    Binding("f10", "show_pane('artifacts')", "Artifacts", id="pane.artifacts", priority=True, show=False),
    Binding("ctrl+q", "quit", "Quit", id="app.quit", show=False, priority=True),
    Binding(
        "ctrl+shift+c", "copy", "Copy", id="app.copy", show=False, tooltip="Copy the selection or the item"
    ),
]
"""Main-screen bindings; F-keys are priority so they also work while the composer (a TextArea) has focus."""

TASK_LIST_BINDINGS: list[BindingType] = [
    Binding("n", "app.new_task", "New", id="tasks.new", show=False),
    Binding("c", "app.cancel", "Cancel", id="tasks.cancel"),
    Binding("r", "app.retry", "Retry", id="tasks.retry"),
    Binding("a", "app.archive", "Archive", id="tasks.archive"),
]
"""Single-key actions while the task list has focus."""

COMPOSER_BINDINGS: list[BindingType] = [
    Binding("enter", "submit", "Send", id="composer.send", priority=True),
    Binding("shift+enter,ctrl+j", "newline", "Newline", id="composer.newline", show=False, priority=True),
    Binding("tab", "complete", "Complete", id="composer.complete", show=False, priority=True),
    Binding("up", "history(-1)", "History back", id="composer.history_back", show=False, priority=True),
    Binding("down", "history(1)", "History fwd", id="composer.history_forward", show=False, priority=True),
    Binding("escape", "dismiss_completion", "Close list", id="composer.close_completion", show=False),
    Binding("ctrl+v", "paste_image", "Paste image", id="composer.paste_image", show=False, priority=True),
]
"""Composer keys; priority so they win over TextArea's own Enter/Tab/Up/Down (each checks when it applies)."""

APPROVAL_BINDINGS: list[BindingType] = [
    Binding("y", "decide('approve')", "Approve once", id="approval.approve"),
    Binding("a", "decide('approve_task')", "Approve for task", id="approval.approve_task"),
    Binding("n,escape", "decide('deny')", "Deny", id="approval.deny"),
]
"""Keys of the approval dialog."""

COMPARE_BINDINGS: list[BindingType] = [
    Binding("escape", "close", "Back", id="compare.close"),
    Binding("c", "pane('chat')", "Chat", id="compare.chat"),
    Binding("d", "pane('diff')", "Diff", id="compare.diff"),
    Binding("l", "pane('log')", "Log", id="compare.log"),
    Binding("left", "move(-1)", "Prev", id="compare.prev", show=False, priority=True),
    Binding("right", "move(1)", "Next", id="compare.next", show=False, priority=True),
    Binding("enter,a", "apply", "Apply this attempt", id="compare.apply", priority=True),
    Binding("v", "review", "Review all", id="compare.review", tooltip="Start a review of every attempt"),
]
"""Keys of the compare view; priority so the panes inside (diff file list, log) do not take them."""

DIFF_BINDINGS: list[BindingType] = [
    Binding("s", "toggle_split", "Split/unified", id="diff.toggle_split", tooltip="Side by side"),
    Binding("]", "next_hunk", "Next hunk", id="diff.next_hunk"),
    Binding("[", "prev_hunk", "Prev hunk", id="diff.prev_hunk"),
    Binding("}", "next_file", "Next file", id="diff.next_file"),
    Binding("{", "prev_file", "Prev file", id="diff.prev_file"),
    Binding("n", "next_finding", "Next finding", id="diff.next_finding"),
    Binding("p", "prev_finding", "Prev finding", id="diff.prev_finding"),
    Binding("y", "copy", "Copy", id="diff.copy", tooltip="Copy the selection, or else the current hunk"),
]
"""Keys of the diff pane (while it has focus: Tab or a click moves there)."""

LOG_BINDINGS: list[BindingType] = [
    Binding("end,G", "follow", "Follow", id="sandbox_log.follow", tooltip="Jump to the end and follow"),
    Binding("home,g", "scroll_home", "Top", id="sandbox_log.top", show=False),
    Binding(
        "y", "copy", "Copy", id="sandbox_log.copy", tooltip="Copy the selection, or else the lines in view"
    ),
]
"""Keys of the sandbox log pane (while it has focus)."""

CHAT_BINDINGS: list[BindingType] = [
    Binding(
        "y", "copy", "Copy", id="chat.copy", tooltip="Copy the selection, or else the last message in view"
    ),
]
"""Keys of the chat pane (while it has focus)."""

REVIEW_BINDINGS: list[BindingType] = [
    Binding("n", "next_finding", "Next finding", id="review.next"),
    Binding("p", "prev_finding", "Prev finding", id="review.prev"),
    Binding("enter", "open_finding", "Show in diff", id="review.open", priority=True),
    Binding("f", "fix", "Fix this", id="review.fix", tooltip="Turn the finding into work"),
]
"""Keys of the Review pane (while it has focus)."""

FILE_VIEWER_BINDINGS: list[BindingType] = [
    Binding("escape,q", "close", "Close", id="file_viewer.close"),
    Binding("n", "next_cited", "Cited lines", id="file_viewer.cited", show=False),
    Binding(
        "y,ctrl+shift+c",
        "copy",
        "Copy",
        id="file_viewer.copy",
        tooltip="Copy the selection or the cited lines",
    ),
]
"""Keys of the read-only file viewer."""

REVIEW_PICKER_BINDINGS: list[BindingType] = [
    Binding("escape", "cancel", "Cancel", id="review_picker.cancel"),
    Binding("ctrl+s", "start", "Start review", id="review_picker.start", priority=True),
]
"""Keys of the /review target picker."""

MCP_BINDINGS: list[BindingType] = [
    Binding("escape,q", "close", "Close", id="mcp.close"),
    Binding("r", "refresh", "Refresh", id="mcp.refresh"),
    Binding("s", "start", "Start servers", id="mcp.start", tooltip="Start the enabled MCP servers"),
]
"""Keys of the /mcp screen."""

PREVIEW_BINDINGS: list[BindingType] = [
    Binding("escape,q", "close", "Close", id="preview.close"),
]
"""Keys of the artifact / image preview."""

HELP_BINDINGS: list[BindingType] = [
    Binding("escape,f1,q", "dismiss", "Close", id="help.close"),
]
"""Keys of the help screen."""

MISSION_BINDINGS: list[BindingType] = [
    Binding("escape,f11", "close", "Back", id="mission.close"),
    Binding("enter", "open", "Open task", id="mission.open"),
    Binding(
        "y",
        "decide('approve')",
        "Approve",
        id="mission.approve",
        tooltip="Approve the focused task's request",
    ),
    Binding("a", "decide('approve_task')", "Approve for task", id="mission.approve_task", show=False),
    Binding("n", "decide('deny')", "Deny", id="mission.deny", tooltip="Deny the focused task's request"),
    Binding("i", "inbox", "Inbox", id="mission.inbox", tooltip="Tasks that need you"),
]
"""Keys of mission control."""

MISSION_GRID_BINDINGS: list[BindingType] = [
    Binding("left", "screen.move(-1, 0)", "Left", id="mission.left", show=False),
    Binding("right", "screen.move(1, 0)", "Right", id="mission.right", show=False),
    Binding("up", "screen.move(0, -1)", "Up", id="mission.up", show=False),
    Binding("down", "screen.move(0, 1)", "Down", id="mission.down", show=False),
]
"""Arrow keys of mission control's tile grid (the inbox list keeps its own Up/Down)."""

ALL_BINDINGS: dict[str, list[BindingType]] = {
    "Main": APP_BINDINGS,
    "Task list": TASK_LIST_BINDINGS,
    "Composer": COMPOSER_BINDINGS,
    "Chat pane": CHAT_BINDINGS,
    "Diff pane": DIFF_BINDINGS,
    "Log pane": LOG_BINDINGS,
    "Review pane": REVIEW_BINDINGS,
    "File viewer": FILE_VIEWER_BINDINGS,
    "Review picker": REVIEW_PICKER_BINDINGS,
    "Approval": APPROVAL_BINDINGS,
    "Compare": COMPARE_BINDINGS,
    "Mission control": MISSION_BINDINGS + MISSION_GRID_BINDINGS,
    "MCP servers": MCP_BINDINGS,
    "Preview": PREVIEW_BINDINGS,
    "Help": HELP_BINDINGS,
}


def binding_ids() -> set[str]:
    """Every id that [keymap] may remap."""
    return {b.id for group in ALL_BINDINGS.values() for b in group if isinstance(b, Binding) and b.id}


def unknown_keymap_ids(keymap: dict[str, str]) -> list[str]:
    """Ids in the user's keymap that name no binding (reported as a warning, not an error)."""
    known = binding_ids()
    return sorted(k for k in keymap if k not in known)
