"""A task checkout inside a real container: git works in /workspace, edits show up in the task diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.sandbox.base import Stream
from codex_tui.workspace.git import Workspace
from tests.conftest_docker import MakeDockerSandbox
from tests.test_workspace_git import dirty_repo  # noqa: F401  (fixture)

pytestmark = pytest.mark.docker


async def test_git_works_in_the_container_and_agent_edits_reach_the_diff(
    dirty_repo: Path,  # noqa: F811
    tmp_path: Path,
    make_docker_sandbox: MakeDockerSandbox,
) -> None:
    ws = await Workspace.create(dirty_repo, tmp_path / "task", "t-docker")
    sandbox = make_docker_sandbox(
        task_id="t-docker", workspace=ws.path, extra_ro_mounts=ws.extra_ro_mounts, mode="auto"
    )
    await sandbox.start()
    output: list[bytes] = []

    def collect(_stream: Stream, chunk: bytes) -> None:
        output.append(chunk)

    script = (
        "git status --porcelain --untracked-files=all && git log --format=%s -1 && "
        "git cat-file -e HEAD:calc.py && echo '# agent' >> calc.py && git diff --stat"
    )
    result = await sandbox.exec(["sh", "-c", script], timeout_s=30, on_output=collect)
    text = b"".join(output).decode()

    assert result.exit_code == 0, text
    assert text.startswith("M  README.md\n M calc.py\n D old.txt\n?? notes/todo.txt\ninitial\n")
    assert "calc.py | 5 +++++" in text
    diff = await ws.diff()
    assert [(f.path, f.added, f.removed) for f in diff.files] == [("calc.py", 1, 0)]
