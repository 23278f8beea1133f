"""Unified-diff parsing and display layout for the diff pane, in plain Python (no Textual).

`parse_patch` reads `git diff` output (or any unified diff) into files, hunks and lines with
+/- counts; it never raises: malformed input is skipped and described in `Patch.errors`.
`layout_patch` flattens a parsed patch into the rows the diff pane draws, unified or split
(removals paired with the additions that replace them, side by side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

LineKind = Literal["context", "added", "removed"]
FileStatus = Literal["added", "modified", "deleted", "renamed"]
RowKind = Literal["file", "hunk", "line", "pair", "note", "gap"]

HUNK_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+ ?(.*)$")
NO_NEWLINE = "\\ No newline at end of file"
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "r": "\r"}


@dataclass(slots=True)
class DiffLine:
    """One line of a hunk with its old/new line numbers (None on the side it is absent from)."""

    kind: LineKind
    text: str
    old_no: int | None
    new_no: int | None
    side_index: int = 0
    """Index among the hunk's old-side lines (removed) or new-side lines (added, context)."""
    no_newline: bool = False
    """The file ends right after this line without a newline."""


@dataclass(slots=True)
class Hunk:
    """One `@@ -a,b +c,d @@` block."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header: str = ""
    """The `@@ … @@ section` line as it appeared in the diff."""
    lines: list[DiffLine] = field(default_factory=list)

    def side_texts(self, side: Literal["old", "new"]) -> list[str]:
        """The hunk's text as one side sees it: old = context + removed, new = context + added."""
        skip = "added" if side == "old" else "removed"
        return [line.text for line in self.lines if line.kind != skip]


@dataclass(slots=True)
class FileDiff:
    """The changes to one file."""

    old_path: str | None
    new_path: str | None
    status: FileStatus = "modified"
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    similarity: int | None = None
    hunks: list[Hunk] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    @property
    def path(self) -> str:
        """The path the file has after the change (or had, when deleted)."""
        return self.new_path or self.old_path or "?"

    @property
    def display_path(self) -> str:
        """`old → new` for renames, else the path."""
        if self.status == "renamed" and self.old_path and self.old_path != self.new_path:
            return f"{self.old_path} → {self.new_path}"
        return self.path


@dataclass(slots=True)
class Patch:
    """A parsed diff: its files in order, totals, and what could not be understood."""

    files: list[FileDiff] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        """Added lines over all files."""
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        """Removed lines over all files."""
        return sum(f.removed for f in self.files)

    def index_of(self, path: str) -> int | None:
        """The index of the file with this (new or old) path, if present."""
        for index, file in enumerate(self.files):
            if path in (file.new_path, file.old_path):
                return index
        return None


@dataclass(slots=True)
class SplitRow:
    """One row of the side-by-side view: old line on the left, new line on the right."""

    left: DiffLine | None
    right: DiffLine | None


@dataclass(slots=True)
class Row:
    """One display row of the diff pane."""

    kind: RowKind
    file: int
    hunk: int = -1
    """Global hunk ordinal (index into DiffLayout.hunk_rows), -1 outside hunks."""
    line: DiffLine | None = None
    """The line (unified) or the left line (split)."""
    right: DiffLine | None = None
    """The right line (split)."""
    text: str = ""
    """Text of file headers, hunk headers and notes."""


@dataclass(slots=True)
class DiffLayout:
    """The flattened rows of a patch and where each file and hunk starts."""

    rows: list[Row] = field(default_factory=list)
    file_rows: list[int] = field(default_factory=list)
    hunk_rows: list[int] = field(default_factory=list)
    hunk_refs: list[tuple[int, int]] = field(default_factory=list)
    """(file index, hunk index within the file) per global hunk ordinal."""
    number_width: int = 1
    text_width: int = 0
    """Widest line text, in characters (for the horizontal scroll range)."""
    split: bool = False

    def file_at(self, row: int) -> int | None:
        """The file index shown at a row."""
        if not self.rows:
            return None
        return self.rows[max(0, min(row, len(self.rows) - 1))].file

    def file_end(self, file: int) -> int:
        """One past the last row of a file."""
        return self.file_rows[file + 1] if file + 1 < len(self.file_rows) else len(self.rows)


# --- parsing --------------------------------------------------------------------------------------


