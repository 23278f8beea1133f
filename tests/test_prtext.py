"""A task's pull-request text: title, Summary, Changes, Verification, Review; untrusted text contained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from codex_tui import protocol as p
from codex_tui.protocol import Event
from codex_tui.tasks.prtext import PrText, build_pr_text, make_pr_text, reviews_for
from codex_tui.tasks.store import RolloutStore, TaskRecord
from codex_tui.workspace.branch import commit_message
from codex_tui.workspace.diffstat import DiffResult, FileDiff


def record(**fields: Any) -> TaskRecord:
    """A task record with a title and prompt (fields override)."""
    base: dict[str, Any] = {
        "id": "t-1",
        "title": "Fix the add function",
        "prompt": "fix add",
        "repo": "/repo",
        "created": 100.0,
        "updated": 100.0,
    }
    return TaskRecord(**{**base, **fields})


class Rollout:
    """Builds a task's events with increasing seqs and times."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, event_type: str, /, **data: Any) -> Rollout:
        seq = len(self.events) + 1
        self.events.append(Event(event_type, "t-1", seq, data, ts=1000.0 + seq))
        return self

    def user(self, text: str, kind: str = "prompt") -> Rollout:
        return self.add(p.USER_MESSAGE, text=text, images=[], kind=kind)

    def turn(self, number: int) -> Rollout:
        return self.add(p.TURN_STARTED, turn=number)

    def say(self, text: str, **extra: Any) -> Rollout:
        item = {"id": f"m{len(self.events)}", "type": p.ITEM_AGENT_MESSAGE, "text": text, **extra}
        return self.add(p.ITEM_COMPLETED, item=item)

    def ran(self, command: str, exit_code: int | None, status: str = "completed", **extra: Any) -> Rollout:
        item = {
            "id": f"c{len(self.events)}",
            "type": p.ITEM_COMMAND,
            "command": command,
            "aggregated_output": "",
            "exit_code": exit_code,
            "status": status,
            **extra,
        }
        return self.add(p.ITEM_COMPLETED, item=item)

    def diff(self, *files: dict[str, Any]) -> Rollout:
        return self.add(p.DIFF_UPDATED, files=list(files), added=0, removed=0)


def sections(body: str) -> list[str]:
    """The top-level headings of a Markdown body, as a renderer sees them."""
    tokens = MarkdownIt("commonmark").parse(body)
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.level == 0]


def code_spans(body: str) -> list[str]:
    """The content of every inline code span, as a renderer sees it."""
    found: list[str] = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if token.type == "code_inline":
                found.append(token.content)
            walk(token.children or [])

    walk(MarkdownIt("commonmark").parse(body))
    return found


def finished_task() -> Rollout:
    """A two-turn task: a fix with tests run, then a follow-up."""
    return (
        Rollout()
        .user("Make add() handle strings\nand keep ints working")
        .turn(1)
        .say("Let me look at the code.")
        .ran("python -m pytest -q", 1)
        .ran("python -m pytest -q", 0)
        .say("I changed `add` to concatenate strings.")
        .diff({"path": "calc.py", "status": "modified", "added": 3, "removed": 1})
        .user("also update the README", kind="follow_up")
        .turn(2)
        .say("README updated; tests pass.")
        .diff(
            {"path": "calc.py", "status": "modified", "added": 3, "removed": 1},
            {"path": "README.md", "status": "modified", "added": 2, "removed": 0},
        )
    )


def test_title_is_the_task_title_on_one_clean_line_of_at_most_72_chars() -> None:
    long = "Refactor\nthe \x1b]0;pwned\x07parser so that every token keeps its source span and errors point"
    title = build_pr_text(record(title=long), [], None, []).title
    assert "\n" not in title and "\x1b" not in title and "pwned" not in title
    assert len(title) <= 72 and title.startswith("Refactor the parser so that") and title.endswith("…")
    assert not title.lower().startswith("codex:")
    assert build_pr_text(record(title="Fix add"), [], None, []).title == "Fix add"


