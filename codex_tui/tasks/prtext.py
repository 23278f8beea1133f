"""The pull-request text for a task's change: a clean title and a Markdown body.

The body has up to five sections, like a Codex cloud PR: **Summary** (the user's request and the
agent's final report), **Changes** (files with status and +/-), **Verification** (the commands the
agent ran and how they ended), **Artifacts** (files the agent attached: name, type, size, hash,
caption; when there are any) and **Review** (the newest review's verdict and findings, when there
is one). Everything quoted from the task is untrusted: control sequences are stripped, free text is
kept inside block quotes (an unclosed fence or a stray heading cannot leave its quote), and
commands and paths go into code spans fenced longer than any backtick run they contain.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from codex_tui import protocol as p
from codex_tui.boundary.terminal import strip_controls
from codex_tui.protocol import Event
from codex_tui.tasks.store import RolloutStore, TaskRecord, iter_rollout
from codex_tui.workspace.branch import commit_message
from codex_tui.workspace.diffstat import DiffResult, FileDiff

TITLE_MAX: Final = 72
REQUEST_MAX: Final = 2000
FOLLOW_UP_MAX: Final = 300
FOLLOW_UPS_SHOWN: Final = 5
REPORT_MAX: Final = 4000
FILES_SHOWN: Final = 50
PATH_MAX: Final = 250
COMMANDS_SHOWN: Final = 10
COMMAND_MAX: Final = 200
EXPLANATION_MAX: Final = 1000
FINDINGS_SHOWN: Final = 20
FINDING_TITLE_MAX: Final = 200
ARTIFACTS_SHOWN: Final = 20
CAPTION_MAX: Final = 200
BODY_MAX: Final = 60_000
"""GitHub refuses PR bodies over 65 536 characters."""

_STATUSES: Final = ("added", "modified", "deleted", "renamed")


@dataclass(slots=True, frozen=True)
class PrText:
    """A pull request's title (one line) and Markdown body."""

    title: str
    body: str

    def to_dict(self) -> dict[str, str]:
        """As saved in `TaskRecord.pr` and sent in `task.get_pr` results."""
        return {"title": self.title, "body": self.body}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PrText:
        """Rebuild from `to_dict` output (missing keys are empty)."""
        return cls(title=str(raw.get("title") or ""), body=str(raw.get("body") or ""))

    def commit_message(self) -> str:
        """The branch commit's message: this title as the subject, this body below it."""
        return commit_message(self.title, [], body=self.body)


@dataclass(slots=True)
class _Command:
    """One completed command_execution item."""

    command: str
    exit_code: int | None
    status: str
    timed_out: bool
    note: str


@dataclass(slots=True)
class _Turn:
    """What one turn of the conversation holds for the PR text."""

    number: int
    started: float
    messages: list[str] = field(default_factory=list)
    report: str = ""
    commands: list[_Command] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Digest:
    """The parts of a rollout the PR text needs."""

    turns: list[_Turn] = field(default_factory=list)
    diff_files: list[dict[str, Any]] | None = None


def build_pr_text(
    record: TaskRecord, events: Iterable[Event], diff: DiffResult | None, reviews: list[TaskRecord]
) -> PrText:
    """The PR text of a task from its events, diff (None: its last diff event) and reviews (newest first)."""
    digest = _digest(events)
    files = diff.files if diff is not None else [_file_of(raw) for raw in digest.diff_files or []]
    sections = [
        _summary(record, digest.turns),
        _changes([f for f in files if f is not None]),
        _verification(digest.turns),
        _artifacts(digest.turns),
        _review(reviews, digest.turns),
    ]
    body = "\n\n".join(s for s in sections if s).strip() + "\n"
    if len(body) > BODY_MAX:
        body = body[:BODY_MAX].rstrip() + "\n\n_… the rest of this description was cut (too long)._\n"
    return PrText(title=pr_title(record), body=body)


