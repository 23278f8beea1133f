"""The Codex patch format: parse it and apply it to files under one root folder, nowhere else.

A patch looks like::

    *** Begin Patch
    *** Add File: hello.txt
    +Hello world
    *** Update File: src/app.py
    *** Move to: src/main.py
    @@ def greet():
    -print("Hi")
    +print("Hello, world!")
    *** Delete File: obsolete.txt
    *** End Patch

Semantics follow Codex's ``apply-patch`` crate: lenient markers (surrounding whitespace, a heredoc
wrapper), chunks located by content (exact, then ignoring trailing whitespace, then trimmed, then
with Unicode punctuation normalised; never by line number), ``@@ context`` lines to narrow the
search, ``*** End of File`` to anchor at the end, files applied one after the other. Every path is
relative to the root and checked without looking at the disk; files are then read and written through
:mod:`codex_tui.boundary.safe_fs` (no link followed, regular files only, atomic replacement), so a
patch never touches a file outside the root, even when the sandbox swaps a folder for a link.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath, split_relative

BEGIN_PATCH: Final = "*** Begin Patch"
END_PATCH: Final = "*** End Patch"
ADD_FILE: Final = "*** Add File: "
DELETE_FILE: Final = "*** Delete File: "
UPDATE_FILE: Final = "*** Update File: "
MOVE_TO: Final = "*** Move to: "
END_OF_FILE: Final = "*** End of File"
CONTEXT_MARKER: Final = "@@ "
EMPTY_CONTEXT_MARKER: Final = "@@"
HEREDOC_STARTS: Final = ("<<EOF", "<<'EOF'", '<<"EOF"')
MAX_PATCHED_FILE_BYTES: Final = 64 * 1024 * 1024

ChangeKind = Literal["add", "delete", "update"]


class PatchParseError(Exception):
    """The patch text is not a valid patch; the message is what the model should read."""


class PatchPathError(Exception):
    """A path in the patch is absolute, empty or resolves outside the root."""


@dataclass(slots=True)
class UpdateChunk:
    """One `@@` section of an Update File: lines to find and what replaces them."""

    change_context: str | None = None
    old_lines: list[str] = field(default_factory=list)
    new_lines: list[str] = field(default_factory=list)
    is_end_of_file: bool = False


@dataclass(slots=True)
class AddFile:
    """Create (or overwrite) a file with the given contents."""

    path: str
    contents: str


@dataclass(slots=True)
class DeleteFile:
    """Remove an existing file."""

    path: str


@dataclass(slots=True)
class UpdateFile:
    """Edit a file in place, optionally moving it to `move_path`."""

    path: str
    move_path: str | None
    chunks: list[UpdateChunk]


Hunk = AddFile | DeleteFile | UpdateFile


@dataclass(slots=True)
class FileChange:
    """One file the patch touched (or would touch), with its +/- line counts."""

    path: str
    kind: ChangeKind
    move_path: str | None = None
    added: int = 0
    removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The `changes[]` entry of a file_change item."""
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.move_path is not None:
            out["move_path"] = self.move_path
        return out


@dataclass(slots=True)
class PatchResult:
    """The outcome of applying a patch: text for the model, and structured changes for the UI."""

    success: bool
    output: str
    changes: list[FileChange] = field(default_factory=list)
    """Files changed on disk — on failure, the ones changed before the error."""
    planned: list[FileChange] = field(default_factory=list)
    """Every file the patch names, in order (empty when the patch could not be parsed)."""

    @property
    def added(self) -> int:
        """Lines added over all applied changes."""
        return sum(change.added for change in self.changes)

    @property
    def removed(self) -> int:
        """Lines removed over all applied changes."""
        return sum(change.removed for change in self.changes)


# --- parsing -----------------------------------------------------------------------------------


def parse_patch(text: str) -> list[Hunk]:
    """Parse patch text into hunks; raises PatchParseError with Codex's wording on bad input."""
    lines = _split_lines(text.strip())
    body = _patch_body(lines)
    hunks: list[Hunk] = []
    index = 0
    line_number = 2
    while index < len(body):
        hunk, used = _parse_hunk(body[index:], line_number)
        hunks.append(hunk)
        index += used
        line_number += used
    return hunks