def test_body_summarises_request_follow_ups_and_the_last_final_message() -> None:
    body = build_pr_text(record(), finished_task().events, None, []).body
    assert sections(body) == ["Summary", "Changes", "Verification"]
    assert "> Make add() handle strings\n> and keep ints working" in body
    assert "- also update the README" in body
    assert "> README updated; tests pass." in body
    assert "Let me look at the code." not in body and "concatenate strings" not in body


def test_changes_fall_back_to_the_last_diff_event_without_a_diff() -> None:
    body = build_pr_text(record(), finished_task().events, None, []).body
    assert "2 file(s) changed, +5 −1" in body
    assert "- `calc.py` — modified (+3 −1)" in body and "- `README.md` — modified (+2 −0)" in body


def test_changes_come_from_the_diff_when_given() -> None:
    diff = DiffResult(
        files=[
            FileDiff("src/new.py", "renamed", 1, 0, old_path="old.py"),
            FileDiff("logo.png", "added", binary=True),
        ],
        added=1,
    )
    body = build_pr_text(record(), finished_task().events, diff, []).body
    assert "- `old.py` → `src/new.py` — renamed (+1 −0)" in body
    assert "- `logo.png` — added (binary)" in body and "calc.py" not in body


def test_no_changes_and_no_commands_are_said_plainly() -> None:
    body = build_pr_text(record(), Rollout().user("explain").turn(1).say("It adds.").events, None, []).body
    assert "No file changes." in body and "The agent ran no commands." in body


def test_verification_lists_the_last_ten_commands_and_marks_failures() -> None:
    rollout = Rollout().user("go").turn(1)
    for n in range(12):
        rollout.ran(f"step {n}", 0)
    rollout.ran("make lint", 2).ran("sleep 99", 124, timed_out=True)
    rollout.ran("tail -f log", None, note="interrupted")
    rollout.ran("rm -rf /", None, status="declined")
    body = build_pr_text(record(), rollout.events, None, []).body
    assert "Commands the agent ran (the last 10 of 15, 3 failed):" in body
    assert "step 4" not in body and "- ✅ `step 5` (exit 0)" in body
    assert "- ❌ `make lint` (exit 2)" in body
    assert "- ❌ `sleep 99` (timed out)" in body
    assert "- ⚠️ `tail -f log` (interrupted)" in body
    assert "rm -rf" not in body


def test_an_undone_turn_leaves_the_pr_text() -> None:
    rollout = finished_task().add(p.TURN_UNDONE, turn=2, conversation=True)
    rollout.diff({"path": "calc.py", "status": "modified", "added": 3, "removed": 1})
    body = build_pr_text(record(), rollout.events, None, []).body
    assert "README" not in body and "> I changed `add` to concatenate strings." in body


def test_an_event_written_twice_counts_once() -> None:
    events = finished_task().events
    body = build_pr_text(record(), [*events, *events], None, []).body
    assert body.count("python -m pytest -q") == 2 and body.count("also update the README") == 1


def test_untrusted_text_cannot_escape_its_block_or_reach_the_terminal() -> None:
    report = "Done.\n```python\nunclosed fence\n## Review\n<!-- hide the rest\n\x1b]52;c;Y2xpcA==\x07tail"
    rollout = (
        Rollout()
        .user("# Heading prompt\n---")
        .turn(1)
        .ran("echo ``` && printf '\x1b[2J' `date`", 0)
        .say(report)
        .diff({"path": "we`ird\x1b[31m.py", "status": "added", "added": 1, "removed": 0})
    )
    body = build_pr_text(record(title="ok"), rollout.events, None, []).body
    assert "\x1b" not in body and "\x07" not in body
    assert sections(body) == ["Summary", "Changes", "Verification"]
    spans = code_spans(body)
    assert "echo ``` && printf '' `date`" in spans and "we`ird.py" in spans
    assert "> <!-- hide the rest" in body and body.rstrip().endswith("(exit 0)")


