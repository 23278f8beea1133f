"""The approval dialog: the exact command or patch, the reason, and three decisions."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from codex_tui.tui.bindings import APPROVAL_BINDINGS
from codex_tui.tui.state import Approval

DECISIONS = ("approve", "approve_task", "deny")


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
        what = {"command": "run a command", "patch": "apply a patch", "network": "use the network"}
        with Vertical(id="approval-dialog"):
            yield Static(
                Content.assemble(
                    ("Approval needed", "bold $warning"),
                    " · ",
                    (self.task_title, "bold"),
                    "\n",
                    (f"The agent wants to {what.get(a.kind, a.kind)}.", "$foreground-muted"),
                ),
                id="approval-title",
            )
            if a.reason:
                yield Static(Content.assemble(("Reason: ", "bold"), a.reason), id="approval-reason")
            body = a.command or a.patch or "(no details)"
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
