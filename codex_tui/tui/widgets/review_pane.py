"""The Review pane of a review task: verdict, explanation and the findings sorted by priority.

Every string comes from the reviewer (untrusted): it reaches the screen only as `Content` built
from plain text (never parsed as markup), after the state reducer stripped control sequences.
Choosing a finding posts `FindingChosen` (the App jumps the Diff pane there); `f` posts
`FixRequested` (the App turns the finding into a follow-up or a new task).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from codex_tui.tui.bindings import REVIEW_BINDINGS
from codex_tui.tui.review import Finding, ReviewResult, counts_text, review_target_label, verdict_text

PRIORITY_STYLES = ("bold $text-error", "bold $text-warning", "bold $text-accent", "$text-muted")
WAITING_TEXT = "The review is running; its findings appear here when the reviewer answers."
NOT_REVIEW_TEXT = "This task is not a review. Start one with /review."


def finding_prompt_content(finding: Finding) -> Content:
    """One finding in the list: badge, title, location, then the body below."""
    style = PRIORITY_STYLES[max(0, min(3, finding.priority))]
    parts: list[str | tuple[str, str]] = [
        (f" {finding.badge} ", f"reverse {style}"),
        " ",
        (finding.title, "bold"),
    ]
    if finding.location:
        parts += ["  ", (finding.location, "$text-secondary")]
    if finding.confidence:
        parts += ["  ", (f"{round(finding.confidence * 100)}%", "$text-muted")]
    if finding.body:
        parts += ["\n", finding.body]
    return Content.assemble(*parts)


def verdict_content(review: ReviewResult, target: str) -> Content:
    """`✓ correct · 90% confident · 0 P0 · 1 P1 · 2 P2` over `Reviewed: <target>`."""
    if review.failed:
        head: list[str | tuple[str, str]] = [("✗ The review failed", "bold $text-error")]
    else:
        style = "bold $text-success" if review.correct else "bold $text-error"
        head = [(verdict_text(review), style), ("  ·  ", "$text-muted"), counts_text(review)]
    if target:
        head += ["\n", ("Reviewed: ", "$text-muted"), target]
    return Content.assemble(*head)


class ReviewPane(Vertical):
    """Shows one review result; keys move between findings, open one in the diff, or fix it."""

    BINDINGS: ClassVar[list[BindingType]] = REVIEW_BINDINGS
    DEFAULT_CSS = """
    ReviewPane {
        height: 1fr;
        padding: 0 1;
        background: $surface;
        & > #review-verdict { height: auto; padding: 1 1 0 1; }
        & > #review-explanation { height: auto; max-height: 12; padding: 1 1 0 1; color: $foreground; }
        & > #review-findings { height: 1fr; border: none; margin-top: 1; background: $surface; }
        & > #review-findings > .option-list--option { padding: 0 1 1 1; }
        & > #review-failure { height: 1fr; padding: 1 1 0 1; }
        & > #review-failure > #review-error { color: $text-error; height: auto; }
        & > #review-failure > #review-raw { color: $text-muted; height: auto; margin-top: 1; }
    }
    """

    class FindingChosen(Message):
        """The user chose a finding (Enter or a click): show its file and lines."""

        def __init__(self, finding: Finding) -> None:
            super().__init__()
            self.finding = finding

    class FixRequested(Message):
        """The user wants a finding turned into work."""

        def __init__(self, finding: Finding) -> None:
            super().__init__()
            self.finding = finding

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.review: ReviewResult | None = None
        self._shown: tuple[int, bool] | None = None

    def compose(self) -> ComposeResult:
        """Verdict, explanation, findings list, and the failure details (hidden unless failed)."""
        yield Static(Content(WAITING_TEXT), id="review-verdict")
        yield Static("", id="review-explanation")
        yield OptionList(id="review-findings")
        with VerticalScroll(id="review-failure"):
            yield Static("", id="review-error")
            yield Static("", id="review-raw")

    def on_mount(self) -> None:
        """Nothing to show until a review is given."""
        self._show_parts(findings=False, failure=False)
        self.query_one("#review-explanation").display = False

    @property
    def findings_list(self) -> OptionList:
        """The list of findings."""
        return self.query_one("#review-findings", OptionList)

    def show_review(self, review: ReviewResult | None, target: str = "", *, is_review: bool = True) -> None:
        """Show a review result (None: still running, or not a review task)."""
        key = (id(review), is_review)
        if key == self._shown and review is self.review:
            return
        self._shown = key
        self.review = review
        verdict = self.query_one("#review-verdict", Static)
        explanation = self.query_one("#review-explanation", Static)
        if review is None:
            verdict.update(Content(WAITING_TEXT if is_review else NOT_REVIEW_TEXT))
            explanation.display = False
            self.findings_list.clear_options()
            self._show_parts(findings=False, failure=False)
            return
        verdict.update(verdict_content(review, target))
        explanation.update(Content(review.explanation))
        explanation.display = bool(review.explanation) and not review.failed
        if review.failed:
            self._show_failure(review)
            return
        self._fill_findings(review.findings)

    def _fill_findings(self, findings: list[Finding]) -> None:
        options = self.findings_list
        options.clear_options()
        if findings:
            options.add_options(Option(finding_prompt_content(f), id=str(i)) for i, f in enumerate(findings))
            options.highlighted = 0
        else:
            options.add_option(Option(Content.styled("No findings.", "$text-muted"), disabled=True))
        self._show_parts(findings=True, failure=False)

    def _show_failure(self, review: ReviewResult) -> None:
        error = review.error or "The reviewer's answer was not a valid review."
        self.query_one("#review-error", Static).update(Content.assemble(("Error: ", "bold"), error))
        raw = review.raw_text or "(the reviewer gave no text)"
        self.query_one("#review-raw", Static).update(
            Content.assemble(("The reviewer's answer:\n", "bold $text-muted"), raw)
        )
        self._show_parts(findings=False, failure=True)

    def _show_parts(self, *, findings: bool, failure: bool) -> None:
        self.findings_list.display = findings
        self.query_one("#review-failure").display = failure

    @property
    def selected(self) -> Finding | None:
        """The highlighted finding."""
        if self.review is None or self.review.failed:
            return None
        index = self.findings_list.highlighted
        if index is None or not 0 <= index < len(self.review.findings):
            return None
        return self.review.findings[index]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Finding keys only when there are findings."""
        if action in ("next_finding", "prev_finding", "open_finding", "fix"):
            return self.review is not None and bool(self.review.findings) and not self.review.failed
        return True

    def action_next_finding(self) -> None:
        """Highlight the next finding."""
        self._move(+1)

    def action_prev_finding(self) -> None:
        """Highlight the previous finding."""
        self._move(-1)

    def _move(self, step: int) -> None:
        if self.review is None or not self.review.findings:
            return
        options = self.findings_list
        current = options.highlighted if options.highlighted is not None else -step
        options.highlighted = max(0, min(len(self.review.findings) - 1, current + step))

    def action_open_finding(self) -> None:
        """Show the highlighted finding in the Diff pane."""
        finding = self.selected
        if finding is not None:
            self.post_message(self.FindingChosen(finding))

    def action_fix(self) -> None:
        """Turn the highlighted finding into work."""
        finding = self.selected
        if finding is not None:
            self.post_message(self.FixRequested(finding))

    @on(OptionList.OptionSelected, "#review-findings")
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.findings_list.highlighted = event.option_index
        self.action_open_finding()


def target_text(target: dict[str, object]) -> str:
    """The reviewed change, for the verdict line."""
    return review_target_label(dict(target)) if target else ""
