"""attach_artifact against a real container: what the sandbox makes is copied out as data, and the
links, FIFOs and oversized files it plants are refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from codex_tui.protocol import ITEM_COMPLETED
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.tasks.artifacts import ArtifactStore
from codex_tui.tools.artifact import MAX_ARTIFACT_BYTES, ArtifactError, AttachArtifactTool, attach_file
from codex_tui.tools.base import ToolResult
from tests.conftest_docker import MakeDockerSandbox
from tests.sandbox_helpers import Recorder, make_context

pytestmark = pytest.mark.docker


async def run_in(sandbox: DockerSandbox, script: str) -> None:
    result = await sandbox.exec(["bash", "-c", script], timeout_s=60)
    assert result.exit_code == 0, result.note


async def attach(
    sandbox: DockerSandbox, workspace: Path, store: ArtifactStore, path: str
) -> tuple[ToolResult, Recorder]:
    recorder = Recorder()
    ctx = make_context(workspace, sandbox, recorder)
    result = await AttachArtifactTool(store).run(json.dumps({"path": path, "caption": "made inside"}), ctx)
    return result, recorder


@pytest.fixture
async def started(make_docker_sandbox: MakeDockerSandbox, sandbox_workspace: Path) -> DockerSandbox:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    return sandbox


async def test_file_made_inside_the_container_is_attached(
    started: DockerSandbox, sandbox_workspace: Path, tmp_path: Path
) -> None:
    await run_in(started, "mkdir -p out && printf 'report from the container\\n' > out/report.txt")
    store = ArtifactStore(tmp_path / "data", "task-d")
    result, recorder = await attach(started, sandbox_workspace, store, "/workspace/out/report.txt")
    assert result.success, result.output
    [item] = recorder.items(ITEM_COMPLETED)
    assert item["mime_type"] == "text/plain"
    assert item["sha256"] == hashlib.sha256(b"report from the container\n").hexdigest()
    assert Path(item["path"]).read_bytes() == b"report from the container\n"


async def test_symlink_to_etc_passwd_is_refused(
    started: DockerSandbox, sandbox_workspace: Path, tmp_path: Path
) -> None:
    await run_in(started, "ln -s /etc/passwd shot.png && mkdir -p d && ln -s /etc d/etc")
    store = ArtifactStore(tmp_path / "data", "task-d")
    for path in ("shot.png", "d/etc/passwd"):
        result, recorder = await attach(started, sandbox_workspace, store, path)
        assert not result.success and "symbolic link" in result.output, result.output
        assert recorder.events == []
    assert store.items() == []


async def test_fifo_is_refused(started: DockerSandbox, sandbox_workspace: Path, tmp_path: Path) -> None:
    await run_in(started, "mkfifo shot.png")
    store = ArtifactStore(tmp_path / "data", "task-d")
    result, _ = await attach(started, sandbox_workspace, store, "shot.png")
    assert not result.success and "a FIFO" in result.output
    assert store.items() == []


async def test_huge_file_is_refused(started: DockerSandbox, sandbox_workspace: Path, tmp_path: Path) -> None:
    await run_in(started, f"truncate -s {MAX_ARTIFACT_BYTES + 1} big.png")
    store = ArtifactStore(tmp_path / "data", "task-d")
    result, _ = await attach(started, sandbox_workspace, store, "big.png")
    assert not result.success and "too large" in result.output
    assert store.items() == []


async def test_links_swapped_in_while_attaching_never_copy_a_host_file(
    started: DockerSandbox, sandbox_workspace: Path, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "shot.png").write_bytes(b"HOST-SECRET-4711")
    swapper = (
        # Regular files appear whole (written aside, then renamed in), so any copy that is made
        # holds exactly "inside"; the links in between are what the attach must never follow.
        "printf 'inside' > inside.png; i=0; while [ $i -lt 400000 ]; do i=$((i+1));"
        f" rm -rf d; ln -s {host_dir} d; rm -f d; mkdir -p d; cp inside.png d/.next; mv d/.next d/shot.png;"
        f" ln -sf {host_dir}/shot.png swap.png; cp inside.png .next; mv -f .next swap.png; done"
    )
    racer = asyncio.create_task(started.exec(["sh", "-c", swapper], timeout_s=300))
    await asyncio.sleep(0.5)
    store = ArtifactStore(tmp_path / "data", "task-race")
    copied = refused = 0
    try:
        for n in range(150):
            for path in ("d/shot.png", "swap.png"):
                try:
                    item = await asyncio.to_thread(
                        attach_file, sandbox_workspace, path, path, "", f"i{n}", store
                    )
                except ArtifactError:
                    refused += 1
                    continue
                copied += 1
                assert Path(item["path"]).read_bytes() == b"inside"
    finally:
        racer.cancel()
        await asyncio.gather(racer, return_exceptions=True)
    assert copied + refused == 300
    assert all(b"HOST-SECRET" not in Path(item["path"]).read_bytes() for item in store.items())
