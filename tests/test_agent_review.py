"""The review JSON: parsing the answer in the shapes models give it, validation errors that name the
field, repository-relative paths, the reviewer's instructions and AGENTS.md review guidelines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_tui.agent.instructions import ProjectDocs, build_instructions
from codex_tui.agent.review import (
    REVIEW_SCHEMA,
    ReviewFormatError,
    format_review,
    parse_review,
    repository_path,
    review_guidelines,
    review_item,
    review_request,
)


def answer(**overrides: Any) -> dict[str, Any]:
    """A valid review with two findings (P2 listed before P0)."""
    base: dict[str, Any] = {
        "findings": [
            {
                "title": "[P2] Log the retry",
                "body": "Silent retries hide outages.",
                "confidence_score": 0.5,
                "priority": 2,
                "code_location": {
                    "absolute_file_path": "/workspace/src/net.py",
                    "line_range": {"start": 9, "end": 9},
                },
            },
            {
                "title": "[P0] Secret written to the log",
                "body": "The token is logged at debug level.",
                "confidence_score": 0.95,
                "priority": 0,
                "code_location": {
                    "absolute_file_path": "/workspace/src/auth.py",
                    "line_range": {"start": 30, "end": 28},
                },
            },
        ],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": "Leaks the token.",
        "overall_confidence_score": 0.9,
    }
    base.update(overrides)
    return base


def parse(text: str) -> Any:
    return parse_review(text, workdir="/workspace", checkout=Path("/data/worktrees/t-1"))


def test_bare_json_is_parsed_sorted_by_priority_with_repository_paths() -> None:
    review = parse(json.dumps(answer()))
    assert [f["priority"] for f in review.findings] == [0, 2]
    first = review.findings[0]["code_location"]
    assert first["path"] == "src/auth.py"
    assert first["line_range"] == {"start": 28, "end": 30}  # a reversed range is put in order
    assert review.overall_correctness == "patch is incorrect"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda body: f"```json\n{body}\n```",
        lambda body: f"Here is my review.\n\n```\n{body}\n```\nThanks.",
        lambda body: f"Review follows: {body} — end.",
    ],
    ids=["fenced", "fenced-in-prose", "inline-in-prose"],
)
def test_json_in_a_fence_or_in_prose_is_accepted(wrap: Any) -> None:
    assert len(parse(wrap(json.dumps(answer()))).findings) == 2


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"findings": "none"}, "`findings` must be a list"),
        ({"overall_correctness": "looks good"}, "overall_correctness"),
        ({"overall_confidence_score": 7}, "overall_confidence_score must be a number from 0 to 1"),
    ],
)
def test_invalid_fields_are_named(broken: dict[str, Any], message: str) -> None:
    with pytest.raises(ReviewFormatError, match=message):
        parse(json.dumps(answer(**broken)))


def test_a_bad_finding_is_named_by_its_index() -> None:
    data = answer()
    data["findings"][1]["priority"] = 9
    with pytest.raises(ReviewFormatError, match=r"findings\[1\]\.priority"):
        parse(json.dumps(data))
    data["findings"][1]["priority"] = "P1"
    assert parse(json.dumps(data)).findings[0]["priority"] == 1


def test_prose_and_empty_answers_are_errors() -> None:
    with pytest.raises(ReviewFormatError, match="no JSON object"):
        parse("The patch looks fine to me.")
    with pytest.raises(ReviewFormatError, match="empty"):
        parse("  ")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/workspace/a/b.py", "a/b.py"),
        ("/data/worktrees/t-1/a/b.py", "a/b.py"),
        ("a/./b.py", "a/b.py"),
        ("/workspace/../etc/passwd", ""),
        ("../outside.py", ""),
        ("/etc/passwd", ""),
        ("/workspacefoo/x.py", ""),
    ],
)
def test_only_paths_inside_the_checkout_become_repository_paths(path: str, expected: str) -> None:
    assert repository_path(path, ["/workspace", "/data/worktrees/t-1"]) == expected


def test_findings_are_capped_in_size() -> None:
    data = answer()
    data["findings"][0]["body"] = "x" * 100_000
    review = parse(json.dumps(data))
    assert max(len(f["body"]) for f in review.findings) <= 8_000


def test_failed_review_item_keeps_the_raw_text_and_formats_for_people() -> None:
    item = review_item(
        "r1", {"type": "uncommitted", "label": "uncommitted changes"}, None, error="bad", raw_text="prose"
    )
    assert item["status"] == "failed" and item["raw_text"] == "prose"
    assert "could not be read: bad" in format_review(item)
    good = review_item("r2", {"type": "uncommitted", "label": "x"}, parse(json.dumps(answer())))
    text = format_review(good)
    assert text.startswith("Verdict: patch is incorrect")
    assert text.index("[P0]") < text.index("[P2]") and "src/auth.py:28-30" in text


def test_review_requests_name_the_target() -> None:
    assert "staged, unstaged, and untracked" in review_request({"type": "uncommitted"})
    base = review_request({"type": "base", "base": "main", "base_sha": "abc123"}, "check the SQL")
    assert "'main'" in base and "git diff abc123" in base and "check the SQL" in base
    commit = review_request({"type": "commit", "head_sha": "def456", "commit_title": "Fix it"})
    assert "def456" in commit and '"Fix it"' in commit
    task = review_request({"type": "task", "task_id": "t-9", "label": "task t-9: Add a cache"})
    assert "task t-9: Add a cache" in task and "git status" in task


def test_review_guidelines_are_taken_from_agents_md_sections() -> None:
    docs = (
        "## AGENTS.md (in the repository)\n\n# Build\nrun make\n\n"
        "## Review guidelines\n- Flag any print() left in\n### Detail\nstill inside\n"
        "## Style\nnot for reviews\n\n# Code Review Rules:\nNo TODOs.\n"
    )
    text = review_guidelines(docs)
    assert "Flag any print()" in text and "still inside" in text and "No TODOs." in text
    assert "run make" not in text and "not for reviews" not in text


def test_reviewer_instructions_hold_the_format_and_only_the_guidelines() -> None:
    docs = ProjectDocs(text="# Review guidelines\nCheck migrations.\n\n# Other\nSecret sauce.")
    text = build_instructions(docs=docs, workdir="/workspace", mode="read-only", kind="review")
    assert "overall_correctness" in text and "Check migrations." in text and "Secret sauce." not in text
    assert "apply_patch format" not in text
    ask = build_instructions(docs=docs, workdir="/workspace", mode="read-only", kind="ask")
    assert "# Ask mode" in ask and "Secret sauce." in ask


def test_schema_is_strict_everywhere() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict) and node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert sorted(node["required"]) == sorted(node["properties"])
        if isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(REVIEW_SCHEMA)