async def make_pr_text(
    store: RolloutStore, record: TaskRecord, diff: DiffResult | None, reviews: list[TaskRecord]
) -> PrText:
    """`build_pr_text` over the task's rollout (the file plus what is still buffered), read in a thread."""
    pending = store.pending_events(record.id)
    path = store.rollout_path(record.id)
    return await asyncio.to_thread(
        lambda: build_pr_text(record, itertools.chain(iter_rollout(path), pending), diff, reviews)
    )


def reviews_for(task_id: str, records: Iterable[TaskRecord]) -> list[TaskRecord]:
    """The review tasks whose target is task `task_id`, newest first."""
    found = [r for r in records if r.kind == "review" and r.review_target.get("task_id") == task_id]
    return sorted(found, key=lambda r: r.created, reverse=True)


def pr_title(record: TaskRecord) -> str:
    """One clean line of at most TITLE_MAX characters: the task title, else its prompt."""
    for candidate in (record.title, record.prompt):
        text = _one_line(candidate)
        if text:
            return _shorten(text, TITLE_MAX)
    return "Changes made by codex-tui"


# --- reading the rollout -------------------------------------------------------------------------


def _digest(events: Iterable[Event]) -> _Digest:
    """Turns (requests, final report, commands) and the last diff; undone turns are dropped."""
    digest = _Digest()
    waiting: list[str] = []  # a prompt or follow-up arrives just before its turn.started
    top = 0
    for event in events:
        if event.type == p.OUTPUT_DELTA or event.seq <= top:
            continue  # output is not needed (a held tail comes late); an event written twice counts once
        top = event.seq
        data = event.data
        if event.type == p.USER_MESSAGE:
            text = str(data.get("text") or "")
            if data.get("kind") == "steer" and digest.turns:
                digest.turns[-1].messages.append(text)
            else:
                waiting.append(text)
        elif event.type == p.TURN_STARTED:
            number = data.get("turn")
            turn = _Turn(number if isinstance(number, int) else len(digest.turns) + 1, event.ts, waiting)
            digest.turns.append(turn)
            waiting = []
        elif event.type == p.TURN_UNDONE:
            _undo(digest.turns, data)
        elif event.type == p.ITEM_COMPLETED:
            _take_item(digest, data.get("item"), event.ts)
        elif event.type == p.DIFF_UPDATED:
            files = data.get("files")
            digest.diff_files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    if waiting:
        digest.turns.append(_Turn(len(digest.turns) + 1, 0.0, waiting))
    return digest


def _undo(turns: list[_Turn], data: dict[str, Any]) -> None:
    """Drop the newest turn with the undone number and every later one (only their commands when the
    conversation stayed)."""
    number = data.get("turn")
    index = next((i for i in reversed(range(len(turns))) if turns[i].number == number), -1)
    if index < 0:
        return
    if data.get("conversation") is False:
        for turn in turns[index:]:
            turn.commands.clear()  # the files went back: what those commands checked is gone
    else:
        del turns[index:]


def _take_item(digest: _Digest, item: Any, ts: float) -> None:
    if not isinstance(item, dict):
        return
    if not digest.turns:
        digest.turns.append(_Turn(1, ts))
    turn = digest.turns[-1]
    kind = item.get("type")
    if kind == p.ITEM_AGENT_MESSAGE and not item.get("discarded"):
        text = str(item.get("text") or "")
        if text.strip():
            turn.report = text
    elif kind == p.ITEM_COMMAND and item.get("status") != "declined":
        code = item.get("exit_code")
        turn.commands.append(
            _Command(
                command=str(item.get("command") or ""),
                exit_code=code if isinstance(code, int) else None,
                status=str(item.get("status") or ""),
                timed_out=bool(item.get("timed_out")),
                note=str(item.get("note") or ""),
            )
        )
    elif kind == p.ITEM_ARTIFACT:
        turn.artifacts.append(item)


