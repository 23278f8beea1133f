"""Code review as Codex does it: the reviewer's instructions, the request for each target, and the
review JSON — its schema (sent as structured output), parsing, validation and one repair request.

The reviewer's final answer is Codex's review object, so models trained on Codex review work
unchanged::

    {"findings": [{"title", "body", "confidence_score", "priority",
                   "code_location": {"absolute_file_path", "line_range": {"start", "end"}}}],
     "overall_correctness": "patch is correct" | "patch is incorrect",
     "overall_explanation", "overall_confidence_score"}

It is accepted as the bare object, in a fenced block, or inside prose; anything else is an error
naming the field, which becomes one repair request and then a failed review that keeps the raw text.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeGuard

REVIEW_SCHEMA_NAME: Final = "codex_review"
VERDICTS: Final = ("patch is correct", "patch is incorrect")
MAX_FINDINGS: Final = 50
CONTAINER_WORKDIR: Final = "/workspace"
"""Where container sandboxes mount the checkout: always read as the checkout's root."""
MAX_TITLE: Final = 200
MAX_BODY: Final = 8_000
_PROMPT_FILE: Final = Path(__file__).with_name("review_prompt.md")
_GUIDELINE_HEADINGS: Final = ("review guidelines", "code review rules")
_FENCE_RE: Final = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)
_HEADING_RE: Final = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")

_LINE_RANGE: Final = {
    "type": "object",
    "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}},
    "required": ["start", "end"],
    "additionalProperties": False,
}
REVIEW_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                    "confidence_score": {"type": "number"},
                    "priority": {"type": "integer"},
                    "code_location": {
                        "type": "object",
                        "properties": {
                            "absolute_file_path": {"type": "string"},
                            "line_range": _LINE_RANGE,
                        },
                        "required": ["absolute_file_path", "line_range"],
                        "additionalProperties": False,
                    },
                },
                "required": ["title", "body", "confidence_score", "priority", "code_location"],
                "additionalProperties": False,
            },
        },
        "overall_correctness": {"type": "string", "enum": list(VERDICTS)},
        "overall_explanation": {"type": "string"},
        "overall_confidence_score": {"type": "number"},
    },
    "required": ["findings", "overall_correctness", "overall_explanation", "overall_confidence_score"],
    "additionalProperties": False,
}
"""The review object as a strict JSON schema (Responses `text.format`, Chat `response_format`)."""


class ReviewFormatError(ValueError):
    """The answer is not valid review JSON; the message names what is wrong."""


@dataclass(slots=True)
class ReviewOutput:
    """A validated review: findings sorted by priority, and the overall verdict."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    overall_correctness: str = VERDICTS[0]
    overall_explanation: str = ""
    overall_confidence_score: float = 0.0

    def to_item(self) -> dict[str, Any]:
        """The fields of an ITEM_REVIEW item (without id, type, status and target)."""
        return {
            "findings": self.findings,
            "overall_correctness": self.overall_correctness,
            "overall_explanation": self.overall_explanation,
            "overall_confidence_score": self.overall_confidence_score,
        }


# --- instructions and requests ------------------------------------------------------------------


@cache
def review_prompt() -> str:
    """The reviewer's system prompt (review_prompt.md), read once."""
    return _PROMPT_FILE.read_text(encoding="utf-8").strip()


def review_guidelines(markdown: str) -> str:
    """The sections of AGENTS.md text headed "Review guidelines" or "Code Review Rules".

    Each section runs from its heading to the next heading of the same or a higher level.
    """
    lines = markdown.splitlines()
    chunks: list[str] = []
    level = 0
    current: list[str] = []
    for line in lines:
        match = _HEADING_RE.match(line)
        if match and level and len(match.group(1)) <= level:
            chunks.append("\n".join(current).strip())
            current, level = [], 0
        if match and not level and match.group(2).strip().lower().rstrip(":") in _GUIDELINE_HEADINGS:
            level = len(match.group(1))
            current = [line]
        elif level:
            current.append(line)
    if level:
        chunks.append("\n".join(current).strip())
    return "\n\n".join(chunk for chunk in chunks if chunk)


