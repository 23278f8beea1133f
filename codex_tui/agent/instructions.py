"""The agent's instructions: our system prompt, the sandbox it runs in, and the AGENTS.md files."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from codex_tui.agent.review import review_guidelines, review_prompt
from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath

AGENTS_FILE: Final = "AGENTS.md"
AGENTS_MAX_BYTES: Final = 32 * 1024
_PROMPT_FILE: Final = Path(__file__).with_name("prompt.md")
_ASK_FILE: Final = Path(__file__).with_name("ask_prompt.md")

_MODE_LINES: Final = {
    "read-only": "read-only: you can read files and run commands, but the workspace is not writable "
    "and the network is off",
    "auto": "auto: the workspace is writable and the network is off",
    "full-access": "full-access: the workspace is writable and the network is on",
}


@dataclass(slots=True)
class ProjectDocs:
    """The AGENTS.md files found for a folder, joined into one section of the instructions."""

    text: str
    files: list[Path] = field(default_factory=list)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


@cache
def base_prompt() -> str:
    """Our own system prompt (prompt.md), read once."""
    return _PROMPT_FILE.read_text(encoding="utf-8").strip()


def find_git_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a `.git` entry (folder or worktree file)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def agents_md_paths(cwd: Path, home: Path | None, root: Path | None = None) -> list[Path]:
    """AGENTS.md files that apply to `cwd`: the global one, then `root` (default: the git root) down
    to cwd. A link named AGENTS.md in the repository is not one (it could point anywhere)."""
    cwd = cwd.resolve()
    found: list[Path] = []
    if home is not None and (home / AGENTS_FILE).is_file():
        found.append((home / AGENTS_FILE).resolve())
    top = root.resolve() if root is not None else find_git_root(cwd)
    for folder in _folders_down_to(top, cwd):
        candidate = folder / AGENTS_FILE
        if candidate.is_file() and not candidate.is_symlink() and candidate not in found:
            found.append(candidate)
    return found


def _folders_down_to(root: Path | None, cwd: Path) -> list[Path]:
    if root is None or not cwd.is_relative_to(root):
        return [cwd]
    parts = cwd.relative_to(root).parts
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts) + 1)]


def load_project_docs(
    cwd: Path, home: Path | None, max_bytes: int = AGENTS_MAX_BYTES, root: Path | None = None
) -> ProjectDocs:
    """Read and join the AGENTS.md files for `cwd`, capped at `max_bytes` (UTF-8) with a note.

    `root` is the task's checkout: files beneath it are read without following links (regular
    files only, bounded), since the sandbox can write them.
    """
    top = root.resolve() if root is not None else find_git_root(cwd.resolve())
    paths = agents_md_paths(cwd, home, top)
    docs = ProjectDocs(text="")
    chunks: list[str] = []
    used = 0
    for path in paths:
        try:
            body = _read_doc(path, top, max_bytes + 1).decode("utf-8", errors="replace").strip()
        except (OSError, UnsafePath) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            docs.warnings.append(f"cannot read {path}: {reason}")
            continue
        chunk = f"## {_doc_label(path, top, home)}\n\n{body}\n\n"
        size = len(chunk.encode("utf-8"))
        docs.files.append(path)
        if used + size > max_bytes:
            note = _truncation_note(path, max_bytes)
            room = max(0, max_bytes - used - len(note.encode("utf-8")))
            chunks.append(_cut_utf8(chunk, room) + note)
            docs.truncated = True
            docs.warnings.append(f"AGENTS.md files exceed {max_bytes // 1024} KiB; truncated at {path}")
            break
        chunks.append(chunk)
        used += size
    docs.text = "".join(chunks).strip()
    return docs


def _read_doc(path: Path, root: Path | None, limit: int) -> bytes:
    """The first `limit` bytes of an AGENTS.md: through safe_fs beneath the repository root."""
    if root is None or not path.is_relative_to(root):
        return _read_head(path, limit)
    with CheckoutRoot(root) as files:
        return files.read_file(path.relative_to(root).as_posix(), limit, truncate=True)


@cache
def ask_prompt() -> str:
    """The Ask-mode section (ask_prompt.md), read once."""
    return _ASK_FILE.read_text(encoding="utf-8").strip()


def build_instructions(
    *, docs: ProjectDocs, workdir: str, mode: str, sandbox_description: str = "", kind: str = "code"
) -> str:
    """The full instructions sent with every model request of a turn.

    A review gets the reviewer's prompt and only the "Review guidelines" / "Code Review Rules"
    sections of the AGENTS.md files; an Ask task gets the Ask-mode section after ours.
    """
    environment = _environment_section(workdir, mode, sandbox_description)
    if kind == "review":
        parts = [review_prompt(), environment]
        guidelines = review_guidelines(docs.text)
        if guidelines:
            parts.append("# Review guidelines from the repository's AGENTS.md files\n\n" + guidelines)
        return "\n\n".join(parts)
    parts = [base_prompt(), environment]
    if kind == "ask":
        parts.append(ask_prompt())
    if docs.text:
        parts.append(
            "# Instructions from AGENTS.md files\n\n"
            "The developer's AGENTS.md files follow, most general first; when they disagree, the later "
            "(deeper) file wins, and the developer's own messages win over all of them.\n\n" + docs.text
        )
    return "\n\n".join(parts)


def _environment_section(workdir: str, mode: str, sandbox_description: str) -> str:
    lines = [
        "# This task's sandbox",
        "",
        f"- Working directory: `{workdir}`",
        f"- Mode: {_MODE_LINES.get(mode, mode)}",
    ]
    if sandbox_description:
        lines.append(f"- Sandbox: {sandbox_description}")
    return "\n".join(lines)


def _doc_label(path: Path, root: Path | None, home: Path | None) -> str:
    if home is not None and path.parent == home.resolve():
        return f"{AGENTS_FILE} (global, {path})"
    if root is not None and path.is_relative_to(root):
        return f"{path.relative_to(root).as_posix()} (in the repository)"
    return str(path)


def _truncation_note(path: Path, max_bytes: int) -> str:
    return (
        f"\n\n[AGENTS.md content truncated at {path}: the files together exceed the "
        f"{max_bytes // 1024} KiB limit]\n"
    )


def _read_head(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _cut_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