def _file_of(raw: dict[str, Any]) -> FileDiff | None:
    """A diff.updated file entry as a FileDiff (None when it has no path)."""
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        return None
    status = raw.get("status")
    old = raw.get("old_path")
    return FileDiff(
        path=path,
        status=status if status in _STATUSES else "modified",  # type: ignore[arg-type]
        added=_int(raw.get("added")),
        removed=_int(raw.get("removed")),
        old_path=old if isinstance(old, str) and old else None,
        binary=bool(raw.get("binary")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- sections ------------------------------------------------------------------------------------


def _summary(record: TaskRecord, turns: list[_Turn]) -> str:
    messages = [m for t in turns for m in t.messages if _clean(m).strip()]
    request = messages[0] if messages else record.prompt
    lines = ["## Summary", ""]
    if _clean(request).strip():
        lines += ["**Request**", "", _quote(_trim(_clean(request), REQUEST_MAX)), ""]
    follow_ups = messages[1:]
    if follow_ups:
        lines += ["**Follow-ups**", ""]
        for text in follow_ups[-FOLLOW_UPS_SHOWN:]:
            lines.append(f"- {_escape_line(_shorten(_one_line(text), FOLLOW_UP_MAX))}")
        if len(follow_ups) > FOLLOW_UPS_SHOWN:
            lines.append(f"- _… and {len(follow_ups) - FOLLOW_UPS_SHOWN} earlier follow-up(s)_")
        lines.append("")
    report = next((t.report for t in reversed(turns) if _clean(t.report).strip()), "")
    lines += ["**What the agent reported**", ""]
    if report:
        lines.append(_quote(_trim(_clean(report), REPORT_MAX)))
    else:
        lines.append("_The agent gave no final message._")
    return "\n".join(lines)


def _changes(files: list[FileDiff]) -> str:
    lines = ["## Changes", ""]
    if not files:
        return "\n".join([*lines, "No file changes."])
    added = sum(f.added for f in files)
    removed = sum(f.removed for f in files)
    lines += [f"{len(files)} file(s) changed, +{added} −{removed}", ""]
    for f in files[:FILES_SHOWN]:
        where = _code(_shorten(_clean(f.path), PATH_MAX))
        if f.old_path:
            where = f"{_code(_shorten(_clean(f.old_path), PATH_MAX))} → {where}"
        counts = "binary" if f.binary else f"+{f.added} −{f.removed}"
        lines.append(f"- {where} — {f.status} ({counts})")
    if len(files) > FILES_SHOWN:
        lines.append(f"- _… and {len(files) - FILES_SHOWN} more file(s)_")
    return "\n".join(lines)


def _verification(turns: list[_Turn]) -> str:
    commands = [c for t in turns for c in t.commands]
    lines = ["## Verification", ""]
    if not commands:
        return "\n".join([*lines, "The agent ran no commands."])
    shown = commands[-COMMANDS_SHOWN:]
    failed = sum(1 for c in shown if _outcome(c)[0] != "✅")
    which = f"the last {len(shown)} of {len(commands)}" if len(commands) > len(shown) else "all"
    tail = f", {failed} failed" if failed else ""
    lines += [f"Commands the agent ran ({which}{tail}):", ""]
    for command in shown:
        mark, outcome = _outcome(command)
        lines.append(f"- {mark} {_code(_shorten(_one_line(command.command), COMMAND_MAX))} ({outcome})")
    return "\n".join(lines)


def _outcome(command: _Command) -> tuple[str, str]:
    """A mark (✅ passed, ❌ failed, ⚠️ did not finish) and the words for how a command ended."""
    if command.timed_out:
        return "❌", "timed out"
    if command.exit_code is None:
        return "⚠️", _one_line(command.note or command.status or "did not finish") or "did not finish"
    if command.exit_code == 0:
        return "✅", "exit 0"
    return "❌", f"exit {command.exit_code}"


def _artifacts(turns: list[_Turn]) -> str:
    artifacts = [a for t in turns for a in t.artifacts]
    if not artifacts:
        return ""
    lines = [
        "## Artifacts",
        "",
        "Files the agent attached (kept with the task by codex-tui, not part of this change):",
        "",
    ]
    for artifact in artifacts[:ARTIFACTS_SHOWN]:
        name = _code(_shorten(_one_line(str(artifact.get("name") or "artifact")), PATH_MAX))
        details = [_one_line(str(artifact.get("mime_type") or "")), _size_text(_int(artifact.get("size")))]
        digest = _one_line(str(artifact.get("sha256") or ""))
        if digest:
            details.append(f"sha256 {_code(digest[:16])}")
        line = f"- {name} ({', '.join(d for d in details if d)})"
        caption = _shorten(_one_line(str(artifact.get("caption") or "")), CAPTION_MAX)
        lines.append(f"{line} — {_escape_line(caption)}" if caption else line)
    if len(artifacts) > ARTIFACTS_SHOWN:
        lines.append(f"- _… and {len(artifacts) - ARTIFACTS_SHOWN} more_")
    return "\n".join(lines)


def _size_text(size: int) -> str:
    if size >= 1_048_576:
        return f"{size / 1_048_576:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def _review(reviews: list[TaskRecord], turns: list[_Turn]) -> str:
    chosen = next((r for r in reviews if r.review and r.review.get("status") != "failed"), None)
    if chosen is None:
        return ""
    review = chosen.review
    verdict = _one_line(str(review.get("overall_correctness") or "no verdict"))
    lines = ["## Review", "", f"Review {_code(_one_line(chosen.id))}: **{_escape_line(verdict)}**"]
    explanation = _clean(str(review.get("overall_explanation") or ""))
    if explanation.strip():
        lines += ["", _quote(_trim(explanation, EXPLANATION_MAX))]
    later = sum(1 for t in turns if t.started > chosen.created)
    if later:
        note = f"_The task ran {later} more turn(s) after this review started; some may be fixed._"
        lines += ["", note]
    findings = [f for f in review.get("findings") or [] if isinstance(f, dict)]
    if not findings:
        return "\n".join([*lines, "", "No open findings."])
    lines += ["", f"Open findings ({len(findings)}):", ""]
    for finding in findings[:FINDINGS_SHOWN]:
        lines.append(f"- {_finding(finding)}")
    if len(findings) > FINDINGS_SHOWN:
        lines.append(f"- _… and {len(findings) - FINDINGS_SHOWN} more_")
    return "\n".join(lines)


def _finding(finding: dict[str, Any]) -> str:
    priority = finding.get("priority")
    tag = f"**P{priority}** " if isinstance(priority, int) and 0 <= priority <= 3 else ""
    title = _escape_line(_shorten(_one_line(str(finding.get("title") or "untitled")), FINDING_TITLE_MAX))
    location = finding.get("code_location")
    where = _location(location) if isinstance(location, dict) else ""
    return f"{tag}{title}" + (f" — {_code(where)}" if where else "")


def _location(location: dict[str, Any]) -> str:
    path = str(location.get("path") or location.get("absolute_file_path") or "")
    if not path:
        return ""
    where = _shorten(_one_line(path), PATH_MAX)
    lines = location.get("line_range")
    if isinstance(lines, dict):
        start, end = _int(lines.get("start")), _int(lines.get("end"))
        if start:
            where += f":{start}" + (f"-{end}" if end > start else "")
    return where


# --- safe Markdown -------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Untrusted text without terminal control sequences."""
    return strip_controls(text)


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split())


def _shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters (at a word when one ends in the last third), with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit * 2 // 3 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def _trim(text: str, limit: int) -> str:
    """Multi-line `text` cut to about `limit` characters at a line end, saying so."""
    text = text.strip("\n")
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if "\n" in cut[limit // 2 :]:
        cut = cut.rsplit("\n", 1)[0]
    return cut.rstrip() + "\n\n… (cut)"


def _quote(text: str) -> str:
    """A Markdown block quote of every line: whatever the text opens (fences, HTML) closes with it."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def _code(text: str) -> str:
    """An inline code span holding `text` literally, whatever backticks it contains."""
    text = text.replace("\n", " ")
    runs = [len(m) for m in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _escape_line(text: str) -> str:
    """One line of plain text that opens no Markdown block (heading, quote, list, fence, HTML)."""
    number = re.match(r"\d+(?=[.)])", text)
    if number:
        return f"{text[: number.end()]}\\{text[number.end() :]}"
    return f"\\{text}" if text[:1] in "#>+-*=|<`~" else text
