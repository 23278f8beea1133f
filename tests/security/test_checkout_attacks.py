"""Attacks on the host from inside a task's sandbox, through the checkout it can write.

Each test plants something from inside the sandbox (git config, hooks, attributes, alternates,
links, FIFOs, swapped folders), then runs every host-side operation on the task and checks that
nothing ran on the host, nothing outside the checkout was read or written, and the user got a
clear message where something was refused. Docker and the local backend both.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import stat

import pytest

from codex_tui.agent.instructions import load_project_docs
from codex_tui.tools.apply_patch import apply_patch
from codex_tui.tools.view_image import ImageError, load_workspace_image
from codex_tui.workspace.git import Workspace, WorkspaceError
from tests.conftest import run_git
from tests.security.conftest import Attacked, every_host_operation

pytestmark = pytest.mark.docker

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _evil_git_config(canary: str) -> str:
    """Every git setting that runs a program, planted in the checkout's .git from inside."""
    run = f"touch {canary}"
    names = "pre-commit post-checkout reference-transaction post-index-change pre-auto-gc"
    hooks = f"mkdir -p .git/evil-hooks && for h in {names}; do"
    hooks += f" printf '#!/bin/sh\\n{run}\\n' > .git/evil-hooks/$h; chmod +x .git/evil-hooks/$h; done"
    settings = {
        "core.fsmonitor": run,
        "core.hooksPath": ".git/evil-hooks",
        "core.pager": run,
        "core.editor": run,
        "core.sshCommand": run,
        "core.askPass": run,
        "diff.external": run,
        "filter.evil.clean": run,
        "filter.evil.smudge": run,
        "filter.evil.process": run,
        "filter.evil.required": "true",
        "diff.evil.textconv": run,
        "merge.evil.driver": run,
        "gpg.program": run,
        "commit.gpgSign": "true",
        "core.worktree": "/",
    }
    lines = [hooks, "printf '* filter=evil diff=evil merge=evil\\n' > .gitattributes"]
    lines += [f"git config {key} '{value}'" for key, value in settings.items()]
    return " && ".join(lines)


async def test_git_config_hooks_and_filters_planted_inside_never_run_on_the_host(attacked: Attacked) -> None:
    t = attacked
    result = await t.sh(_evil_git_config(str(t.canary)) + " && echo changed >> app.py")
    assert result.exit_code == 0, result.note

    messages = await every_host_operation(t)

    assert not t.canary.exists(), "host-side git ran a program planted by the sandbox"
    assert messages[3] == "applied 2 file(s)", messages
    assert (t.repo / "app.py").read_text() == "print('hi')\nchanged\n"
    assert run_git(t.repo, "show", "codex/attack:app.py") == "print('hi')\nchanged\n"


async def test_core_worktree_pointing_at_a_host_folder_is_ignored(attacked: Attacked) -> None:
    t = attacked
    (t.host_dir / "victim.txt").write_text("keep me\n")
    result = await t.sh(f"git config core.worktree {t.host_dir} && echo edit > new.txt")
    assert result.exit_code == 0, result.note

    diff = await t.ws.diff()
    assert [f.path for f in diff.files] == ["new.txt"]
    await t.ws.restore("base")
    report = await t.ws.apply_to_source()

    assert report.ok and not (t.repo / "secret.txt").exists() and not (t.repo / "new.txt").exists()
    assert (t.host_dir / "victim.txt").read_text() == "keep me\n"
    assert (t.host_dir / "secret.txt").exists()
    assert (t.repo / "app.py").exists()


async def test_alternates_and_metadata_written_inside_change_no_mount_and_no_destination(
    attacked: Attacked,
) -> None:
    t = attacked
    mounts = list(t.ws.extra_ro_mounts)
    script = (
        f"echo {t.host_dir} >> .git/objects/info/alternates && echo /var/run >> .git/objects/info/alternates"
        f" && git config codex-tui.source {t.host_dir} && git config codex-tui.subdir ../.."
        f" && git config codex-tui.taskid t1 && echo new > added.txt"
    )
    result = await t.sh(script)
    assert result.exit_code == 0, result.note

    reopened = await Workspace.open(t.repo, t.ws.path, "t1")
    report = await reopened.apply_to_source()

    assert reopened.extra_ro_mounts == mounts
    assert (reopened.source, reopened.subdir) == (t.repo.resolve(), "")
    assert report.ok and (t.repo / "added.txt").read_text() == "new\n"
    assert sorted(os.listdir(t.host_dir)) == ["secret.txt"]


async def test_agents_md_linked_to_a_host_file_is_not_read(attacked: Attacked) -> None:
    t = attacked
    script = f"rm AGENTS.md && ln -s {t.host_dir}/secret.txt AGENTS.md"
    script += f" && mkdir -p sub && ln -s {t.host_dir} sub/docs"
    assert (await t.sh(script)).exit_code == 0

    docs = load_project_docs(t.ws.path / "sub" / "docs", None, root=t.ws.path)

    assert "HOST-SECRET" not in docs.text
    assert docs.files == []


