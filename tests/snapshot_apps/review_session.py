"""The recorded demo session plus review and Ask tasks, as events the core emits (fixed ids, no clocks).

Two review tasks review the two attempts of "Add reading_time()" (task-2, task-3): one finds
problems, one judges the change correct. An Ask task answers with `path:line` citations. Used by
the snapshot tests and by `scripts/screenshots.py` for the Review pane and the file viewer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codex_tui import protocol as p
from codex_tui.tui.source import RolloutReplay

SESSION = Path(__file__).resolve().parent.parent / "data" / "demo_session.json"
REPO = "/tmp/codex-tui-demo/textkit"
T0 = 1750000020.0

FINDINGS_A: list[dict[str, Any]] = [
    {
        "title": "reading_time() ignores a float wpm of less than one word per minute",
        "body": "`wpm=0.5` passes the `wpm <= 0` check but `ceil(word_count / 0.5)` doubles the time; "
        "document that wpm is words per minute as an integer or reject values below 1.",
        "confidence_score": 0.55,
        "priority": 2,
        "code_location": {
            "absolute_file_path": "/workspace/textkit/stats.py",
            "path": "textkit/stats.py",
            "line_range": {"start": 36, "end": 38},
        },
    },
    {
        "title": "Empty text returns 0 minutes, the README promises at least one",
        "body": "`reading_time('')` returns 0 while the README example implies a minimum of one minute. "
        "Pick one behaviour and test it.",
        "confidence_score": 0.8,
        "priority": 1,
        "code_location": {
            "absolute_file_path": "/workspace/textkit/stats.py",
            "path": "textkit/stats.py",
            "line_range": {"start": 40, "end": 40},
        },
    },
    {
        "title": "Test name says 'rounds up' but checks only one value",
        "body": "Add a case exactly on a minute boundary (200 words → 1) so rounding is pinned down.",
        "confidence_score": 0.4,
        "priority": 3,
        "code_location": {
            "absolute_file_path": "/workspace/tests/test_stats.py",
            "path": "tests/test_stats.py",
            "line_range": {"start": 30, "end": 31},
        },
    },
]
FINDINGS_B: list[dict[str, Any]] = [
    {
        "title": "New module is not exported from the package",
        "body": "`textkit/__init__.py` does not import `reading`; `from textkit import reading_time` fails.",
        "confidence_score": 0.6,
        "priority": 2,
        "code_location": {
            "absolute_file_path": "/workspace/textkit/reading.py",
            "path": "textkit/reading.py",
            "line_range": {"start": 1, "end": 3},
        },
    },
]
ASK_ANSWER = (
    "`median()` sorts a copy of the values first (`textkit/stats.py:19-25`), then picks the middle one, "
    "or the mean of the two middle ones for an even count.\n\n"
    "Words are matched by the `WORD` pattern at textkit/stats.py:6, so apostrophes stay inside a word."
)
FILE_TEXT = (
    '"""Word statistics."""\n\nimport re\n\n\nWORD = re.compile(r"[A-Za-z0-9\']+")\n\n\n'
    "def words(text):\n"
    '    """The words of `text`."""\n'
    "    return WORD.findall(text)\n\n\n"
    "def word_count(text):\n"
    '    """How many words `text` has."""\n'
    "    return len(words(text))\n\n\n"
    "def median(values):\n"
    '    """The median of a non-empty list of numbers."""\n'
    "    if not values:\n"
    '        raise ValueError("median() of an empty list")\n'
    "    ordered = sorted(values)\n"
    "    middle = len(ordered) // 2\n"
    "    if len(ordered) % 2:\n"
    "        return ordered[middle]\n"
    "    return (ordered[middle - 1] + ordered[middle]) / 2\n"
)


class _Events:
    def __init__(self) -> None:
        self.events: list[p.Event] = []
        self.seqs: dict[str, int] = {}
        self.ts = T0

    def __call__(self, type_: str, task_id: str, **data: Any) -> None:
        seq = self.seqs.get(task_id, 0) + 1
        self.seqs[task_id] = seq
        self.ts += 0.05
        self.events.append(p.Event(type_, task_id, seq, data, self.ts))


def review_item(findings: list[dict[str, Any]], correct: bool, explanation: str) -> dict[str, Any]:
    """A completed ITEM_REVIEW item."""
    return {
        "id": "review-1",
        "type": p.ITEM_REVIEW,
        "status": "completed",
        "target": {},
        "findings": findings,
        "overall_correctness": "patch is correct" if correct else "patch is incorrect",
        "overall_explanation": explanation,
        "overall_confidence_score": 0.82 if not correct else 0.9,
    }


def _review_task(
    add: _Events, task_id: str, reviewed: str, attempt: int, item: dict[str, Any], files: list[dict[str, Any]]
) -> None:
    label = f"Add reading_time() (attempt {attempt}/2)"
    target = {"type": "task", "label": label, "task_id": reviewed}
    add(
        p.TASK_CREATED,
        task_id,
        title=f"Review: {label}",
        prompt="",
        images=[],
        attempt=1,
        attempts=1,
        group_id=f"group-{task_id}",
        mode="read-only",
        model="scripted:review",
        repo=REPO,
        effort="medium",
        kind="review",
        review_target=target,
    )
    add(p.TASK_STATUS, task_id, status="running")
    add(p.DIFF_UPDATED, task_id, files=files, added=sum(f["added"] for f in files), removed=0)
    add(p.TURN_STARTED, task_id, turn=1)
    add(
        p.ITEM_COMPLETED,
        task_id,
        item={"id": "m1", "type": p.ITEM_AGENT_MESSAGE, "text": "Reviewed the change."},
    )
    add(p.ITEM_COMPLETED, task_id, item=dict(item, target=target))
    add(p.TURN_COMPLETED, task_id, turn=1, usage=p.usage_dict(4000, 1000, 300))
    add(p.TASK_STATUS, task_id, status="ready")


def review_session() -> tuple[list[p.Event], dict[str, str]]:
    """The demo session with two review tasks (task-5, task-6) and an Ask task (task-7) appended."""
    raw = json.loads(SESSION.read_text(encoding="utf-8"))
    events = [p.Event(e["type"], e["task_id"], e["seq"], e["data"], e["ts"]) for e in raw["events"]]
    patches: dict[str, str] = dict(raw["patches"])
    add = _Events()
    files_a = [
        {"path": "tests/test_stats.py", "status": "modified", "added": 13, "removed": 1},
        {"path": "textkit/stats.py", "status": "modified", "added": 8, "removed": 0},
    ]
    files_b = [{"path": "textkit/reading.py", "status": "added", "added": 14, "removed": 0}]
    explanation_a = (
        "The function works for the common case, but the empty-text behaviour contradicts the README "
        "and the tests leave rounding at a minute boundary unchecked."
    )
    _review_task(add, "task-5", "task-2", 1, review_item(FINDINGS_A, False, explanation_a), files_a)
    explanation_b = "A separate module with its own tests; behaviour matches the README."
    _review_task(add, "task-6", "task-3", 2, review_item(FINDINGS_B, True, explanation_b), files_b)
    patches["task-5"] = patches["task-2"]
    patches["task-6"] = patches["task-3"]
    patches["task-7"] = ""
    add(
        p.TASK_CREATED,
        "task-7",
        title="How does median() work?",
        prompt="How does median() work?",
        images=[],
        attempt=1,
        attempts=1,
        group_id="group-task-7",
        mode="read-only",
        model="scripted:ask",
        repo=REPO,
        effort="medium",
        kind="ask",
    )
    add(p.TASK_STATUS, "task-7", status="running")
    add(p.TURN_STARTED, "task-7", turn=1)
    add(p.ITEM_COMPLETED, "task-7", item={"id": "a1", "type": p.ITEM_AGENT_MESSAGE, "text": ASK_ANSWER})
    add(p.TURN_COMPLETED, "task-7", turn=1, usage=p.usage_dict(3000, 0, 200))
    add(p.TASK_STATUS, "task-7", status="ready")
    return events + add.events, patches


def read_file_result(path: str) -> dict[str, Any]:
    """What OP_READ_FILE answers for the Ask task's cited file."""
    return {"path": path, "text": FILE_TEXT, "truncated": False, "binary": False}


class RecordingReplay(RolloutReplay):
    """A replay that records every operation and answers reads of the cited file (for UI tests)."""

    def __init__(self, events: list[p.Event], patches: dict[str, str]) -> None:
        super().__init__(events, patches)
        self.ops: list[p.Op] = []

    async def submit(self, op: p.Op) -> p.OpResult:
        """Record `op`; read the cited file, accept submissions and messages, replay diffs."""
        self.ops.append(op)
        if op.type == p.OP_READ_FILE:
            return p.OpResult(True, "", read_file_result(str(op.data.get("path", ""))))
        if op.type in (p.OP_SUBMIT, p.OP_USER_MESSAGE, p.OP_SET_KIND):
            return p.OpResult(True, "", {"task_ids": []})
        return await super().submit(op)
