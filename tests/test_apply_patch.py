"""The Codex patch format: parsing, matching and applying (scenarios ported from openai/codex)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_tui.tools.apply_patch import (
    AddFile,
    DeleteFile,
    PatchParseError,
    PatchResult,
    UpdateChunk,
    UpdateFile,
    apply_patch,
    parse_patch,
    seek_sequence,
)


def write_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")


def read_tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(root).as_posix()] = path.read_bytes().decode("utf-8", "surrogateescape")
    return out


def patch(body: str) -> str:
    return f"*** Begin Patch\n{body}\n*** End Patch\n"


def apply(root: Path, files: dict[str, str | bytes], text: str) -> tuple[PatchResult, dict[str, str]]:
    write_tree(root, files)
    result = apply_patch(text, root)
    return result, read_tree(root)


# --- scenarios ---------------------------------------------------------------------------------


def test_add_file_creates_it_with_a_trailing_newline(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {}, patch("*** Add File: bar.md\n+This is a new file"))
    assert result.success
    assert result.output == "Success. Updated the following files:\nA bar.md\n"
    assert tree == {"bar.md": "This is a new file\n"}
    assert [c.to_dict() for c in result.changes] == [{"path": "bar.md", "kind": "add"}]
    assert (result.added, result.removed) == (1, 0)


def test_multiple_operations_are_listed_added_modified_deleted(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"delete.txt": "obsolete\n", "modify.txt": "line1\nline2\n"}
    text = patch(
        "*** Add File: nested/new.txt\n+created\n"
        "*** Delete File: delete.txt\n"
        "*** Update File: modify.txt\n@@\n-line2\n+changed"
    )
    result, tree = apply(tmp_path, files, text)
    assert result.output == (
        "Success. Updated the following files:\nA nested/new.txt\nM modify.txt\nD delete.txt\n"
    )
    assert tree == {"modify.txt": "line1\nchanged\n", "nested/new.txt": "created\n"}
    assert [c.kind for c in result.changes] == ["add", "delete", "update"]


def test_multiple_chunks_update_one_file(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"multi.txt": "line1\nline2\nline3\nline4\n"}
    text = patch("*** Update File: multi.txt\n@@\n-line2\n+changed2\n@@\n-line4\n+changed4")
    result, tree = apply(tmp_path, files, text)
    assert result.success
    assert tree == {"multi.txt": "line1\nchanged2\nline3\nchanged4\n"}
    assert result.output.count("M multi.txt") == 1


def test_interleaved_chunks_with_end_of_file_append(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.txt": "a\nb\nc\nd\ne\nf\n"}
    text = patch("*** Update File: f.txt\n@@\n a\n-b\n+B\n@@\n c\n d\n-e\n+E\n@@\n f\n+g\n*** End of File")
    result, tree = apply(tmp_path, files, text)
    assert result.success
    assert tree == {"f.txt": "a\nB\nc\nd\nE\nf\ng\n"}
    assert (result.added, result.removed) == (3, 2)


def test_move_to_new_directory_removes_the_source(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"old/name.txt": "old content\n", "old/other.txt": "unrelated\n"}
    text = patch(
        "*** Update File: old/name.txt\n*** Move to: renamed/dir/name.txt\n@@\n-old content\n+new content"
    )
    result, tree = apply(tmp_path, files, text)
    assert result.output == "Success. Updated the following files:\nM renamed/dir/name.txt\n"
    assert tree == {"old/other.txt": "unrelated\n", "renamed/dir/name.txt": "new content\n"}
    assert result.changes[0].to_dict() == {
        "path": "old/name.txt",
        "kind": "update",
        "move_path": "renamed/dir/name.txt",
    }


def test_move_onto_an_existing_file_overwrites_it(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "old/name.txt": "from\n",
        "old/other.txt": "unrelated\n",
        "renamed/dir/name.txt": "existing\n",
    }
    text = patch("*** Update File: old/name.txt\n*** Move to: renamed/dir/name.txt\n@@\n-from\n+new")
    result, tree = apply(tmp_path, files, text)
    assert result.success
    assert tree == {"old/other.txt": "unrelated\n", "renamed/dir/name.txt": "new\n"}


def test_add_overwrites_an_existing_file(tmp_path: Path) -> None:
    result, tree = apply(
        tmp_path, {"duplicate.txt": "old content\n"}, patch("*** Add File: duplicate.txt\n+new content")
    )
    assert result.success
    assert tree == {"duplicate.txt": "new content\n"}


def test_empty_patch_is_rejected(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"foo.txt": "stable\n"}, "*** Begin Patch\n*** End Patch\n")
    assert not result.success
    assert result.output == "No files were modified."
    assert tree == {"foo.txt": "stable\n"}


def test_missing_context_is_rejected_with_the_expected_lines(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"modify.txt": "line1\nline2\n"}
    result, tree = apply(tmp_path, files, patch("*** Update File: modify.txt\n@@\n-missing\n+changed"))
    assert not result.success
    assert result.output == "Failed to find expected lines in modify.txt:\nmissing"
    assert tree == {"modify.txt": "line1\nline2\n"}
    assert result.changes == []


def test_missing_change_context_line_is_reported(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.py": "def a():\n    pass\n"}
    result, _ = apply(tmp_path, files, patch("*** Update File: f.py\n@@ def nope():\n-    pass\n+    x"))
    assert result.output == "Failed to find context 'def nope():' in f.py"


def test_deleting_a_missing_file_fails(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"foo.txt": "stable\n"}, patch("*** Delete File: missing.txt"))
    assert not result.success
    assert result.output.startswith("Failed to delete file missing.txt: ")
    assert tree == {"foo.txt": "stable\n"}


def test_empty_update_hunk_is_an_invalid_patch(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"foo.txt": "stable\n"}, patch("*** Update File: foo.txt"))
    assert result.output == "Invalid patch hunk on line 2: Update file hunk for path 'foo.txt' is empty"
    assert tree == {"foo.txt": "stable\n"}


def test_updating_a_missing_file_fails(tmp_path: Path) -> None:
    result, _ = apply(tmp_path, {}, patch("*** Update File: missing.txt\n@@\n-old\n+new"))
    assert not result.success
    assert result.output.startswith("Failed to read file to update missing.txt: No such file")


def test_deleting_a_directory_fails(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"dir/foo.txt": "stable\n"}, patch("*** Delete File: dir"))
    assert not result.success
    assert result.output.startswith("Failed to delete file dir: ")
    assert tree == {"dir/foo.txt": "stable\n"}


def test_invalid_hunk_header_is_rejected(tmp_path: Path) -> None:
    result, _ = apply(tmp_path, {"foo.txt": "stable\n"}, patch("*** Frobnicate File: foo"))
    assert result.output == (
        "Invalid patch hunk on line 2: '*** Frobnicate File: foo' is not a valid hunk header. "
        "Valid hunk headers: '*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'"
    )


def test_update_adds_a_missing_trailing_newline(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"no_newline.txt": "no newline at end"}
    text = patch("*** Update File: no_newline.txt\n@@\n-no newline at end\n+first line\n+second line")
    result, tree = apply(tmp_path, files, text)
    assert result.success
    assert tree == {"no_newline.txt": "first line\nsecond line\n"}


def test_failure_after_partial_success_leaves_and_reports_earlier_changes(tmp_path: Path) -> None:
    text = patch("*** Add File: created.txt\n+hello\n*** Update File: missing.txt\n@@\n-old\n+new")
    result, tree = apply(tmp_path, {}, text)
    assert not result.success
    assert tree == {"created.txt": "hello\n"}
    assert result.output.startswith("Failed to read file to update missing.txt")
    assert "already changed" in result.output
    assert result.output.endswith("\nA created.txt")
    assert [c.to_dict() for c in result.changes] == [{"path": "created.txt", "kind": "add"}]
    assert [c.path for c in result.planned] == ["created.txt", "missing.txt"]


def test_pure_addition_chunk_appends_at_end_of_file(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"input.txt": "line1\nline2\n"}
    text = patch("*** Update File: input.txt\n@@\n+added line 1\n+added line 2")
    result, tree = apply(tmp_path, files, text)
    assert tree == {"input.txt": "line1\nline2\nadded line 1\nadded line 2\n"}
    assert (result.added, result.removed) == (2, 0)


def test_pure_addition_chunk_followed_by_a_removal(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"panic.txt": "line1\nline2\nline3\n"}
    text = patch(
        "*** Update File: panic.txt\n@@\n+after-context\n+second-line\n@@\n line1\n-line2\n-line3\n"
        "+line2-replacement"
    )
    _, tree = apply(tmp_path, files, text)
    assert tree == {"panic.txt": "line1\nline2-replacement\nafter-context\nsecond-line\n"}


def test_whitespace_around_markers_is_tolerated(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"file.txt": "one\n"}
    text = " *** Begin Patch \n  *** Update File: file.txt  \n@@\n-one\n+two\n *** End Patch \n"
    result, tree = apply(tmp_path, files, text)
    assert result.success, result.output
    assert tree == {"file.txt": "two\n"}


def test_unicode_content_is_updated(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"foo.txt": "line1\nnaïve café\nline3\n"}
    text = patch("*** Update File: foo.txt\n@@\n line1\n-naïve café\n+naïve café ✅")
    _, tree = apply(tmp_path, files, text)
    assert tree == {"foo.txt": "line1\nnaïve café ✅\nline3\n"}


def test_delete_file_removes_only_that_file(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"keep.txt": "keep\n", "obsolete.txt": "a\nb\n"}
    result, tree = apply(tmp_path, files, patch("*** Delete File: obsolete.txt"))
    assert result.output == "Success. Updated the following files:\nD obsolete.txt\n"
    assert tree == {"keep.txt": "keep\n"}
    assert (result.added, result.removed) == (0, 2)


def test_update_with_only_deletions(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"lines.txt": "line1\nline2\nline3\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: lines.txt\n@@\n line1\n-line2\n line3"))
    assert tree == {"lines.txt": "line1\nline3\n"}


def test_end_of_file_marker_anchors_the_chunk_at_the_end(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"tail.txt": "end\nmiddle\nend\n"}
    text = patch("*** Update File: tail.txt\n@@\n-end\n+END\n*** End of File")
    _, tree = apply(tmp_path, files, text)
    assert tree == {"tail.txt": "end\nmiddle\nEND\n"}


def test_end_of_file_chunk_that_is_not_at_the_end_fails(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"tail.txt": "first\nlast\n"}
    text = patch("*** Update File: tail.txt\n@@\n-first\n+FIRST\n*** End of File")
    result, tree = apply(tmp_path, files, text)
    assert not result.success
    assert tree == {"tail.txt": "first\nlast\n"}


def test_change_context_line_selects_the_right_occurrence(tmp_path: Path) -> None:
    source = (
        "class A:\n    def run(self):\n        return 1\n\nclass B:\n    def run(self):\n        return 1\n"
    )
    text = patch(
        "*** Update File: m.py\n@@ class B:\n     def run(self):\n-        return 1\n+        return 2"
    )
    _, tree = apply(tmp_path, {"m.py": source}, text)
    assert tree["m.py"] == source.replace("return 1\n", "return 2\n").replace(
        "return 2\n\nclass B", "return 1\n\nclass B"
    )
    assert tree["m.py"].count("return 1") == 1
    assert tree["m.py"].endswith("return 2\n")


def test_first_chunk_may_omit_the_at_at_line(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"file2.py": "import foo\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: file2.py\n import foo\n+bar"))
    assert tree == {"file2.py": "import foo\nbar\n"}


def test_blank_context_line_without_its_leading_space_is_accepted(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.py": "a = 1\n\nb = 2\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: f.py\n@@\n a = 1\n\n-b = 2\n+b = 3"))
    assert tree == {"f.py": "a = 1\n\nb = 3\n"}


def test_crlf_files_keep_their_line_endings(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"crlf.txt": b"a\r\nb\r\nc\r\n"}
    _, tree = apply(
        tmp_path, files, patch("*** Update File: crlf.txt\n@@\n a\n-b\n+B\n@@\n c\n+d\n*** End of File")
    )
    assert tree == {"crlf.txt": "a\r\nB\r\nc\r\nd\r\n"}


def test_bytes_that_are_not_utf8_survive_an_update(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"latin.txt": b"caf\xe9\nold\n"}
    _, _ = apply(tmp_path, files, patch("*** Update File: latin.txt\n@@\n-old\n+new"))
    assert (tmp_path / "latin.txt").read_bytes() == b"caf\xe9\nnew\n"


# --- the four matching passes ------------------------------------------------------------------


def test_match_pass_exact(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.txt": "  x\nx\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: f.txt\n@@\n-x\n+y"))
    assert tree == {"f.txt": "  x\ny\n"}


def test_match_pass_ignores_trailing_whitespace(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.txt": "foo   \nbar\t\t\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: f.txt\n@@\n foo\n-bar\n+baz"))
    assert tree == {"f.txt": "foo   \nbaz\n"}


def test_match_pass_ignores_surrounding_whitespace(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"f.txt": "    foo   \n   bar\t\n"}
    _, tree = apply(tmp_path, files, patch("*** Update File: f.txt\n@@\n foo\n-bar\n+    baz"))
    assert tree == {"f.txt": "    foo   \n    baz\n"}


def test_match_pass_normalises_unicode_punctuation(tmp_path: Path) -> None:
    original = "import asyncio  # local import \u2013 avoids top\u2011level dep\n"
    original += "say(\u201chi\u201d)\u00a0# it\u2019s\n"
    text = patch(
        "*** Update File: unicode.py\n@@\n-import asyncio  # local import - avoids top-level dep\n"
        '-say("hi") # it\'s\n+import asyncio  # HELLO'
    )
    result, tree = apply(tmp_path, {"unicode.py": original}, text)
    assert result.output == "Success. Updated the following files:\nM unicode.py\n"
    assert tree == {"unicode.py": "import asyncio  # HELLO\n"}


def test_seek_sequence_edge_cases() -> None:
    lines = ["foo", "bar", "baz"]
    assert seek_sequence(lines, ["bar", "baz"], 0, False) == 1
    assert seek_sequence(lines, [], 2, False) == 2
    assert seek_sequence(["just one"], ["too", "many", "lines"], 0, False) is None
    assert seek_sequence(lines, ["foo"], 1, False) is None
    assert seek_sequence(["x", "y", "x"], ["x"], 0, True) == 2


# --- parsing -----------------------------------------------------------------------------------


def test_parse_patch_builds_hunks() -> None:
    hunks = parse_patch(
        "*** Begin Patch\n*** Add File: path/add.py\n+abc\n+def\n*** Delete File: path/delete.py\n"
        "*** Update File: path/update.py\n*** Move to: path/update2.py\n@@ def f():\n-    pass\n"
        "+    return 123\n*** End Patch"
    )
    assert hunks == [
        AddFile("path/add.py", "abc\ndef\n"),
        DeleteFile("path/delete.py"),
        UpdateFile(
            "path/update.py",
            "path/update2.py",
            [UpdateChunk("def f():", ["    pass"], ["    return 123"], False)],
        ),
    ]


@pytest.mark.parametrize("opening", ["<<EOF", "<<'EOF'", '<<"EOF"'])
def test_heredoc_wrapped_patch_is_accepted(tmp_path: Path, opening: str) -> None:
    text = f"{opening}\n*** Begin Patch\n*** Add File: h.txt\n+hi\n*** End Patch\nEOF\n"
    result, tree = apply(tmp_path, {}, text)
    assert result.success, result.output
    assert tree == {"h.txt": "hi\n"}


def test_heredoc_with_mismatched_quotes_is_rejected() -> None:
    with pytest.raises(PatchParseError, match=r"first line of the patch must be '\*\*\* Begin Patch'"):
        parse_patch("<<\"EOF'\n*** Begin Patch\n*** Add File: a\n+x\n*** End Patch\nEOF\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bad", "Invalid patch: The first line of the patch must be '*** Begin Patch'"),
        ("", "Invalid patch: The first line of the patch must be '*** Begin Patch'"),
        ("*** Begin Patch\nbad", "Invalid patch: The last line of the patch must be '*** End Patch'"),
        (
            "<<EOF\n*** Begin Patch\n*** Update File: file2.py\nEOF\n",
            "Invalid patch: The last line of the patch must be '*** End Patch'",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n@@\nbad\n*** End Patch",
            "Invalid patch hunk on line 4: Unexpected line found in update hunk: 'bad'. Every line should "
            "start with ' ' (context line), '+' (added line), or '-' (removed line)",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n@@\n*** End of File\n*** End Patch",
            "Invalid patch hunk on line 4: Update hunk does not contain any lines",
        ),
    ],
)
def test_invalid_patches_give_codex_messages(text: str, message: str) -> None:
    with pytest.raises(PatchParseError) as error:
        parse_patch(text)
    assert str(error.value) == message


def test_invalid_patch_changes_nothing(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"a.txt": "x\n"}, "*** Begin Patch\n*** Add File: b.txt\n+y\n")
    assert not result.success
    assert result.output.startswith("Invalid patch:")
    assert tree == {"a.txt": "x\n"}


# --- paths -------------------------------------------------------------------------------------


def test_absolute_path_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    target = tmp_path / "outside.txt"
    result, tree = apply(root, {}, patch(f"*** Add File: {target}\n+pwned"))
    assert not result.success
    assert "absolute paths are not allowed" in result.output
    assert not target.exists()
    assert tree == {}


def test_dotdot_escape_is_refused_and_nothing_is_applied(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    text = patch("*** Add File: inside.txt\n+ok\n*** Add File: ../outside.txt\n+pwned")
    result, tree = apply(root, {}, text)
    assert not result.success
    assert "outside the workspace" in result.output
    assert not (tmp_path / "outside.txt").exists()
    assert tree == {}


def test_dotdot_that_stays_inside_is_allowed(tmp_path: Path) -> None:
    result, tree = apply(tmp_path, {"a/x.txt": "x\n"}, patch("*** Add File: a/../b.txt\n+b"))
    assert result.success
    assert tree == {"a/x.txt": "x\n", "b.txt": "b\n"}


def test_symlinked_directory_pointing_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    result, _ = apply(root, {}, patch("*** Add File: link/evil.txt\n+pwned"))
    assert not result.success
    assert "link/evil.txt" in result.output and "links in the workspace are not followed" in result.output
    assert list(outside.iterdir()) == []


def test_symlinked_file_pointing_outside_is_never_written_through(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    (root / "s.txt").symlink_to(secret)
    write_tree(root, {"a.txt": "a\n"})

    update = apply_patch(patch("*** Update File: s.txt\n@@\n-secret\n+pwned"), root)
    assert not update.success and "links in the workspace are not followed" in update.output
    moved = apply_patch(patch("*** Update File: a.txt\n*** Move to: s.txt\n@@\n-a\n+pwned"), root)
    assert moved.success

    assert secret.read_text() == "secret\n"
    assert not (root / "s.txt").is_symlink() and (root / "s.txt").read_text() == "pwned\n"


def test_deleting_a_symlink_inside_removes_the_link_not_its_target(tmp_path: Path) -> None:
    write_tree(tmp_path, {"target.txt": "keep\n"})
    os.symlink("target.txt", tmp_path / "alias.txt")
    result = apply_patch(patch("*** Delete File: alias.txt"), tmp_path)
    assert result.success
    assert not (tmp_path / "alias.txt").is_symlink()
    assert (tmp_path / "target.txt").read_text() == "keep\n"


def test_relative_paths_resolve_from_cwd_inside_root(tmp_path: Path) -> None:
    write_tree(tmp_path, {"sub/old.txt": "before\n"})
    text = patch("*** Update File: old.txt\n*** Move to: renamed.txt\n@@\n-before\n+after")
    result = apply_patch(text, tmp_path, cwd=tmp_path / "sub")
    assert result.success, result.output
    assert read_tree(tmp_path) == {"sub/renamed.txt": "after\n"}
