"""The /review picker: what to review (uncommitted changes, a base branch, a commit, the selected
task or all its attempts) and optional custom instructions.

Branches and recent commits are listed with git on the user's repository (trusted, not a task
checkout), in a thread.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from codex_tui.tui.bindings import REVIEW_PICKER_BINDINGS
from codex_tui.tui.review import ReviewRequest
from codex_tui.tui.widgets.highlight import clean_line

MAX_REFS = 40
GIT_TIMEOUT_S = 10


def git_lines(repo: Path, *args: str) -> list[str]:
    """Output lines of a git command on the user's repository ([] when git fails)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [clean_line(line) for line in out.stdout.splitlines()] if out.returncode == 0 else []


def local_branches(repo: Path) -> list[str]:
    """Local branch names, most recently committed first."""
    return git_lines(
        repo, "for-each-ref", "--sort=-committerdate", "--format=%(refname:short)", "refs/heads"
    )[:MAX_REFS]


def recent_commits(repo: Path) -> list[tuple[str, str]]:
    """(short sha, subject) of the latest commits on HEAD."""
    rows = git_lines(repo, "log", f"-n{MAX_REFS}", "--format=%h%x09%s")
    return [(sha, subject) for sha, _, subject in (row.partition("\t") for row in rows) if sha]


class ReviewPickerScreen(ModalScreen[ReviewRequest | None]):
    """Dismisses with the review to start, or None."""

    CSS_PATH = "review_picker.tcss"
    BINDINGS: ClassVar[list[BindingType]] = REVIEW_PICKER_BINDINGS

    def __init__(self, repo: Path, task_id: str | None, task_title: str, group_ids: list[str]) -> None:
        super().__init__()
        self.repo = repo
        self.task_id = task_id
        self.task_title = task_title
        self.group_ids = group_ids
        self.branches: list[str] = []
        self.commits: list[tuple[str, str]] = []

    def _targets(self) -> list[Option]:
        task = f"The selected task: {clean_line(self.task_title)}" if self.task_id else "The selected task"
        options = [
            Option("Uncommitted changes in your working tree", id="uncommitted"),
            Option("Changes against a base branch…", id="base"),
            Option("A commit…", id="commit"),
            Option(Content(task), id="task", disabled=self.task_id is None),
        ]
        if len(self.group_ids) > 1:
            options.append(Option(f"All {len(self.group_ids)} attempts of the selected task", id="attempts"))
        return options

    def compose(self) -> ComposeResult:
        """Targets, the ref field with its suggestions, the instructions field."""
        with Vertical(id="review-picker-dialog"):
            yield Static(Content.styled("Start a code review", "bold $primary"), id="review-picker-title")
            yield OptionList(*self._targets(), id="review-targets")
            yield Input(placeholder="branch or commit", id="review-ref")
            yield OptionList(id="review-refs")
            yield Input(placeholder="Optional: custom review instructions", id="review-instructions")
            yield Static(
                Content.styled("Enter moves on · Ctrl+S starts the review · Esc cancels", "$text-muted"),
                id="review-picker-hint",
            )
        yield Footer()

    def on_mount(self) -> None:
        """Highlight the first target and load branches and commits."""
        targets = self.query_one("#review-targets", OptionList)
        targets.highlighted = 0
        targets.focus()
        self._show_ref_fields()
        self._load_refs()

    @work(thread=True, group="review-refs", exit_on_error=False)
    def _load_refs(self) -> None:
        branches, commits = local_branches(self.repo), recent_commits(self.repo)
        self.app.call_from_thread(self._set_refs, branches, commits)

    def _set_refs(self, branches: list[str], commits: list[tuple[str, str]]) -> None:
        self.branches, self.commits = branches, commits
        self._fill_refs()

    @property
    def target(self) -> str:
        """The highlighted target id."""
        targets = self.query_one("#review-targets", OptionList)
        index = targets.highlighted
        if index is None:
            return "uncommitted"
        return targets.get_option_at_index(index).id or "uncommitted"

    def _show_ref_fields(self) -> None:
        wants_ref = self.target in ("base", "commit")
        ref = self.query_one("#review-ref", Input)
        ref.display = wants_ref
        self.query_one("#review-refs", OptionList).display = wants_ref
        ref.placeholder = "base branch (e.g. main)" if self.target == "base" else "commit sha or ref"
        self._fill_refs()

    def _fill_refs(self) -> None:
        refs = self.query_one("#review-refs", OptionList)
        typed = self.query_one("#review-ref", Input).value.strip().lower()
        refs.clear_options()
        if self.target == "base":
            refs.add_options(Option(Content(b), id=b) for b in self.branches if typed in b.lower())
        elif self.target == "commit":
            refs.add_options(
                Option(Content.assemble((sha, "$text-accent"), "  ", subject), id=sha)
                for sha, subject in self.commits
                if typed in sha.lower() or typed in subject.lower()
            )

    @on(OptionList.OptionHighlighted, "#review-targets")
    def _target_moved(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show_ref_fields()

    @on(OptionList.OptionSelected, "#review-targets")
    def _target_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        field = "#review-ref" if self.target in ("base", "commit") else "#review-instructions"
        self.query_one(field, Input).focus()

    @on(Input.Changed, "#review-ref")
    def _ref_typed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill_refs()

    @on(OptionList.OptionSelected, "#review-refs")
    def _ref_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#review-ref", Input).value = event.option.id or ""
        self.query_one("#review-instructions", Input).focus()

    @on(Input.Submitted, "#review-ref")
    def _ref_submitted(self, event: Input.Submitted) -> None:
        """Enter in the ref field: a partial name with one suggestion left becomes that suggestion."""
        event.stop()
        refs = self.query_one("#review-refs", OptionList)
        if refs.option_count == 1:
            event.input.value = refs.get_option_at_index(0).id or event.value
        self.query_one("#review-instructions", Input).focus()

    @on(Input.Submitted, "#review-instructions")
    def _instructions_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def request(self) -> ReviewRequest:
        """The review the fields describe now."""
        target = self.target
        ref = self.query_one("#review-ref", Input).value.strip()
        instructions = self.query_one("#review-instructions", Input).value.strip()
        if target == "base":
            return ReviewRequest("base", base=ref, instructions=instructions)
        if target == "commit":
            return ReviewRequest("commit", commit=ref, instructions=instructions)
        if target in ("task", "attempts"):
            ids = tuple(self.group_ids) if target == "attempts" else (self.task_id,) if self.task_id else ()
            return ReviewRequest("task", task_ids=ids, instructions=instructions)
        return ReviewRequest("uncommitted", instructions=instructions)

    def action_start(self) -> None:
        """Start the review (or say what is missing)."""
        request = self.request()
        problem = request.problem()
        if problem:
            self.notify(problem, severity="warning")
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        """Close without reviewing."""
        self.dismiss(None)
