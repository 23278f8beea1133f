"""The diff parser and layout, on diffs produced by real git in temporary repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.tui.widgets.diff_model import (
    NO_NEWLINE,
    Hunk,
    layout_patch,
    pair_split,
    parse_patch,
    unquote_path,
)
from tests.conftest import make_repo, run_git


def staged_diff(repo: Path) -> str:
    """`git diff --cached -M` after staging everything."""
    run_git(repo, "add", "-A")
    return run_git(repo, "diff", "--cached", "-M")


@pytest.fixture
def changed_repo(tmp_path: Path) -> Path:
    """A repository with one change of every kind staged."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "calc.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
            "old_name.txt": "".join(f"line {n}\n" for n in range(1, 21)),
            "gone.txt": "bye\nsee you\n",
            "tail.txt": "no newline at the end",
            "logo.bin": "\x00\x01\x02binary",
        },
    )
    (repo / "calc.py").write_text(
        "def add(a, b):\n    return a + b  # checked\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
        "def mul(a, b):\n    return a * b\n"
    )
    (repo / "gone.txt").unlink()
    (repo / "old_name.txt").rename(repo / "new_name.txt")
    text = (repo / "new_name.txt").read_text().replace("line 10\n", "line ten\n")
    (repo / "new_name.txt").write_text(text)
    (repo / "tail.txt").write_text("still no newline, but changed")
    (repo / "logo.bin").write_bytes(b"\x00\x03\x04other binary")
    (repo / "added.md").write_text("# Notes\n\nfirst\n")
    return repo