def review_request(target: dict[str, Any], instructions: str = "") -> str:
    """The user message that starts a review of `target` (a resolved review target's dict)."""
    kind = target.get("type")
    if kind == "base":
        base, sha = target.get("base", ""), target.get("base_sha", "")
        text = (
            f"Review the code changes against the base branch '{base}'. The merge base commit for "
            f"this comparison is {sha}. Run `git diff {sha}` to inspect the changes relative to "
            f"{base}. Provide prioritized, actionable findings."
        )
    elif kind == "commit":
        sha, title = target.get("head_sha") or target.get("commit", ""), target.get("commit_title", "")
        subject = f' ("{title}")' if title else ""
        text = (
            f"Review the code changes introduced by commit {sha}{subject}. Run `git show {sha}` to "
            "see them. Provide prioritized, actionable findings."
        )
    elif kind == "task":
        label = target.get("label") or f"task {target.get('task_id', '')}"
        text = (
            f"Review the changes made by {label}. They are the uncommitted changes in the working "
            "tree: run `git status` and `git diff` to see them (new files are untracked). Provide "
            "prioritized, actionable findings."
        )
    else:
        text = (
            "Review the current code changes (staged, unstaged, and untracked files) and provide "
            "prioritized findings. Run `git status` and `git diff HEAD` to see them."
        )
    if instructions.strip():
        text += f"\n\nAdditional instructions from the developer:\n{instructions.strip()}"
    return text


def repair_request(error: str) -> str:
    """The one follow-up sent when the reviewer's answer is not valid review JSON."""
    return (
        f"Your last answer is not valid review JSON ({error}). Reply again with only the JSON "
        "object in the required format: no prose, no Markdown fence."
    )


# --- parsing ------------------------------------------------------------------------------------


def parse_review(text: str, *, workdir: str, checkout: Path | None = None) -> ReviewOutput:
    """Validate the reviewer's answer; raises ReviewFormatError naming the first problem.

    `workdir` is the checkout's path inside the sandbox and `checkout` its host path: a finding's
    file under either (or under /workspace) gets a repository-relative `path` (else "").
    """
    raw = _extract_json(text)
    if not isinstance(raw, dict):
        raise ReviewFormatError("the answer is not a JSON object")
    findings = raw.get("findings")
    if not isinstance(findings, list):
        raise ReviewFormatError("`findings` must be a list")
    roots = [workdir.rstrip("/"), CONTAINER_WORKDIR]
    roots += [str(checkout).rstrip("/")] if checkout is not None else []
    parsed = [_finding(item, n, roots) for n, item in enumerate(findings[:MAX_FINDINGS])]
    parsed.sort(key=lambda f: (f["priority"], -f["confidence_score"]))
    verdict = raw.get("overall_correctness")
    if not isinstance(verdict, str) or verdict.strip().lower() not in VERDICTS:
        raise ReviewFormatError('`overall_correctness` must be "patch is correct" or "patch is incorrect"')
    explanation = raw.get("overall_explanation", "")
    if not isinstance(explanation, str):
        raise ReviewFormatError("`overall_explanation` must be a string")
    return ReviewOutput(
        findings=parsed,
        overall_correctness=verdict.strip().lower(),
        overall_explanation=explanation.strip()[:MAX_BODY],
        overall_confidence_score=_score(raw.get("overall_confidence_score"), "overall_confidence_score"),
    )


