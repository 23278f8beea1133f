"""The App's Code review and Ask mode behaviour, kept out of app.py: the Review pane, /review,
fixing a finding, Ask/Code, "now do it", citations and the file viewer.

`ReviewAskController` holds no state of its own beyond the next task's kind; it reads the App's
model and sends operations through the App, like every other action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import TabbedContent

from codex_tui import protocol as p
from codex_tui.tui.citations import Citation, find_citations
from codex_tui.tui.commands import SlashCommand
from codex_tui.tui.review import (
    Finding,
    ReviewRequest,
    finding_prompt,
    parse_review_args,
    review_target_label,
)
from codex_tui.tui.screens.file_viewer import FileContent, FileViewerScreen
from codex_tui.tui.screens.review_picker import ReviewPickerScreen
from codex_tui.tui.state import TaskModel
from codex_tui.tui.widgets.diff_view import DiffView
from codex_tui.tui.widgets.review_pane import ReviewPane

if TYPE_CHECKING:
    from codex_tui.tui.app import CodexApp

ASK_NO_DIFF = "No diff expected: this is an Ask task (it answers questions and changes no files)"
DO_IT_MESSAGE = "Now make the change you described."
KIND_LABELS = {"code": "Code", "ask": "Ask", "review": "Review"}


class ReviewAskController:
    """Review and Ask actions of one CodexApp."""

    def __init__(self, app: CodexApp) -> None:
        self.app = app
        self.next_kind = "code"
        """Kind of the next new task: code or ask (the composer shows it)."""
        self._tab_key: tuple[str, str] | None = None

    # --- panes ---------------------------------------------------------------------------------

    def sync_review_tab(self, task: TaskModel | None) -> None:
        """The Review tab is there only for review tasks."""
        key = (task.id, task.kind) if task is not None else None
        if key == self._tab_key and key is not None:
            return
        self._tab_key = key
        self.app.refresh_bindings()  # the footer shows "Review" / "Now do it" by the task's kind
        tabs = self.app.main_widget(TabbedContent)
        wanted = task is not None and task.kind == "review"
        if wanted:
            tabs.show_tab("review")
        else:
            if tabs.active == "review":
                tabs.active = "chat"
            tabs.hide_tab("review")

    def render_review(self, task: TaskModel) -> None:
        """Fill the Review pane from the task's review."""
        target = review_target_label(task.review_target) if task.review_target else ""
        self.app.main_widget(ReviewPane).show_review(task.review, target, is_review=task.kind == "review")

    def prepare_diff(self, task: TaskModel) -> None:
        """Finding markers and the empty-pane text of the Diff pane for this task."""
        view = self.app.main_widget(DiffView)
        view.set_markers(task.review.markers() if task.review is not None else {})
        view.set_empty_text(ASK_NO_DIFF if task.kind == "ask" else "No changes yet")

    # --- findings ------------------------------------------------------------------------------

    def show_finding(self, finding: Finding) -> None:
        """Switch to the Diff pane at the finding's file and first line."""
        task = self.app.selected_task()
        if task is None:
            return
        if not finding.path:
            self.app.notify(
                f"{finding.location or 'This finding'} is outside the reviewed change",
                title="Review",
                markup=False,
            )
            return
        shown = self.app.shown_diff
        loaded = shown is not None and shown[0] == task.id
        self.app.action_show_pane("diff")
        view = self.app.main_widget(DiffView)
        if loaded and view.reveal(finding.path, finding.start):
            view.body.focus()
            return
        view.reveal(finding.path, finding.start, after_next_patch=True)
        if loaded:
            self.app.notify(
                f"{finding.path} is not part of the reviewed diff",
                title="Review",
                severity="warning",
                markup=False,
            )

    def fix_finding(self, finding: Finding) -> None:
        """A follow-up to the reviewed task when the review was of a task, else a new Code task."""
        review = self.app.selected_task()
        if review is None:
            return
        prompt = finding_prompt(finding)
        reviewed = str(review.review_target.get("task_id") or "")
        if review.review_target.get("type") == "task" and reviewed in self.app.state.tasks:
            reviewed_task = self.app.state.tasks[reviewed]
            self.app.send_soon(p.Op(p.OP_USER_MESSAGE, reviewed, {"text": prompt, "images": []}))
            message = f"Sent the finding to the reviewed task: {reviewed_task.title}"
            self.app.notify(message, title="Fix", markup=False)
            return
        data: dict[str, Any] = {"prompt": prompt, "images": [], "attempts": 1, "kind": "code"}
        if review.repo:
            data["repo"] = review.repo
        self.app.send_soon(p.Op(p.OP_SUBMIT, "", data))
        self.app.notify(f"Started a new Code task to fix: {finding.title}", title="Fix", markup=False)

    # --- /review -------------------------------------------------------------------------------

    def review_command(self, command: SlashCommand) -> None:
        """`/review` opens the picker; `/review TARGET …` starts the review at once."""
        task = self.app.selected_task()
        group = [t.id for t in self.app.state.group(task.id)] if task is not None else []
        if not command.arg:
            self.open_picker()
            return
        request = parse_review_args(command.arg, task.id if task else None, group)
        if isinstance(request, str):
            self.app.notify(request, severity="error", markup=False)
            return
        self.start_review(request)

    def open_picker(self) -> None:
        """The review target picker."""
        task = self.app.selected_task()
        group = [t.id for t in self.app.state.group(task.id)] if task is not None else []
        screen = ReviewPickerScreen(
            self.app.repo, task.id if task else None, task.title if task else "", group
        )
        self.app.push_screen(screen, self._picked)

    def _picked(self, request: ReviewRequest | None) -> None:
        if request is not None:
            self.start_review(request)

    def start_review(self, request: ReviewRequest) -> None:
        """Submit the review task(s)."""
        problem = request.problem()
        if problem:
            self.app.notify(problem, severity="warning")
            return
        self.app.send_soon(p.Op(p.OP_SUBMIT, "", request.submit_data()))
        self.app.notify(f"Reviewing {request.describe()}", title="Review", markup=False)

    def review_attempts(self, task_ids: list[str]) -> None:
        """One review per attempt (from the compare view)."""
        if task_ids:
            self.start_review(ReviewRequest("task", task_ids=tuple(task_ids)))

    # --- Ask mode ------------------------------------------------------------------------------

    def toggle_ask(self) -> None:
        """Switch the next new task between Code and Ask."""
        self.set_kind("code" if self.next_kind == "ask" else "ask")

    def set_kind(self, kind: str) -> None:
        """Code or Ask for the next new task; the composer says which."""
        self.next_kind = kind if kind in ("code", "ask") else "code"
        self.app.refresh_target()
        if self.next_kind == "ask":
            self.app.notify("Ask mode: new tasks answer questions and change no files", title="Ask")
        else:
            self.app.notify("Code mode: new tasks may change files", title="Code")

    def kind_command(self, command: SlashCommand) -> None:
        """`/ask [PROMPT]` and `/code [PROMPT]`: switch, and start a task when a prompt is given."""
        self.next_kind = command.name
        if command.arg:
            self.app.submit_prompt(command.arg, [], new_task=True)
        else:
            self.app.action_new_task()
            self.set_kind(command.name)

    def submit_kind(self) -> dict[str, Any]:
        """The kind field of a new task's OP_SUBMIT data."""
        return {"kind": "ask"} if self.next_kind == "ask" else {}

    def target_label(self, label: str, task: TaskModel | None, new_task: bool) -> str:
        """The composer title with the kind: `New task ×2 · Ask · …`, `Follow up (Ask) · …`."""
        if new_task:
            head, sep, rest = label.partition(" · ")
            return f"{head} · {KIND_LABELS[self.next_kind]}{sep}{rest}"
        if task is not None and task.kind != "code":
            head, sep, rest = label.partition(" · ")
            return f"{head} ({KIND_LABELS.get(task.kind, task.kind)}){sep}{rest}"
        return label

    def can_do_it(self) -> bool:
        """'Now do it' applies to a finished-or-running Ask task."""
        task = self.app.selected_task()
        return task is not None and task.kind == "ask"

    def do_it(self) -> None:
        """Turn the selected Ask task into a Code task and ask it to make the change."""
        task = self.app.selected_task()
        if task is None or task.kind != "ask":
            self.app.notify("'Now do it' works on an Ask task", severity="warning")
            return
        self.app.run_worker(self._do_it(task.id), group="ops", exit_on_error=False)

    async def _do_it(self, task_id: str) -> None:
        result = await self.app.send(p.Op(p.OP_SET_KIND, task_id, {"kind": "code"}))
        if not result.ok:
            return
        task = self.app.state.tasks.get(task_id)
        if task is not None:
            task.kind = "code"
            task.rev += 1
        await self.app.send(p.Op(p.OP_USER_MESSAGE, task_id, {"text": DO_IT_MESSAGE, "images": []}))
        self.app.notify("The task now makes the change it described", title="Code")
        self.app.refresh_target()

    # --- citations -----------------------------------------------------------------------------

    def latest_citations(self) -> list[Citation]:
        """Citations in the selected task's newest answer (for the command palette)."""
        task = self.app.selected_task()
        if task is None:
            return []
        for block in reversed(task.blocks):
            if block.kind == "agent" and block.done:
                seen: dict[str, Citation] = {}
                for citation in find_citations(block.text):
                    seen.setdefault(citation.label, citation)
                return list(seen.values())[:20]
        return []

    def open_citation(self, citation: Citation) -> None:
        """Read the cited file through the task manager and show it in the file viewer."""
        task = self.app.selected_task()
        if task is None:
            return
        self.app.run_worker(
            self._open(task, citation), group="file-viewer", exclusive=True, exit_on_error=False
        )

    async def _open(self, task: TaskModel, citation: Citation) -> None:
        result = await self.app.send(p.Op(p.OP_READ_FILE, task.id, {"path": citation.path}))
        if not result.ok:
            return
        content = FileContent.from_result(citation.path, result.data)
        await self.app.push_screen(FileViewerScreen(content, citation.start, citation.end, task.title))