def _split_lines(text: str) -> list[str]:
    """Split like Rust's `str::lines`: on \\n, dropping one trailing \\r per line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _patch_body(lines: list[str]) -> list[str]:
    """The lines between the Begin/End markers, unwrapping a `<<'EOF'` heredoc if there is one."""
    try:
        return _strict_body(lines)
    except PatchParseError as error:
        if len(lines) >= 4 and lines[0] in HEREDOC_STARTS and lines[-1].endswith("EOF"):
            return _strict_body(lines[1:-1])
        raise error from None


def _strict_body(lines: list[str]) -> list[str]:
    first = lines[0].strip() if lines else None
    last = lines[-1].strip() if lines else None
    if first != BEGIN_PATCH:
        raise PatchParseError("Invalid patch: The first line of the patch must be '*** Begin Patch'")
    if last != END_PATCH or len(lines) < 2:
        raise PatchParseError("Invalid patch: The last line of the patch must be '*** End Patch'")
    return lines[1:-1]


def _hunk_error(line_number: int, message: str) -> PatchParseError:
    return PatchParseError(f"Invalid patch hunk on line {line_number}: {message}")


def _parse_hunk(lines: list[str], line_number: int) -> tuple[Hunk, int]:
    """Parse one file operation from the start of `lines`; returns it and the lines it used."""
    first = lines[0].strip()
    if first.startswith(ADD_FILE):
        contents: list[str] = []
        for line in lines[1:]:
            if not line.startswith("+"):
                break
            contents.append(line[1:] + "\n")
        return AddFile(first[len(ADD_FILE) :], "".join(contents)), 1 + len(contents)
    if first.startswith(DELETE_FILE):
        return DeleteFile(first[len(DELETE_FILE) :]), 1
    if first.startswith(UPDATE_FILE):
        return _parse_update(lines, first[len(UPDATE_FILE) :], line_number)
    raise _hunk_error(
        line_number,
        f"'{first}' is not a valid hunk header. Valid hunk headers: '*** Add File: {{path}}', "
        "'*** Delete File: {path}', '*** Update File: {path}'",
    )


def _parse_update(lines: list[str], path: str, line_number: int) -> tuple[Hunk, int]:
    used = 1
    move_path: str | None = None
    if len(lines) > 1 and lines[1].startswith(MOVE_TO):
        move_path = lines[1][len(MOVE_TO) :]
        used += 1
    chunks: list[UpdateChunk] = []
    while used < len(lines):
        line = lines[used]
        if not line.strip():
            used += 1
            continue
        if line.startswith("*"):
            break
        chunk, chunk_used = _parse_chunk(lines[used:], line_number + used, not chunks)
        chunks.append(chunk)
        used += chunk_used
    if not chunks:
        raise _hunk_error(line_number, f"Update file hunk for path '{path}' is empty")
    return UpdateFile(path, move_path, chunks), used


def _parse_chunk(lines: list[str], line_number: int, allow_missing_context: bool) -> tuple[UpdateChunk, int]:
    """Parse one `@@` chunk; a first chunk may omit its `@@` line."""
    chunk = UpdateChunk()
    start = 1
    if lines[0] == EMPTY_CONTEXT_MARKER:
        pass
    elif lines[0].startswith(CONTEXT_MARKER):
        chunk.change_context = lines[0][len(CONTEXT_MARKER) :]
    elif allow_missing_context:
        start = 0
    else:
        raise _hunk_error(
            line_number, f"Expected update hunk to start with a @@ context marker, got: '{lines[0]}'"
        )
    if start >= len(lines):
        raise _hunk_error(line_number + 1, "Update hunk does not contain any lines")
    parsed = 0
    for line in lines[start:]:
        if line == END_OF_FILE:
            if parsed == 0:
                raise _hunk_error(line_number + 1, "Update hunk does not contain any lines")
            chunk.is_end_of_file = True
            parsed += 1
            break
        if not _add_chunk_line(chunk, line):
            if parsed == 0:
                raise _hunk_error(
                    line_number + 1,
                    f"Unexpected line found in update hunk: '{line}'. Every line should start with "
                    "' ' (context line), '+' (added line), or '-' (removed line)",
                )
            break
        parsed += 1
    return chunk, parsed + start


def _add_chunk_line(chunk: UpdateChunk, line: str) -> bool:
    """Record one diff line; False when the line is not part of this chunk."""
    if line == "":
        chunk.old_lines.append("")
        chunk.new_lines.append("")
    elif line[0] == " ":
        chunk.old_lines.append(line[1:])
        chunk.new_lines.append(line[1:])
    elif line[0] == "+":
        chunk.new_lines.append(line[1:])
    elif line[0] == "-":
        chunk.old_lines.append(line[1:])
    else:
        return False
    return True


# --- locating lines ----------------------------------------------------------------------------

_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
        ),
    }
)


def normalise_punctuation(line: str) -> str:
    """Trim, then map typographic dashes, quotes and odd spaces to their ASCII look-alikes."""
    return line.strip().translate(_PUNCTUATION)


_PASSES = (
    lambda s: s,
    str.rstrip,
    str.strip,
    normalise_punctuation,
)


def seek_sequence(lines: list[str], pattern: list[str], start: int, eof: bool) -> int | None:
    """Index where `pattern` occurs in `lines` at or after `start`, trying ever looser comparisons.

    With `eof` the pattern must sit at the very end of the file (as Codex's matcher does).
    """
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    first = len(lines) - len(pattern) if eof else start
    last = len(lines) - len(pattern)
    for key in _PASSES:
        wanted = [key(line) for line in pattern]
        keyed = [key(line) for line in lines]
        for index in range(first, last + 1):
            if keyed[index : index + len(pattern)] == wanted:
                return index
    return None


# --- paths -------------------------------------------------------------------------------------


def relative_in_root(root: Path, path: str, cwd: Path | None = None) -> str:
    """`path` (relative to `cwd`, default `root`) as a checked path relative to `root`.

    Purely lexical: nothing in the checkout is consulted, so a link the sandbox planted cannot
    redirect it; the file operations then walk the path without following links.
    """
    if not path.strip():
        raise PatchPathError("empty file path")
    if "\x00" in path:
        raise PatchPathError(f"invalid file path {path!r}")
    if posixpath.isabs(path) or path.startswith("~"):
        raise PatchPathError(f"{path}: absolute paths are not allowed; use a path relative to the workspace")
    base = ""
    if cwd is not None:
        base = os.path.relpath(os.path.realpath(cwd), os.path.realpath(root))
        if base == ".." or base.startswith("../"):
            raise PatchPathError(f"{path}: the working directory is outside the workspace")
    try:
        parts = split_relative(posixpath.join(base, path) if base != "." else path)
    except UnsafePath as error:
        if ".git" in str(error):
            raise PatchPathError(f"{path}: files under .git cannot be changed with apply_patch") from None
        raise PatchPathError(
            f"{path}: resolves outside the workspace; only files inside it can be changed"
        ) from None
    return "/".join(parts)


def to_relative(path: str, *, roots: tuple[str, ...]) -> str | None:
    """`path` made relative when it is absolute under one of `roots` (e.g. /workspace); else None."""
    if not posixpath.isabs(path):
        return path
    normal = posixpath.normpath(path)
    for root in roots:
        root_norm = posixpath.normpath(root)
        if normal == root_norm:
            return "."
        if normal.startswith(root_norm.rstrip("/") + "/"):
            return posixpath.relpath(normal, root_norm)
    return None


# --- applying ----------------------------------------------------------------------------------


class _ApplyError(Exception):
    """A hunk could not be applied; the message is Codex-style text for the model."""


def apply_patch(text: str, root: Path, cwd: Path | None = None) -> PatchResult:
    """Parse and apply a patch under `root` (relative paths resolve from `cwd`); never raises."""
    try:
        hunks = parse_patch(text)
    except PatchParseError as error:
        return PatchResult(False, str(error))
    planned = [_planned_change(hunk) for hunk in hunks]
    if not hunks:
        return PatchResult(False, "No files were modified.", planned=planned)
    try:
        for hunk in hunks:
            _check_paths(hunk, root, cwd)
    except PatchPathError as error:
        return PatchResult(False, f"Patch rejected: {error}", planned=planned)
    applied: list[FileChange] = []
    try:
        with CheckoutRoot(root) as files:
            for hunk in hunks:
                applied.append(_apply_hunk(hunk, files, root, cwd))
    except (_ApplyError, PatchPathError, UnsafePath) as error:
        return PatchResult(False, _failure_text(str(error), applied), applied, planned)
    return PatchResult(True, _summary(applied), applied, planned)


def plan_patch(text: str) -> list[FileChange]:
    """The files a patch names, without touching disk; raises PatchParseError on bad input."""
    return [_planned_change(hunk) for hunk in parse_patch(text)]


def _planned_change(hunk: Hunk) -> FileChange:
    if isinstance(hunk, AddFile):
        return FileChange(hunk.path, "add", added=hunk.contents.count("\n"))
    if isinstance(hunk, DeleteFile):
        return FileChange(hunk.path, "delete")
    return FileChange(hunk.path, "update", move_path=hunk.move_path)


def _check_paths(hunk: Hunk, root: Path, cwd: Path | None) -> None:
    relative_in_root(root, hunk.path, cwd)
    if isinstance(hunk, UpdateFile) and hunk.move_path is not None:
        relative_in_root(root, hunk.move_path, cwd)


def _summary(applied: list[FileChange]) -> str:
    lines = ["Success. Updated the following files:"]
    lines += [f"A {c.path}" for c in applied if c.kind == "add"]
    lines += [f"M {c.move_path or c.path}" for c in applied if c.kind == "update"]
    lines += [f"D {c.path}" for c in applied if c.kind == "delete"]
    return "\n".join(lines) + "\n"


def _failure_text(message: str, applied: list[FileChange]) -> str:
    if not applied:
        return message
    letters = {"add": "A", "update": "M", "delete": "D"}
    done = [f"{letters[c.kind]} {c.move_path or c.path}" for c in applied]
    return (
        f"{message}\n\nThe patch stopped at this error; these files were already changed and stay "
        "changed:\n" + "\n".join(done)
    )


def _apply_hunk(hunk: Hunk, files: CheckoutRoot, root: Path, cwd: Path | None) -> FileChange:
    if isinstance(hunk, AddFile):
        _write(files, relative_in_root(root, hunk.path, cwd), hunk.contents, hunk.path)
        return FileChange(hunk.path, "add", added=hunk.contents.count("\n"))
    if isinstance(hunk, DeleteFile):
        target = relative_in_root(root, hunk.path, cwd)
        removed = _count_lines_of(files, target)
        try:
            if not files.remove(target):
                raise _ApplyError(f"Failed to delete file {hunk.path}: No such file or directory")
        except UnsafePath as error:
            raise _ApplyError(f"Failed to delete file {hunk.path}: {error}") from None
        except OSError as error:
            raise _ApplyError(f"Failed to delete file {hunk.path}: {_reason(error)}") from None
        return FileChange(hunk.path, "delete", removed=removed)
    return _apply_update(hunk, files, root, cwd)


def _apply_update(hunk: UpdateFile, files: CheckoutRoot, root: Path, cwd: Path | None) -> FileChange:
    source = relative_in_root(root, hunk.path, cwd)
    original = _read_text(files, source, hunk.path)
    new_text, added, removed = derive_new_contents(original, hunk.chunks, hunk.path)
    if hunk.move_path is None:
        _write(files, source, new_text, hunk.path)
        return FileChange(hunk.path, "update", added=added, removed=removed)
    dest = relative_in_root(root, hunk.move_path, cwd)
    _write(files, dest, new_text, hunk.move_path)
    if dest != source:
        try:
            files.remove(source)
        except (OSError, UnsafePath) as error:
            raise _ApplyError(f"Failed to remove original {hunk.path}: {error}") from None
    return FileChange(hunk.path, "update", move_path=hunk.move_path, added=added, removed=removed)


def derive_new_contents(original: str, chunks: list[UpdateChunk], path: str) -> tuple[str, int, int]:
    """Apply `chunks` to a file's text: (new text, lines added, lines removed); raises on mismatch."""
    crlf = _uses_crlf(original)
    lines = original.split("\r\n" if crlf else "\n")
    if lines and lines[-1] == "":
        lines.pop()
    replacements = _compute_replacements(lines, chunks, path)
    added = removed = 0
    for start, old_len, new_segment in sorted(replacements, key=lambda r: r[0], reverse=True):
        old_segment = lines[start : start + old_len]
        plus, minus = _count_changes(old_segment, new_segment)
        added += plus
        removed += minus
        lines[start : start + old_len] = new_segment
    if not lines or lines[-1] != "":
        lines.append("")
    return ("\r\n" if crlf else "\n").join(lines), added, removed


def _compute_replacements(
    lines: list[str], chunks: list[UpdateChunk], path: str
) -> list[tuple[int, int, list[str]]]:
    replacements: list[tuple[int, int, list[str]]] = []
    line_index = 0
    for chunk in chunks:
        if chunk.change_context is not None:
            found = seek_sequence(lines, [chunk.change_context], line_index, False)
            if found is None:
                raise _ApplyError(f"Failed to find context '{chunk.change_context}' in {path}")
            line_index = found + 1
        if not chunk.old_lines:
            at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
            replacements.append((at, 0, list(chunk.new_lines)))
            continue
        pattern, new_segment = chunk.old_lines, chunk.new_lines
        found = seek_sequence(lines, pattern, line_index, chunk.is_end_of_file)
        if found is None and pattern[-1] == "":
            pattern = pattern[:-1]
            if new_segment and new_segment[-1] == "":
                new_segment = new_segment[:-1]
            found = seek_sequence(lines, pattern, line_index, chunk.is_end_of_file)
        if found is None:
            expected = "\n".join(chunk.old_lines)
            raise _ApplyError(f"Failed to find expected lines in {path}:\n{expected}")
        matched = lines[found : found + len(pattern)]
        replacements.append((found, len(pattern), _keep_original_context(matched, pattern, new_segment)))
        line_index = found + len(pattern)
    return replacements


def _keep_original_context(matched: list[str], pattern: list[str], new: list[str]) -> list[str]:
    """New lines where unchanged context lines keep the file's text (a fuzzy match rewrites nothing)."""
    out = list(new)
    matcher = difflib.SequenceMatcher(None, pattern, new, autojunk=False)
    for block in matcher.get_matching_blocks():
        out[block.b : block.b + block.size] = matched[block.a : block.a + block.size]
    return out


def _count_changes(old: list[str], new: list[str]) -> tuple[int, int]:
    """Lines added and removed between two short segments (context lines count for neither)."""
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


def _uses_crlf(text: str) -> bool:
    """True when every newline of the file is part of a CRLF pair."""
    newlines = text.count("\n")
    return newlines > 0 and text.count("\r\n") == newlines


def _read_text(files: CheckoutRoot, path: str, shown: str) -> str:
    try:
        return files.read_file(path, MAX_PATCHED_FILE_BYTES).decode("utf-8", errors="surrogateescape")
    except UnsafePath as error:
        raise _ApplyError(f"Failed to read file to update {shown}: {error}") from None
    except OSError as error:
        raise _ApplyError(f"Failed to read file to update {shown}: {_reason(error)}") from None


def _count_lines_of(files: CheckoutRoot, path: str) -> int:
    try:
        return files.read_file(path, MAX_PATCHED_FILE_BYTES).count(b"\n")
    except (OSError, UnsafePath):
        return 0


def _write(files: CheckoutRoot, path: str, text: str, shown: str) -> None:
    try:
        files.write_file(path, text.encode("utf-8", errors="surrogateescape"))
    except UnsafePath as error:
        raise _ApplyError(f"Failed to write file {shown}: {error}") from None
    except OSError as error:
        raise _ApplyError(f"Failed to write file {shown}: {_reason(error)}") from None


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