def test_git_diff_files_have_status_paths_and_counts(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    summary = {f.path: (f.status, f.added, f.removed) for f in patch.files}
    assert summary == {
        "added.md": ("added", 3, 0),
        "calc.py": ("modified", 5, 1),
        "gone.txt": ("deleted", 0, 2),
        "logo.bin": ("modified", 0, 0),
        "new_name.txt": ("renamed", 1, 1),
        "tail.txt": ("modified", 1, 1),
    }
    assert patch.errors == []
    assert (patch.added, patch.removed) == (10, 5)


def test_renamed_file_keeps_old_and_new_path(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    renamed = patch.files[patch.index_of("new_name.txt") or 0]
    assert (renamed.old_path, renamed.new_path) == ("old_name.txt", "new_name.txt")
    assert renamed.display_path == "old_name.txt → new_name.txt"
    assert renamed.similarity is not None and renamed.similarity >= 50
    assert patch.index_of("old_name.txt") == patch.index_of("new_name.txt")


def test_binary_file_is_flagged_without_hunks(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    binary = patch.files[patch.index_of("logo.bin") or 0]
    assert binary.binary and binary.hunks == []
    rows = layout_patch(patch).rows
    assert any(row.kind == "note" and row.text == "Binary file not shown" for row in rows)


def test_added_and_deleted_files_have_one_missing_side(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    added = patch.files[patch.index_of("added.md") or 0]
    deleted = patch.files[patch.index_of("gone.txt") or 0]
    assert (added.old_path, added.new_path) == (None, "added.md")
    assert (deleted.old_path, deleted.new_path) == ("gone.txt", None)
    assert [line.new_no for line in added.hunks[0].lines] == [1, 2, 3]
    assert [line.old_no for line in deleted.hunks[0].lines] == [1, 2]


def test_multiple_hunks_carry_line_numbers_on_both_sides(tmp_path: Path) -> None:
    body = "".join(f"value_{n} = {n}\n" for n in range(1, 41))
    repo = make_repo(tmp_path / "repo", {"values.py": body})
    (repo / "values.py").write_text(
        body.replace("value_3 = 3\n", "value_3 = 'three'\n").replace(
            "value_35 = 35\n", "value_35 = 35\nvalue_35b = 35.5\n"
        )
    )
    hunks = parse_patch(staged_diff(repo)).files[0].hunks
    assert len(hunks) == 2
    assert (hunks[1].old_start, hunks[1].new_start) == (33, 33)
    removed = next(line for line in hunks[0].lines if line.kind == "removed")
    added = [line for line in hunks[1].lines if line.kind == "added"]
    assert (removed.text, removed.old_no, removed.new_no) == ("value_3 = 3", 3, None)
    assert [(line.text, line.new_no) for line in added] == [("value_35b = 35.5", 36)]
    assert hunks[1].header.startswith("@@ -33,6 +33,7 @@")


def test_no_newline_marker_is_attached_to_its_line(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    tail = patch.files[patch.index_of("tail.txt") or 0]
    lines = tail.hunks[0].lines
    assert [(line.kind, line.no_newline) for line in lines] == [("removed", True), ("added", True)]
    rows = [row for row in layout_patch(patch).rows if row.file == patch.index_of("tail.txt")]
    assert [row.text for row in rows if row.kind == "note"] == [NO_NEWLINE, NO_NEWLINE]


def test_quoted_and_spaced_paths_are_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"café menu.txt": "soup\n", "two words.txt": "a\n"})
    (repo / "café menu.txt").write_text("salad\n")
    (repo / "two words.txt").write_text("b\n")
    paths = [f.path for f in parse_patch(staged_diff(repo)).files]
    assert paths == ["café menu.txt", "two words.txt"]
    assert unquote_path('"caf\\303\\251 \\"x\\"\\tz"') == 'café "x"\tz'


def test_mode_change_and_empty_file_get_notes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"run.sh": "echo hi\n"})
    (repo / "run.sh").chmod(0o755)
    (repo / "empty.txt").write_text("")
    patch = parse_patch(staged_diff(repo))
    notes = {patch.files[row.file].path: row.text for row in layout_patch(patch).rows if row.kind == "note"}
    assert notes == {"empty.txt": "empty file", "run.sh": "mode 100644 → 100755"}


def test_plain_unified_diff_without_git_headers() -> None:
    text = (
        "--- old/a.txt\t2024-01-01 10:00:00\n+++ new/a.txt\t2024-01-02 10:00:00\n"
        "@@ -1,2 +1,2 @@\n-x\n+y\n z\n"
        "--- b.txt\n+++ b.txt\n@@ -1 +1 @@\n-- dash line removed\n+-- dash line added\n"
    )
    patch = parse_patch(text)
    assert [(f.path, f.added, f.removed) for f in patch.files] == [("new/a.txt", 1, 1), ("b.txt", 1, 1)]
    assert patch.files[1].hunks[0].lines[0].text == "- dash line removed"


def test_malformed_input_becomes_errors_not_exceptions() -> None:
    text = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-a\n+b\n@@ garbage @@\n"
    patch = parse_patch(text)
    assert len(patch.files) == 1
    assert len(patch.errors) == 2
    assert "ends early" in patch.errors[0] and "not a hunk header" in patch.errors[1]
    assert parse_patch("").files == [] and parse_patch("random words\n").files == []


def test_crlf_lines_are_read_without_carriage_returns() -> None:
    patch = parse_patch("--- a/w.txt\r\n+++ b/w.txt\r\n@@ -1 +1 @@\r\n-old\r\n+new\r\n")
    assert [line.text for line in patch.files[0].hunks[0].lines] == ["old", "new"]


def test_split_pairs_removals_with_the_additions_that_follow() -> None:
    text = "--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n ctx\n-r1\n-r2\n-r3\n+a1\n+a2\n ctx2\n+tail\n"
    hunk: Hunk = parse_patch(text).files[0].hunks[0]
    pairs = [
        (row.left.text if row.left else None, row.right.text if row.right else None)
        for row in pair_split(hunk)
    ]
    assert pairs == [
        ("ctx", "ctx"),
        ("r1", "a1"),
        ("r2", "a2"),
        ("r3", None),
        ("ctx2", "ctx2"),
        (None, "tail"),
    ]


def test_layout_indexes_every_file_and_hunk_row(changed_repo: Path) -> None:
    patch = parse_patch(staged_diff(changed_repo))
    for split in (False, True):
        layout = layout_patch(patch, split=split)
        assert [layout.rows[row].kind for row in layout.file_rows] == ["file"] * len(patch.files)
        assert all(layout.rows[row].kind == "hunk" for row in layout.hunk_rows)
        assert len(layout.hunk_rows) == sum(len(f.hunks) for f in patch.files)
        for ordinal, row in enumerate(layout.hunk_rows):
            file_index, hunk_index = layout.hunk_refs[ordinal]
            assert layout.rows[row].text == patch.files[file_index].hunks[hunk_index].header
    unified = layout_patch(patch)
    line_rows = [row for row in unified.rows if row.kind == "line"]
    assert len(line_rows) == sum(len(h.lines) for f in patch.files for h in f.hunks)


def test_side_indexes_point_into_each_hunk_side() -> None:
    text = "--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n a = 1\n-b = 2\n+b = 3\n c = 4\n"
    hunk = parse_patch(text).files[0].hunks[0]
    for line in hunk.lines:
        side = hunk.side_texts("old" if line.kind == "removed" else "new")
        assert side[line.side_index] == line.text
