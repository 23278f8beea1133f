"""A read-only task (Ask, review) attacks its checkout from inside a real sandbox: every way to change
what the host later diffs, applies or keeps as state is tried, on Docker and on the local backend.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codex_tui.sandbox.base import Sandbox, SandboxSpec
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.local import LocalSandbox
from codex_tui.workspace.git import Workspace
from tests.conftest import make_repo
from tests.security.conftest import Attacked

ATTACKS = [
    "echo x >> app.py",
    "echo x > planted.txt",
    "mkdir planted-dir",
    "ln -s /etc/passwd planted-link",
    "mkfifo planted-fifo",
    "chmod 777 app.py",
    "touch -d 2000-01-01 app.py",
    "truncate -s 0 app.py",
    "rm -f app.py",
    "mv app.py moved.py",
    'python3 -c \'import os; os.write(os.open("app.py", os.O_WRONLY), b"x")\'',
    "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config",
    "echo 'touch /tmp/pwned' > .git/hooks/post-checkout",
    "echo x > .git/info/attributes",
    "echo /tmp > .git/objects/info/alternates",
    "rm -rf .git/refs",
    'ok=1; for d in $BORROWED; do echo x > "$d/planted" && ok=0; done; exit $ok',
    'ok=1; for f in $(find $BORROWED -type f | head -3); do echo x >> "$f" && ok=0; done; exit $ok',
    'echo x > "$STATE/planted"',
    "echo x > ../planted",
]
"""Each line is run alone; one that succeeds prints WROTE: <line>."""


def _script() -> str:
    quoted = [line.replace("'", "'\"'\"'") for line in ATTACKS]
    tries = "\n".join(f"if sh -c '{line}' 2>/dev/null; then echo 'WROTE: {line}'; fi" for line in quoted)
    return tries + "\necho attacks done\n"


def _tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry below `root` (links not followed): mode and content hash or link text."""
    found: dict[str, tuple[int, str]] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            info = path.lstat()
            if path.is_symlink():
                digest = os.readlink(path)
            elif path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                digest = ""
            found[str(path.relative_to(root))] = (info.st_mode, digest)
    return found


@pytest.fixture
async def read_only(backend: str, tmp_path: Path) -> AsyncIterator[Attacked]:
    """A task checkout with a read-only sandbox started on it, on each backend (conftest's `backend`)."""
    repo = make_repo(tmp_path / "repo", {"app.py": "print('hi')\n"})
    ws = await Workspace.create(repo, tmp_path / "worktrees" / "t1", "t1")
    borrowed = " ".join(str(path) for path in ws.extra_ro_mounts)
    spec = SandboxSpec(
        task_id=f"read-only-attack-{os.getpid()}",
        workspace=ws.path,
        mode="read-only",
        extra_ro_mounts=ws.extra_ro_mounts,
        env={"BORROWED": borrowed, "STATE": str(ws.state_dir)},
    )
    sandbox: Sandbox = DockerSandbox(spec) if backend == "docker" else LocalSandbox(spec)
    await sandbox.start()
    try:
        yield Attacked(repo, ws, sandbox, tmp_path / "host", tmp_path / "canary")
    finally:
        await sandbox.stop()


async def test_read_only_task_changes_nothing_the_host_diffs_applies_or_keeps(read_only: Attacked) -> None:
    t = read_only
    checkout, state = _tree(t.ws.path), _tree(t.ws.state_dir)
    borrowed = {str(path): _tree(path) for path in t.ws.extra_ro_mounts}
    user_repo = _tree(t.repo)
    result = await t.sh(_script(), timeout_s=120)
    assert "attacks done" in result.note, result.note
    assert "WROTE" not in result.note, result.note
    assert _tree(t.ws.path) == checkout
    assert _tree(t.ws.state_dir) == state
    assert {str(path): _tree(path) for path in t.ws.extra_ro_mounts} == borrowed
    assert _tree(t.repo) == user_repo
    diff = await t.ws.diff()
    assert diff.files == [] and diff.patch == ""
