"""A compromised sandbox forges the tar of a copy back (Docker copy mode, Kubernetes): tarfile's
extension headers must not let it blow up the host's memory, crash the copy back or write anything.

Each stream here is what a hostile `tar -c` could print. On the unguarded reader, the big headers
were read whole into memory, chained headers raised RecursionError and a bad sparse map or a NUL
in a link target raised ValueError out of `apply_pull` (the command's result was lost).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Literal

import pytest

from codex_tui.sandbox.base import SandboxError, SandboxSpec
from codex_tui.sandbox.docker_sync import WorkspaceCopy
from codex_tui.sandbox.k8s_exec import Captured, ExecStatus
from codex_tui.sandbox.sync import LONG_NAME_MAX, Changes, PullLimits, PullReport, Stat, apply_pull

BIG = 4 << 20


class CountingStream(io.BytesIO):
    """A stream that remembers how many bytes the host read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, n: int | None = -1) -> bytes:
        """Read and count."""
        data = super().read(n)
        self.taken += len(data)
        return data


def header(
    name: str, kind: bytes, size: int, fmt: Literal[0, 1, 2] = tarfile.GNU_FORMAT, linkname: str = ""
) -> bytes:
    """One raw tar header block of the given type (no data)."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info.tobuf(format=fmt)


def padded(data: bytes) -> bytes:
    """Data followed by the zeros up to the next 512-byte block."""
    return data + b"\0" * (-len(data) % 512)


def pax_record(key: str, value: str) -> bytes:
    """One `LEN key=value\\n` pax record."""
    body = f" {key}={value}\n".encode()
    size = len(body) + 1
    while len(str(size)) + len(body) != size:
        size += 1
    return str(size).encode() + body


def pax(*records: bytes) -> bytes:
    """A pax extended header with its data."""
    data = b"".join(records)
    return header("pax", tarfile.XHDTYPE, len(data), fmt=tarfile.USTAR_FORMAT) + padded(data)


END = b"\0" * 1024


def pull(root: Path, stream: io.BytesIO, wanted: tuple[str, ...] = ("a",), kind: str = "f") -> PullReport:
    """Copy `stream` back into `root` as the answer for `wanted` (listed as changed)."""
    manifest = {path: Stat(kind, 1, 0o644, "sig") for path in wanted}  # type: ignore[arg-type]
    return apply_pull(root, Changes(copy=list(wanted)), manifest, stream, PullLimits())


def test_a_huge_pax_header_is_refused_before_its_data_is_read(tmp_path: Path) -> None:
    stream = CountingStream(header("pax", tarfile.XHDTYPE, BIG, fmt=tarfile.USTAR_FORMAT) + b"x" * BIG + END)
    report = pull(tmp_path, stream)
    assert stream.taken < 64 << 10, "the header's data was read into memory"
    assert "pax extended headers are not accepted" in report.note()
    assert report.written == 0 and os.listdir(tmp_path) == []


def test_a_huge_gnu_long_name_is_refused_before_it_is_read(tmp_path: Path) -> None:
    stream = CountingStream(header("././@LongLink", tarfile.GNUTYPE_LONGNAME, BIG) + b"a" * BIG + END)
    report = pull(tmp_path, stream)
    assert stream.taken < 64 << 10
    assert "too long or repeated" in report.note()
    assert os.listdir(tmp_path) == []


def test_chained_extension_headers_are_refused_rather_than_raising_recursion_errors(tmp_path: Path) -> None:
    long_names = header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 2) + padded(b"a\0")
    pax_paths = pax(pax_record("path", "a"))
    for link in (long_names, pax_paths):
        report = pull(tmp_path, io.BytesIO(link * 5000 + header("a", tarfile.REGTYPE, 0) + END))
        assert "was not a tar stream" in report.note()
        assert os.listdir(tmp_path) == []


def test_a_malformed_sparse_map_is_refused_rather_than_raising(tmp_path: Path) -> None:
    sparse = pax(
        pax_record("GNU.sparse.major", "1"),
        pax_record("GNU.sparse.minor", "0"),
        pax_record("GNU.sparse.name", "a"),
        pax_record("GNU.sparse.realsize", "10"),
    )
    stream = io.BytesIO(sparse + header("a", tarfile.REGTYPE, 512) + padded(b"not a number") + END)
    report = pull(tmp_path, stream)
    assert report.written == 0 and report.refused and os.listdir(tmp_path) == []


def test_a_link_target_holding_a_nul_is_refused_rather_than_raising(tmp_path: Path) -> None:
    stream = io.BytesIO(pax(pax_record("linkpath", "a\0/etc/passwd")) + header("a", tarfile.SYMTYPE, 0) + END)
    report = pull(tmp_path, stream, kind="l")
    assert report.written == 0 and report.refused and os.listdir(tmp_path) == []


def test_long_names_link_targets_and_raw_bytes_of_a_gnu_tar_still_come_back(tmp_path: Path) -> None:
    deep = "/".join(["d" * 60] * 5) + "/" + "f" * 200
    raw = os.fsdecode(b"caf\xe9-\x1b[31m.txt")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in (deep, raw):
            info = tarfile.TarInfo(name)
            info.size = len(b"data")
            tar.addfile(info, io.BytesIO(b"data"))
        link = tarfile.TarInfo("l" * 150)  # a long name and a long target: two GNU headers
        link.type, link.linkname = tarfile.SYMTYPE, "t" * (LONG_NAME_MAX // 8)
        tar.addfile(link)
    out.seek(0)
    report = pull(tmp_path, out, wanted=(deep, raw, "l" * 150))
    assert (report.written, report.refused) == (3, [])
    assert (tmp_path / deep).read_bytes() == b"data"
    assert (tmp_path / os.fsdecode(b"caf\xe9-\x1b[31m.txt")).read_bytes() == b"data"
    assert os.readlink(tmp_path / ("l" * 150)) == "t" * (LONG_NAME_MAX // 8)


def test_refusal_notes_never_carry_the_sandboxs_control_characters(tmp_path: Path) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J"
    (tmp_path / evil).symlink_to("/etc")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(f"{evil}/f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    out.seek(0)
    note = pull(tmp_path, out, wanted=(f"{evil}/f",)).note()
    assert "is not a folder" in note and "\\x1b]0;pwned" in note
    assert note.isprintable(), note


def test_a_failing_copy_commands_stderr_reaches_the_message_without_control_characters(
    tmp_path: Path,
) -> None:
    copy = WorkspaceCopy(SandboxSpec(task_id="t", workspace=tmp_path), 1000, 1000)
    failed = Captured(ExecStatus(1), io.BytesIO(), b"find: \x1b]0;pwned\x07\x1b[31mdenied\n", False)
    with pytest.raises(SandboxError) as caught:
        copy._ok(failed, "list the workspace")
    assert str(caught.value).endswith("(exit 1): find: denied")