async def test_fifo_planted_in_the_checkout_hangs_nothing(attacked: Attacked) -> None:
    t = attacked
    assert (await t.sh("mkfifo stuck.txt && mkfifo stuck.png && rm app.py && mkfifo app.py")).exit_code == 0
    patch = "*** Begin Patch\n*** Update File: stuck.txt\n@@\n-a\n+b\n*** End Patch"

    result = await asyncio.wait_for(asyncio.to_thread(apply_patch, patch, t.ws.path), 10)
    with pytest.raises(ImageError, match=r"not a regular file|FIFO"):
        await asyncio.wait_for(
            asyncio.to_thread(load_workspace_image, t.ws.path, "stuck.png", "stuck.png"), 10
        )
    diff = await asyncio.wait_for(t.ws.diff(), 30)
    messages = await asyncio.wait_for(every_host_operation(t), 120)

    assert not result.success and "FIFO" in result.output
    assert [(f.path, f.status) for f in diff.files] == [("app.py", "deleted")]
    assert len(messages) == 8


@pytest.mark.parametrize("iterations", [150])
async def test_links_swapped_in_while_host_tools_run_never_reach_the_host(
    attacked: Attacked, iterations: int
) -> None:
    t = attacked
    (t.host_dir / "host.png").write_bytes(PNG + b"HOST-SECRET-4711")
    swapper = (
        f"printf '%s' '{base64.b64encode(PNG).decode()}' | base64 -d > inside.png; mkdir -p d; i=0;"
        f" while [ $i -lt 400000 ]; do i=$((i+1)); rm -rf d 2>/dev/null; ln -s {t.host_dir} d;"
        " rm -f d; mkdir -p d; cp inside.png d/img.png; ln -sf "
        f"{t.host_dir}/host.png swap.png; rm -f swap.png; cp inside.png swap.png; done"
    )
    racer = asyncio.create_task(t.sh(swapper, timeout_s=300))
    await asyncio.sleep(0.5)
    try:
        for n in range(iterations):
            patch = f"*** Begin Patch\n*** Add File: d/evil-{n}.txt\n+pwned\n*** End Patch"
            await asyncio.to_thread(apply_patch, patch, t.ws.path)
            for name in ("d/img.png", "swap.png"):
                try:
                    image = await asyncio.to_thread(load_workspace_image, t.ws.path, name, name)
                except ImageError:
                    continue
                assert b"HOST-SECRET" not in image.data
            if n % 25 == 0:
                diff = await t.ws.diff()
                assert "HOST-SECRET" not in diff.patch
    finally:
        racer.cancel()
        await asyncio.gather(racer, return_exceptions=True)

    assert sorted(os.listdir(t.host_dir)) == ["host.png", "secret.txt"]


async def test_undo_while_folders_are_swapped_for_links_writes_only_inside(attacked: Attacked) -> None:
    t = attacked
    assert (await t.sh("mkdir -p pkg && echo one > pkg/mod.py")).exit_code == 0
    checkpoint = await t.ws.checkpoint("with pkg")
    swapper = (
        f"i=0; while [ $i -lt 400000 ]; do i=$((i+1)); rm -rf pkg; ln -sfn {t.host_dir} pkg; rm -f pkg; done"
    )
    racer = asyncio.create_task(t.sh(swapper, timeout_s=300))
    await asyncio.sleep(0.5)
    try:
        for _ in range(60):
            with contextlib.suppress(WorkspaceError):  # a refused restore is fine; a write outside is not
                await t.ws.restore(checkpoint)
    finally:
        racer.cancel()
        await asyncio.gather(racer, return_exceptions=True)

    assert sorted(os.listdir(t.host_dir)) == ["secret.txt"]


async def test_special_files_and_host_links_are_left_out_of_the_snapshot(attacked: Attacked) -> None:
    t = attacked
    script = f"ln -s {t.host_dir}/secret.txt leak.txt && mkfifo pipe && ln -s {t.host_dir} hostdir"
    assert (await t.sh(script)).exit_code == 0
    if os.geteuid() == 0 and t.sandbox.backend == "local":
        os.mknod(t.ws.path / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))

    diff = await asyncio.wait_for(t.ws.diff(), 30)

    assert sorted(f.path for f in diff.files) == ["hostdir", "leak.txt"]
    assert "HOST-SECRET" not in diff.patch
    assert f"+{t.host_dir}/secret.txt" in diff.patch


async def test_applying_refuses_git_paths_and_links_that_leave_the_repository(attacked: Attacked) -> None:
    t = attacked
    script = "ln -s /etc/passwd passwd && ln -s ../../outside up && ln -s app.py alias && echo x > ok.txt"
    assert (await t.sh(script)).exit_code == 0

    preflight = await t.ws.preflight()
    report = await t.ws.apply_to_source()

    assert sorted(preflight.conflicts) == ["passwd", "up"]
    assert "pointing out of the repository" in preflight.details["passwd"]
    assert not report.ok and "nothing was changed" in report.message
    assert not (t.repo / "ok.txt").exists() and not os.path.lexists(t.repo / "passwd")
    assert run_git(t.repo, "status", "--porcelain") == ""
