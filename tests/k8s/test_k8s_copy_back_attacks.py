"""Attacks from inside a real pod on the copy back to the host checkout: the host stays unaffected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_tui.sandbox.base import SandboxLimits
from tests.k8s.conftest import MakeK8sSandbox

pytestmark = [pytest.mark.k8s, pytest.mark.docker]
LONG_S = 120.0

FORGED_STREAM = r"""
import io, sys, tarfile
out = io.BytesIO()
with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name, kind, data, link in [
        ("../escaped.txt", tarfile.REGTYPE, b"out of the checkout", ""),
        ("/tmp/absolute-from-pod.txt", tarfile.REGTYPE, b"absolute", ""),
        ("pipe", tarfile.FIFOTYPE, b"", ""),
        ("hard", tarfile.LNKTYPE, b"", "/etc/passwd"),
        ("ok.txt", tarfile.REGTYPE, b"an honest change", ""),
    ]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, link, len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)
sys.stdout.buffer.write(out.getvalue())
"""


async def test_a_link_to_etc_passwd_and_a_file_written_through_it_leave_the_host_untouched(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path
) -> None:
    before = Path("/etc/passwd").read_bytes()
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    script = "ln -s /etc/passwd evil; echo pwned >> evil; ln -s /etc etc; echo pwned > etc/passwd; true"
    result = await sandbox.exec(["sh", "-c", script], timeout_s=LONG_S)
    assert result.exit_code == 0
    assert os.readlink(k8s_workspace / "evil") == "/etc/passwd", "the link came back as a link"
    assert os.readlink(k8s_workspace / "etc") == "/etc"
    assert Path("/etc/passwd").read_bytes() == before


async def test_a_fifo_in_the_pod_is_not_copied_and_the_command_says_so(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path
) -> None:
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    result = await sandbox.exec(["sh", "-c", "mkfifo pipe && echo data > file.txt"], timeout_s=LONG_S)
    assert result.exit_code == 0
    assert (k8s_workspace / "file.txt").read_text() == "data\n"
    assert not os.path.lexists(k8s_workspace / "pipe")
    assert "pipe: a FIFO" in result.note and "never copied" in result.note
    again = await sandbox.exec(["true"], timeout_s=LONG_S)
    assert again.note == "", "a refused path is reported once"


async def test_a_file_past_the_disk_limit_stays_in_the_pod_with_a_clear_note(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path
) -> None:
    sandbox = make_k8s_sandbox(limits=SandboxLimits(cpus=1, memory_mb=512, disk_mb=2))
    await sandbox.start()
    script = "head -c 3145728 /dev/zero > huge.bin && echo small > small.txt"
    result = await sandbox.exec(["sh", "-c", script], timeout_s=LONG_S)
    assert result.exit_code == 0
    assert (k8s_workspace / "small.txt").read_text() == "small\n"
    assert not (k8s_workspace / "huge.bin").exists()
    assert "huge.bin: past the workspace size limit (2 MB)" in result.note


async def test_a_forged_copy_back_stream_writes_only_what_was_listed_inside_the_checkout(
    make_k8s_sandbox: MakeK8sSandbox, k8s_workspace: Path, tmp_path: Path
) -> None:
    """A compromised pod answers the copy back with its own tar stream (here a python script plays it)."""
    sandbox = make_k8s_sandbox()
    await sandbox.start()
    sandbox.pull_script = f"head -c \"$1\" > /dev/null; python3 -c '{FORGED_STREAM}'"
    result = await sandbox.exec(["sh", "-c", "echo honest > ok.txt"], timeout_s=LONG_S)
    assert (k8s_workspace / "ok.txt").read_text() == "an honest change"
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/absolute-from-pod.txt").exists()
    assert sorted(p.name for p in k8s_workspace.iterdir()) == ["ok.txt"]
    for expected in ("../escaped.txt: leaves the workspace", "pipe: a FIFO", "hard: a hard link"):
        assert expected in result.note