def _extract_json(text: str) -> Any:
    """The JSON value of the answer: the whole text, a fenced block, or the outermost braces."""
    stripped = text.strip()
    if not stripped:
        raise ReviewFormatError("the answer is empty")
    candidates = [stripped]
    candidates += [m.group(1) for m in _FENCE_RE.finditer(stripped)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    error = ""
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError as exc:
            error = error or str(exc)
    raise ReviewFormatError(f"no JSON object found: {error}")


def _finding(item: Any, n: int, roots: list[str]) -> dict[str, Any]:
    where = f"findings[{n}]"
    if not isinstance(item, dict):
        raise ReviewFormatError(f"{where} must be an object")
    title, body = item.get("title"), item.get("body", "")
    if not isinstance(title, str) or not title.strip():
        raise ReviewFormatError(f"{where}.title must be a non-empty string")
    if not isinstance(body, str):
        raise ReviewFormatError(f"{where}.body must be a string")
    location = item.get("code_location")
    if not isinstance(location, dict):
        raise ReviewFormatError(f"{where}.code_location must be an object")
    file_path = location.get("absolute_file_path")
    if not isinstance(file_path, str) or not file_path.strip():
        raise ReviewFormatError(f"{where}.code_location.absolute_file_path must be a non-empty string")
    start, end = _line_range(location.get("line_range"), where)
    return {
        "title": title.strip()[:MAX_TITLE],
        "body": body.strip()[:MAX_BODY],
        "confidence_score": _score(item.get("confidence_score"), f"{where}.confidence_score"),
        "priority": _priority(item.get("priority"), where),
        "code_location": {
            "absolute_file_path": file_path.strip(),
            "path": repository_path(file_path.strip(), roots),
            "line_range": {"start": start, "end": end},
        },
    }


def _line_range(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise ReviewFormatError(f"{where}.code_location.line_range must be an object")
    start, end = value.get("start"), value.get("end", value.get("start"))
    if not (_is_int(start) and _is_int(end)) or min(start, end) < 1:
        raise ReviewFormatError(f"{where}.code_location.line_range needs whole numbers start and end ≥ 1")
    return (int(start), int(end)) if start <= end else (int(end), int(start))


def _priority(value: Any, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"[Pp]?[0-3]", value.strip()):
        return int(value.strip()[-1])
    if not _is_int(value) or not 0 <= value <= 3:
        raise ReviewFormatError(f"{where}.priority must be 0, 1, 2 or 3 (P0-P3), got {value!r}")
    return int(value)


def _score(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ReviewFormatError(f"{where} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def repository_path(file_path: str, roots: list[str]) -> str:
    """`file_path` relative to the repository: under one of `roots`, or already relative; else ""."""
    candidate = ""
    for root in roots:
        if root and (file_path == root or file_path.startswith(root + "/")):
            candidate = file_path[len(root) :].lstrip("/")
            break
    else:
        if not file_path.startswith("/"):
            candidate = file_path
    if not candidate:
        return ""
    normal = posixpath.normpath(candidate)
    if normal in (".", "..") or normal.startswith("../") or normal.startswith("/"):
        return ""
    return normal


def review_item(
    item_id: str, target: dict[str, Any], output: ReviewOutput | None, *, error: str = "", raw_text: str = ""
) -> dict[str, Any]:
    """An ITEM_REVIEW item: the validated review, or a failed one that keeps the raw answer."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "review",
        "status": "completed" if output is not None else "failed",
        "target": {k: target[k] for k in ("type", "label", "task_id") if target.get(k)},
    }
    if output is not None:
        item.update(output.to_item())
    else:
        item.update(
            {
                "findings": [],
                "overall_correctness": "",
                "overall_explanation": "",
                "overall_confidence_score": 0.0,
                "error": error,
                "raw_text": raw_text[: MAX_BODY * 4],
            }
        )
    return item


def highest_priority(item: dict[str, Any]) -> int | None:
    """The most urgent priority among a review item's findings (0 = P0), or None without findings."""
    priorities = [f.get("priority") for f in item.get("findings") or [] if _is_int(f.get("priority"))]
    return min(priorities) if priorities else None


def format_review(item: dict[str, Any]) -> str:
    """A review item as plain text for a terminal: verdict, explanation, findings by priority.

    The caller strips control sequences (the text comes from the model).
    """
    if item.get("status") != "completed":
        raw = str(item.get("raw_text") or "").strip()
        return f"The review could not be read: {item.get('error', 'unknown error')}" + (
            f"\n\n{raw}" if raw else ""
        )
    findings = item.get("findings") or []
    confidence = float(item.get("overall_confidence_score") or 0.0)
    lines = [f"Verdict: {item.get('overall_correctness', '')} (confidence {confidence:.2f})"]
    if item.get("overall_explanation"):
        lines.append(str(item["overall_explanation"]))
    lines.append("")
    lines.append(f"{len(findings)} finding(s)" if findings else "No findings.")
    for finding in findings:
        location = finding.get("code_location") or {}
        lines_range = location.get("line_range") or {}
        where = location.get("path") or location.get("absolute_file_path", "")
        start, end = lines_range.get("start"), lines_range.get("end")
        span = f"{start}" if start == end else f"{start}-{end}"
        lines.append("")
        lines.append(f"[P{finding.get('priority')}] {finding.get('title', '')} — {where}:{span}")
        for body_line in str(finding.get("body", "")).splitlines():
            lines.append(f"    {body_line}")
    return "\n".join(lines)
