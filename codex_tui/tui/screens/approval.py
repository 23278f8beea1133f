"""The approval dialog: the exact command, patch or MCP call, the reason, and three decisions."""

from __future__ import annotations

import json

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from codex_tui.tui.bindings import APPROVAL_BINDINGS
from codex_tui.tui.state import Approval

DECISIONS = ("approve", "approve_task", "deny")


def request_text(approval: Approval) -> Content:
    """What the agent asks for, in one sentence."""
    if approval.kind == "mcp":
        return Content.assemble(
            ("The agent wants to call tool ", "$foreground-muted"),
            (approval.tool or "?", "bold"),
            (" of MCP server ", "$foreground-muted"),
            (approval.server or "?", "bold"),
            (" (it runs on your machine).", "$foreground-muted"),
        )
    what = {"command": "run a command", "patch": "apply a patch", "network": "use the network"}
    return Content.styled(
        f"The agent wants to {what.get(approval.kind, approval.kind)}.", "$foreground-muted"
    )


def approval_body(approval: Approval) -> str:
    """The command or patch verbatim, or an MCP call's arguments as indented JSON."""
    if approval.kind == "mcp":
        arguments = {} if approval.arguments is None else approval.arguments
        if isinstance(arguments, str):
            return arguments or "(no arguments)"
        return json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return approval.command or approval.patch or "(no details)"


class ApprovalScreen(ModalScreen[str]):
    """Dismisses with "approve", "approve_task" or "deny"."""

    CSS_PATH = "approval.tcss"

    BINDINGS = APPROVAL_BINDINGS

    def __init__(self, approval: Approval, task_title: str) -> None:
        super().__init__()
        self.approval = approval
        self.task_title = task_title

    def compose(self) -> ComposeResult:
        """Title, reason, the command or patch verbatim, buttons."""
        a = self.approval
        with Vertical(id="approval-dialog"):
            yield Static(
                Content.assemble(
                    ("Approval needed", "bold $warning"),
                    " · ",
                    (self.task_title, "bold"),
                    "\n",
                    request_text(a),
                ),
                id="approval-title",
            )
            if a.reason:
                yield Static(Content.assemble(("Reason: ", "bold"), a.reason), id="approval-reason")
            body = approval_body(a)
            with VerticalScroll(id="approval-body"):
                yield Static(Content(body), id="approval-detail", classes=a.kind)
            with Horizontal(id="approval-buttons"):
                yield Button("Approve once [y]", id="approve", variant="success")
                yield Button("Approve for this task [a]", id="approve_task", variant="primary")
                yield Button("Deny [n]", id="deny", variant="error")

    def on_mount(self) -> None:
        """Focus the safest useful choice: approve once."""
        self.query_one("#approve", Button).focus()

    def action_decide(self, decision: str) -> None:
        """Close the dialog with the decision."""
        if decision in DECISIONS:
            self.dismiss(decision)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_decide(event.button.id or "deny")
