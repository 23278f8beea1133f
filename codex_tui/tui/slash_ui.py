"""Slash commands typed in the composer, carried out for the App; and the choices they set for
the next task (attempts, sandbox mode, model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tui import protocol as p
from codex_tui.tui.commands import SlashCommand
from codex_tui.tui.widgets.composer import Composer

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp


class SlashController:
    """Runs parsed slash commands against one CodexApp."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app

    def run(self, command: SlashCommand, images: list[Path]) -> None:
        """Carry out a parsed slash command."""
        name, arg = command.name, command.arg
        simple: dict[str, Callable[[], Any]] = {
            "diff": lambda: self.app.action_show_pane("diff"),
            "apply": self.app.action_apply,
            "branch": self.app.action_branch,
            "undo": self.app.action_undo,
            "compact": self.app.action_compact,
            "status": self.app.action_status,
            "mcp": self.app.action_mcp,
            "help": self.app.action_help,
            "quit": self.app.exit,
        }
        if name in simple:
            simple[name]()
        elif name == "new":
            if arg or images:
                self.app.main_widget(Composer).clear_attachments()
                self.app.submit_prompt(arg, images, new_task=True)
            else:
                self.app.action_new_task()
        elif name == "attempts":
            self.set_attempts(int(arg))
        elif name == "image":
            error = self.app.main_widget(Composer).attach(Path(arg).expanduser())
            if error:
                self.app.notify(error, severity="error")
        elif name == "mode":
            self.set_mode(arg)
        elif name == "model":
            self.set_model(arg)
        elif name == "network":
            message, failed = self.app.next_network.command(arg)
            self.app.new_task_mode = self.app.new_task_mode or (bool(arg) and not failed)
            self.app.notify(message, title="Network", severity="error" if failed else "information")
        elif name == "theme":
            self.app.set_theme(arg)
        elif name == "review":
            self.app.review_ui.review_command(command)
        elif name in ("ask", "code"):
            self.app.review_ui.kind_command(command)
        self.app.refresh_target()
        self.app.update_status()

    def set_attempts(self, attempts: int) -> None:
        """The next new task runs this many attempts side by side (1–4)."""
        self.app.next_attempts = max(1, min(4, int(attempts)))
        self.app.new_task_mode = True
        self.app.refresh_target()
        self.app.notify(f"The next new task runs {self.app.next_attempts} attempt(s)")

    def set_mode(self, mode: str) -> None:
        """Sandbox mode of the selected task's next turn, and of new tasks."""
        if mode not in p.SANDBOX_MODES:
            self.app.notify(f"Unknown mode '{mode}'", severity="error")
            return
        self.app.next_mode = mode
        task = self.app.selected_task()
        if task is not None and not self.app.new_task_mode:
            self.app.send_soon(p.Op(p.OP_SET_MODE, task.id, {"mode": mode}))
        self.app.refresh_target()
        self.app.update_status()
        self.app.notify(f"Mode: {mode}")

    def set_model(self, model: str = "") -> None:
        """Model of the next new tasks; without a name, say which models are in use."""
        if model:
            self.app.next_model = model
            self.app.refresh_target()
            self.app.notify(f"New tasks use model {model}", title="Model")
            return
        task = self.app.selected_task()
        lines = [f"new tasks: {self.app.next_model or self.app.config.model}"]
        if task is not None and task.model:
            lines.append(f"selected task: {task.model}")
        lines.append("change it with /model NAME")
        self.app.notify("\n".join(lines), title="Model", timeout=8)

    def known_models(self) -> list[str]:
        """Models offered by the palette: the configured one, the chosen one, and those of tasks."""
        names = [
            self.app.config.model,
            self.app.next_model or "",
            *(t.model for t in self.app.state.visible_tasks()),
        ]
        return sorted({n for n in names if n})