def unquote_path(raw: str) -> str:
    """Undo git's C-style quoting of a path (`"caf\\303\\251"` → `café`); plain paths pass through."""
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return raw
    body, data, index = raw[1:-1], bytearray(), 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 == len(body):
            data.extend(char.encode("utf-8"))
            index += 1
        elif body[index + 1 : index + 4].isdigit() and len(body[index + 1 : index + 4]) == 3:
            data.append(int(body[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            data.extend(_SIMPLE_ESCAPES.get(body[index + 1], body[index + 1]).encode("utf-8"))
            index += 2
    return data.decode("utf-8", errors="replace")


def _strip_prefix(raw: str) -> str | None:
    """`a/x` → `x`, `"b/caf\\303\\251"` → `café`, `/dev/null` → None (a trailing tab+date is dropped)."""
    if raw.startswith('"'):
        end = _closing_quote(raw)
        path = unquote_path(raw[: end + 1]) if end > 0 else raw
    else:
        path = raw.split("\t")[0]
    if path == "/dev/null":
        return None
    if path[:2] in ("a/", "b/"):
        return path[2:]
    return path


def _closing_quote(raw: str) -> int:
    """The index of the quote closing a C-quoted path that starts at 0, or -1."""
    index = 1
    while index < len(raw):
        if raw[index] == "\\":
            index += 2
            continue
        if raw[index] == '"':
            return index
        index += 1
    return -1


def _git_line_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths from `diff --git a/X b/Y` (quoted or not; same-name split when unquoted with spaces)."""
    if rest.startswith('"'):
        end = _closing_quote(rest)
        if end < 0:
            return None, None
        return _strip_prefix(rest[: end + 1]), _strip_prefix(rest[end + 2 :])
    if rest.endswith('"'):
        start = rest.rfind(' "')
        return _strip_prefix(rest[:start]), _strip_prefix(rest[start + 1 :])
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
    parts = rest.split(" b/", 1)
    if len(parts) == 2:
        return _strip_prefix(parts[0]), parts[1]
    return None, None


@dataclass(slots=True)
class _Parser:
    """A line-by-line state machine over the diff text."""

    lines: list[str]
    patch: Patch = field(default_factory=Patch)
    pos: int = 0
    file: FileDiff | None = None

    def run(self) -> Patch:
        """Parse everything, returning the patch."""
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            self.pos += 1
            if line.startswith("diff --git "):
                old, new = _git_line_paths(line[len("diff --git ") :])
                self._start_file(old, new)
            elif line.startswith("--- ") and self._next_starts("+++ "):
                self._file_paths(line[4:], self.lines[self.pos][4:])
                self.pos += 1
            elif line.startswith("@@"):
                self._hunk(line)
            elif self.file is not None:
                self._extended_header(line)
        return self.patch

    def _next_starts(self, prefix: str) -> bool:
        return self.pos < len(self.lines) and self.lines[self.pos].startswith(prefix)

    def _start_file(self, old: str | None, new: str | None) -> None:
        self.file = FileDiff(old_path=old, new_path=new)
        self.patch.files.append(self.file)

    def _file_paths(self, old_raw: str, new_raw: str) -> None:
        old, new = _strip_prefix(old_raw), _strip_prefix(new_raw)
        if self.file is None or self.file.hunks:
            self._start_file(old, new)
        assert self.file is not None
        if old is None:
            self.file.old_path, self.file.status = None, "added"
        else:
            self.file.old_path = old
        if new is None:
            self.file.new_path, self.file.status = None, "deleted"
        else:
            self.file.new_path = new

    def _extended_header(self, line: str) -> None:
        file = self.file
        assert file is not None
        if line.startswith("new file mode "):
            file.status, file.new_mode, file.old_path = "added", line[14:].strip(), None
        elif line.startswith("deleted file mode "):
            file.status, file.old_mode, file.new_path = "deleted", line[18:].strip(), None
        elif line.startswith("old mode "):
            file.old_mode = line[9:].strip()
        elif line.startswith("new mode "):
            file.new_mode = line[9:].strip()
        elif line.startswith(("rename from ", "copy from ")):
            file.old_path = unquote_path(line.split(" from ", 1)[1])
            file.status = "renamed" if line.startswith("rename") else "added"
        elif line.startswith(("rename to ", "copy to ")):
            file.new_path = unquote_path(line.split(" to ", 1)[1])
        elif line.startswith(("similarity index ", "dissimilarity index ")):
            digits = line.rsplit(" ", 1)[1].rstrip("%")
            file.similarity = int(digits) if digits.isdigit() else None
        elif line.startswith(("Binary files ", "GIT binary patch")):
            file.binary = True

    def _hunk(self, header: str) -> None:
        match = HUNK_HEADER.match(header)
        if match is None:
            self.patch.errors.append(f"line {self.pos}: not a hunk header: {header[:80]!r}")
            return
        if self.file is None:
            self.patch.errors.append(f"line {self.pos}: a hunk before any file header")
            return
        old_start, old_count, new_start, new_count, _section = match.groups()
        hunk = Hunk(
            int(old_start),
            1 if old_count is None else int(old_count),
            int(new_start),
            1 if new_count is None else int(new_count),
            header.rstrip(),
        )
        self.file.hunks.append(hunk)
        self._hunk_body(hunk)

    def _hunk_body(self, hunk: Hunk) -> None:
        file = self.file
        assert file is not None
        old_left, new_left = hunk.old_count, hunk.new_count
        old_no, new_no = hunk.old_start, hunk.new_start
        old_index = new_index = 0
        lines = self.lines
        while self.pos < len(lines):
            line = lines[self.pos]
            tag = line[:1]
            if tag == "\\":
                if hunk.lines:
                    hunk.lines[-1].no_newline = True
                self.pos += 1
                continue
            if old_left <= 0 and new_left <= 0:
                return
            if tag == "+" and new_left > 0:
                hunk.lines.append(DiffLine("added", line[1:], None, new_no, new_index))
                new_no, new_left, new_index = new_no + 1, new_left - 1, new_index + 1
                file.added += 1
            elif tag == "-" and old_left > 0:
                hunk.lines.append(DiffLine("removed", line[1:], old_no, None, old_index))
                old_no, old_left, old_index = old_no + 1, old_left - 1, old_index + 1
                file.removed += 1
            elif tag in (" ", "") and old_left > 0 and new_left > 0:
                hunk.lines.append(DiffLine("context", line[1:], old_no, new_no, new_index))
                old_no, new_no, old_left, new_left = old_no + 1, new_no + 1, old_left - 1, new_left - 1
                old_index, new_index = old_index + 1, new_index + 1
            else:
                self.patch.errors.append(
                    f"{file.path}: hunk {hunk.header!r} ends early at line {self.pos + 1}"
                )
                return
            self.pos += 1


def parse_patch(text: str) -> Patch:
    """Parse unified diff text (git's or plain) into files, hunks and lines; never raises."""
    if not text.strip():
        return Patch()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return _Parser(lines).run()


# --- split pairing and layout ---------------------------------------------------------------------


def pair_split(hunk: Hunk) -> list[SplitRow]:
    """Rows for the side-by-side view: each run of removals is paired with the additions after it."""
    rows: list[SplitRow] = []
    removed: list[DiffLine] = []
    added: list[DiffLine] = []

    def flush() -> None:
        for index in range(max(len(removed), len(added))):
            rows.append(
                SplitRow(
                    removed[index] if index < len(removed) else None,
                    added[index] if index < len(added) else None,
                )
            )
        removed.clear()
        added.clear()

    for line in hunk.lines:
        if line.kind == "removed":
            if added:
                flush()
            removed.append(line)
        elif line.kind == "added":
            added.append(line)
        else:
            flush()
            rows.append(SplitRow(line, line))
    flush()
    return rows


def file_header_text(file: FileDiff) -> str:
    """`path  status  +N -M` for a file header row."""
    return f"{file.display_path}  {file.status}  +{file.added} −{file.removed}"


def _file_notes(file: FileDiff) -> list[str]:
    notes: list[str] = []
    if file.old_mode and file.new_mode and file.old_mode != file.new_mode:
        notes.append(f"mode {file.old_mode} → {file.new_mode}")
    if file.binary:
        notes.append("Binary file not shown")
    elif not file.hunks:
        if file.status == "renamed":
            notes.append(f"renamed without changes ({file.similarity or 100}% similar)")
        elif file.status == "added":
            notes.append("empty file")
        elif file.status == "deleted":
            notes.append("empty file deleted")
        elif not notes:
            notes.append("no content changes")
    return notes


def layout_patch(patch: Patch, split: bool = False) -> DiffLayout:
    """Flatten a patch into display rows (file header, hunk headers, lines or pairs, notes)."""
    layout = DiffLayout(split=split)
    rows = layout.rows
    biggest = 1
    widest = 0
    for file_index, file in enumerate(patch.files):
        if file_index:
            rows.append(Row("gap", file_index - 1))
        layout.file_rows.append(len(rows))
        rows.append(Row("file", file_index, text=file_header_text(file)))
        rows.extend(Row("note", file_index, text=note) for note in _file_notes(file))
        for hunk_index, hunk in enumerate(file.hunks):
            ordinal = len(layout.hunk_rows)
            layout.hunk_rows.append(len(rows))
            layout.hunk_refs.append((file_index, hunk_index))
            rows.append(Row("hunk", file_index, ordinal, text=hunk.header))
            biggest = max(biggest, hunk.old_start + hunk.old_count, hunk.new_start + hunk.new_count)
            if split:
                for pair in pair_split(hunk):
                    rows.append(Row("pair", file_index, ordinal, pair.left, pair.right))
                    widest = max(widest, len(pair.left.text) if pair.left else 0)
                    if any(line is not None and line.no_newline for line in (pair.left, pair.right)):
                        rows.append(Row("note", file_index, ordinal, text=NO_NEWLINE))
                continue
            for line in hunk.lines:
                rows.append(Row("line", file_index, ordinal, line))
                widest = max(widest, len(line.text))
                if line.no_newline:
                    rows.append(Row("note", file_index, ordinal, text=NO_NEWLINE))
    layout.number_width = len(str(biggest))
    layout.text_width = widest
    return layout