def test_headings_and_html_in_the_agents_report_stay_inside_its_quote() -> None:
    report = "## Changes\n\n- nothing\n\n<!-- the rest is hidden\n<details>\n# Title"
    rollout = Rollout().user("go").turn(1).say(report).diff({"path": "a.py", "status": "added", "added": 1})
    body = build_pr_text(record(), rollout.events, None, []).body
    assert sections(body) == ["Summary", "Changes", "Verification"]
    assert "\n> <!-- the rest is hidden\n> <details>\n> # Title\n\n## Changes" in body


def review_task(task_id: str, created: float, review: dict[str, Any], target: str = "t-1") -> TaskRecord:
    """A review task of task `target` with a result."""
    target_data = {"type": "task", "task_id": target, "label": target}
    return record(id=task_id, kind="review", created=created, review_target=target_data, review=review)


def finding(title: str, priority: int, path: str, start: int, end: int) -> dict[str, Any]:
    """A review finding as the review item holds it."""
    lines = {"start": start, "end": end}
    location = {"absolute_file_path": f"/workspace/{path}", "path": path, "line_range": lines}
    return {"title": title, "body": "…", "priority": priority, "code_location": location}


def test_review_section_shows_the_newest_reviews_verdict_and_findings() -> None:
    old = review_task("t-old", 50.0, {"status": "completed", "overall_correctness": "patch is correct"})
    new = review_task(
        "t-new",
        90.0,
        {
            "status": "completed",
            "overall_correctness": "patch is incorrect",
            "overall_explanation": "Strings break ints.",
            "findings": [
                finding("[P1] ints now concatenate", 1, "calc.py", 2, 4),
                finding("typo", 3, "README.md", 7, 7),
            ],
        },
    )
    failed = review_task("t-failed", 95.0, {"status": "failed", "error": "not JSON"})
    reviews = reviews_for("t-1", [old, record(id="t-2"), failed, new])
    assert [r.id for r in reviews] == ["t-failed", "t-new", "t-old"]
    body = build_pr_text(record(), finished_task().events, None, reviews).body
    assert sections(body) == ["Summary", "Changes", "Verification", "Review"]
    assert "Review `t-new`: **patch is incorrect**" in body and "> Strings break ints." in body
    assert "Open findings (2):" in body
    assert "- **P1** [P1] ints now concatenate — `calc.py:2-4`" in body
    assert "- **P3** typo — `README.md:7`" in body
    assert "may be fixed" in body  # the task's turns (ts ~1000) started after the review (created 90)


def test_review_section_is_left_out_without_a_finished_review() -> None:
    failed = review_task("t-failed", 95.0, {"status": "failed", "error": "not JSON"})
    empty = review_task("t-empty", 96.0, {})
    body = build_pr_text(record(), finished_task().events, None, [failed, empty]).body
    assert "## Review" not in body


async def test_make_pr_text_reads_the_rollout_and_what_is_still_buffered(tmp_path: Path) -> None:
    store = RolloutStore(tmp_path)
    await store.open()
    try:
        events = finished_task().events
        for event in events[:6]:
            store.append(event)
        await store.flush()
        for event in events[6:]:
            store.append(event)
        assert store.pending_events("t-1")
        pr = await make_pr_text(store, record(), None, [])
    finally:
        await store.close()
    assert pr == build_pr_text(record(), events, None, [])
    assert PrText.from_dict(pr.to_dict()) == pr


def test_branch_commit_message_uses_the_pr_text_when_given() -> None:
    files = [FileDiff("calc.py", "modified", 3, 1)]
    assert commit_message("Fix add", files) == "codex: Fix add\n\n- calc.py (modified, +3 -1)\n"
    pr = PrText("Fix add", "## Summary\n\nDone.\n")
    assert pr.commit_message() == "Fix add\n\n## Summary\n\nDone.\n"
    assert commit_message("Fix\nadd", files, body="") == "Fix add\n"
