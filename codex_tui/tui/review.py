"""Code review results as the TUI sees them: findings, verdicts, counts and the prompts built from them.

Plain Python (no Textual): `parse_review` reads an ITEM_REVIEW item (already stripped of terminal
control sequences by the state reducer) into a :class:`ReviewResult`; the Review pane, the compare
view and the "fix this finding" action render from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

_PRIORITY_TAG: Final = re.compile(r"^\s*\[P[0-3]\]\s*")
"""Codex review titles start with their priority tag; the pane shows it as a badge instead."""

PRIORITIES = ("P0", "P1", "P2", "P3")
CORRECT = "patch is correct"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem the reviewer found, with where it is."""

    title: str
    body: str
    priority: int = 3
    confidence: float = 0.0
    path: str = ""
    """Repository-relative path ("" when the reviewer pointed outside the checkout)."""
    absolute_path: str = ""
    start: int = 0
    end: int = 0

    @property
    def badge(self) -> str:
        """`P0` … `P3`."""
        return PRIORITIES[max(0, min(3, self.priority))]

    @property
    def location(self) -> str:
        """`src/a.py:12`, `src/a.py:12-14`, or the absolute path when outside the checkout."""
        where = self.path or self.absolute_path
        if not where:
            return ""
        if self.start <= 0:
            return where
        if self.end > self.start:
            return f"{where}:{self.start}-{self.end}"
        return f"{where}:{self.start}"

    def covers(self, path: str, line: int) -> bool:
        """Whether this finding points at `line` of `path`."""
        return bool(self.path) and self.path == path and self.start <= line <= max(self.start, self.end)


@dataclass(slots=True)
class ReviewResult:
    """What a review task concluded (or why it could not)."""

    status: str = "completed"
    findings: list[Finding] = field(default_factory=list)
    correctness: str = ""
    explanation: str = ""
    confidence: float = 0.0
    error: str = ""
    raw_text: str = ""

    @property
    def failed(self) -> bool:
        """The reviewer's answer could not be read as a review."""
        return self.status == "failed"

    @property
    def correct(self) -> bool:
        """The reviewer judged the change correct."""
        return self.correctness.strip().lower() == CORRECT

    def counts(self) -> dict[str, int]:
        """Findings per priority: {"P0": n, …, "P3": n}."""
        counts = dict.fromkeys(PRIORITIES, 0)
        for finding in self.findings:
            counts[finding.badge] += 1
        return counts

    def markers(self) -> dict[str, set[int]]:
        """Lines with findings, per repository-relative path (for the diff gutter)."""
        marks: dict[str, set[int]] = {}
        for finding in self.findings:
            if finding.path and finding.start > 0:
                end = max(finding.start, finding.end)
                marks.setdefault(finding.path, set()).update(
                    range(finding.start, min(end, finding.start + 500) + 1)
                )
        return marks


def parse_review(item: dict[str, Any]) -> ReviewResult:
    """A ReviewResult from an ITEM_REVIEW item; missing or malformed fields become defaults."""
    raw = item.get("findings")
    findings = [_finding(f) for f in raw if isinstance(f, dict)] if isinstance(raw, list) else []
    findings.sort(key=lambda f: f.priority)
    return ReviewResult(
        status="failed" if item.get("status") == "failed" else "completed",
        findings=findings,
        correctness=str(item.get("overall_correctness") or ""),
        explanation=str(item.get("overall_explanation") or ""),
        confidence=_float(item.get("overall_confidence_score")),
        error=str(item.get("error") or ""),
        raw_text=str(item.get("raw_text") or ""),
    )


def _finding(raw: dict[str, Any]) -> Finding:
    location = _dict(raw.get("code_location"))
    lines = _dict(location.get("line_range"))
    start = _int(lines.get("start"))
    return Finding(
        title=_PRIORITY_TAG.sub("", str(raw.get("title") or "")).strip() or "(untitled finding)",
        body=str(raw.get("body") or ""),
        priority=max(0, min(3, _int(raw.get("priority"), 3))),
        confidence=_float(raw.get("confidence_score")),
        path=str(location.get("path") or ""),
        absolute_path=str(location.get("absolute_file_path") or ""),
        start=start,
        end=max(start, _int(lines.get("end"), start)),
    )


def verdict_text(review: ReviewResult) -> str:
    """`✓ correct · 90% confident`, `✗ incorrect · 70% confident`, or `review failed`."""
    if review.failed:
        return "review failed"
    mark = "✓ correct" if review.correct else "✗ incorrect"
    return f"{mark} · {round(review.confidence * 100)}% confident"


