"""A task's diff as data: per-file status and line counts parsed from `git diff --raw --numstat -z`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from codex_tui.workspace.gitrun import split_z

FileStatus = Literal["added", "modified", "deleted", "renamed"]

_STATUS: dict[str, FileStatus] = {
    "A": "added",
    "C": "added",
    "M": "modified",
    "T": "modified",
    "D": "deleted",
    "R": "renamed",
}


@dataclass(slots=True)
class FileDiff:
    """One changed path: how it changed and how many lines were added and removed."""

    path: str
    status: FileStatus
    added: int = 0
    removed: int = 0
    old_path: str | None = None
    """The previous path of a renamed file."""
    binary: bool = False
    """Binary files have no line counts (added = removed = 0)."""

    def to_dict(self) -> dict[str, Any]:
        """The file entry of a diff.updated payload."""
        return {
            "path": self.path,
            "status": self.status,
            "added": self.added,
            "removed": self.removed,
            "old_path": self.old_path,
            "binary": self.binary,
        }


@dataclass(slots=True)
class DiffResult:
    """The task's changes against its starting snapshot: files, totals and the unified patch."""

    files: list[FileDiff] = field(default_factory=list)
    patch: str = ""
    """Git-style unified diff (binary files appear as "Binary files a/x and b/x differ")."""
    added: int = 0
    removed: int = 0
    truncated: bool = False
    """The patch was cut at a file boundary (too large to hold); `files` still lists every file."""

    def summary_dict(self) -> dict[str, Any]:
        """The data of a diff.updated event."""
        return {
            "files": [f.to_dict() for f in self.files],
            "added": self.added,
            "removed": self.removed,
        }


def parse_raw_numstat(output: bytes) -> list[FileDiff]:
    """Parse the output of `git diff --raw --numstat -z` (raw records first, then numstat records)."""
    tokens = split_z(output)
    files: list[FileDiff] = []
    i = 0
    while i < len(tokens) and tokens[i].startswith(":"):
        code = tokens[i].split()[4]
        status = _STATUS.get(code[0], "modified")
        if code[0] in "RC":
            old, new = tokens[i + 1], tokens[i + 2]
            files.append(FileDiff(new, status, old_path=old if code[0] == "R" else None))
            i += 3
        else:
            files.append(FileDiff(tokens[i + 1], status))
            i += 2
    counts: dict[str, tuple[str, str]] = {}
    while i < len(tokens):
        added, removed, path = tokens[i].split("\t", 2)
        if path == "":
            path = tokens[i + 2]
            i += 3
        else:
            i += 1
        counts[path] = (added, removed)
    for entry in files:
        added, removed = counts.get(entry.path, ("0", "0"))
        if added == "-":
            entry.binary = True
        else:
            entry.added, entry.removed = int(added), int(removed)
    return files


def diff_result(files: list[FileDiff], patch: str, *, truncated: bool = False) -> DiffResult:
    """Bundle parsed files and patch text with their totals."""
    return DiffResult(
        files=files,
        patch=patch,
        added=sum(f.added for f in files),
        removed=sum(f.removed for f in files),
        truncated=truncated,
    )


def cut_patch(patch: bytes) -> bytes:
    """A patch cut off mid-way, shortened to its last whole file (the next `diff --git` header)."""
    end = patch.rfind(b"\ndiff --git ")
    return patch[: end + 1] if end >= 0 else b""