def counts_text(review: ReviewResult) -> str:
    """`0 P0 · 1 P1 · 2 P2` (P3 only when present)."""
    counts = review.counts()
    shown = [name for name in PRIORITIES if name != "P3" or counts[name]]
    return " · ".join(f"{counts[name]} {name}" for name in shown)


def summary_text(review: ReviewResult) -> str:
    """The one-line summary of a review: `✓ correct · 0 P0 · 1 P1 · 2 P2`."""
    if review.failed:
        return "✗ review failed"
    return ("✓ correct" if review.correct else "✗ incorrect") + " · " + counts_text(review)


def finding_prompt(finding: Finding) -> str:
    """The message that asks an agent to fix one finding: title, location, body."""
    parts = [f"Fix this code review finding ({finding.badge}): {finding.title}"]
    if finding.location:
        parts.append(f"Location: {finding.location}")
    if finding.body:
        parts.append(finding.body)
    return "\n\n".join(parts)


def review_target_label(target: dict[str, Any]) -> str:
    """What a review looked at, for titles and notes: its label, or a description of its type."""
    label = str(target.get("label") or "")
    if label:
        return label
    names = {
        "uncommitted": "uncommitted changes",
        "base": "changes against a base branch",
        "commit": "a commit",
        "task": "a task's change",
    }
    return names.get(str(target.get("type") or ""), "a change")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return default


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return max(0.0, min(1.0, float(value)))
    return 0.0


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """What to review (one of p.REVIEW_TARGETS) and the optional custom instructions."""

    target: str
    base: str = ""
    commit: str = ""
    task_ids: tuple[str, ...] = ()
    instructions: str = ""

    def submit_data(self) -> dict[str, Any]:
        """The OP_SUBMIT data of this review (one review task per reviewed task)."""
        review: dict[str, Any] = {"target": self.target}
        if self.target == "base":
            review["base"] = self.base
        elif self.target == "commit":
            review["commit"] = self.commit
        elif self.target == "task":
            review["task_id"] = self.task_ids[0] if self.task_ids else ""
            if len(self.task_ids) > 1:
                review["task_ids"] = list(self.task_ids)
        return {"kind": "review", "prompt": self.instructions, "review": review, "attempts": 1}

    def describe(self) -> str:
        """`uncommitted changes`, `changes against main`, `commit abc123`, `3 tasks`."""
        if self.target == "base":
            return f"changes against {self.base}"
        if self.target == "commit":
            return f"commit {self.commit}"
        if self.target == "task":
            return "the task" if len(self.task_ids) <= 1 else f"{len(self.task_ids)} attempts"
        return "uncommitted changes"

    def problem(self) -> str:
        """Why this request cannot be sent ("" when it can)."""
        if self.target == "base" and not self.base.strip():
            return "Type the base branch to review against"
        if self.target == "commit" and not self.commit.strip():
            return "Type the commit to review (a sha or a ref)"
        if self.target == "task" and not self.task_ids:
            return "Select a task to review first"
        return ""


REVIEW_USAGE = "/review [uncommitted · base BRANCH · commit SHA · task · attempts] [instructions]"


def parse_review_args(arg: str, task_id: str | None, group_ids: list[str]) -> ReviewRequest | str:
    """`/review` arguments → a request, or the error to show (no argument is handled by the picker)."""
    words = arg.split()
    if not words:
        return f"Usage: {REVIEW_USAGE}"
    head, rest = words[0].lower(), words[1:]
    if head in ("base", "commit"):
        if not rest:
            return f"/review {head} needs a {'branch' if head == 'base' else 'commit'}"
        ref, instructions = rest[0], " ".join(rest[1:])
        if head == "base":
            return ReviewRequest("base", base=ref, instructions=instructions)
        return ReviewRequest("commit", commit=ref, instructions=instructions)
    if head in ("task", "attempts"):
        if task_id is None:
            return "Select a task to review first"
        ids = tuple(group_ids) if head == "attempts" and group_ids else (task_id,)
        return ReviewRequest("task", task_ids=ids, instructions=" ".join(rest))
    if head == "uncommitted":
        return ReviewRequest("uncommitted", instructions=" ".join(rest))
    return f"Unknown review target '{words[0]}'. Usage: {REVIEW_USAGE}"
