"""The copy back from a remote sandbox, fed forged manifests and tar streams (no cluster needed)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from codex_tui.sandbox.sync import (
    Changes,
    PullLimits,
    SyncError,
    all_paths,
    apply_pull,
    diff_manifests,
    parse_pod_manifest,
    scan_host,
    write_tar,
)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    out.seek(0)
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def _pull(root: Path, stream: io.BytesIO, names: list[str], max_bytes: int = 1 << 20) -> list[str]:
    records = b"".join(f"f 1 644 1/1/{i} {n}\0".encode() for i, n in enumerate(names) if ".." not in n)
    manifest, _ = parse_pod_manifest(records)
    changes = diff_manifests({}, manifest)
    return apply_pull(root, changes, manifest, stream, PullLimits(max_bytes=max_bytes)).refused


def test_pod_manifest_lists_files_links_and_folders_and_notes_special_files() -> None:
    data = b"d 0 755 1/1/1 src\0f 12 755 2/2/2 src/run.sh\0l 11 777 3/3/3 link\0p 0 644 4/4/4 pipe\0"
    manifest, notes = parse_pod_manifest(data)
    assert {p: s.kind for p, s in manifest.items()} == {"src": "d", "src/run.sh": "f", "link": "l"}
    assert manifest["src/run.sh"].mode == 0o755
    assert notes == ["pipe: a FIFO"]


def test_pod_manifest_with_names_leaving_the_workspace_lists_them_as_refused() -> None:
    manifest, notes = parse_pod_manifest(b"f 1 644 1/1/1 ../escape\0f 1 644 1/1/1 /etc/passwd\0")
    assert manifest == {}
    assert len(notes) == 2 and all("not a name inside the workspace" in n for n in notes)


def test_a_garbled_pod_manifest_is_an_error_not_a_partial_sync() -> None:
    with pytest.raises(SyncError, match="malformed"):
        parse_pod_manifest(b"f 1\0")


def test_changes_copy_parents_first_and_delete_children_first() -> None:
    old, _ = parse_pod_manifest(b"d 0 755 1/1/1 gone\0f 1 644 1/1/2 gone/a\0f 1 644 1/1/3 same\0")
    new, _ = parse_pod_manifest(b"f 1 644 1/1/3 same\0d 0 755 1/1/4 new\0f 2 644 1/1/5 new/b\0")
    changes = diff_manifests(old, new)
    assert changes.copy == ["new", "new/b"]
    assert changes.delete == ["gone/a", "gone"]


def test_members_escaping_the_checkout_are_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    stream = _tar(
        (_member("../outside.txt"), b"escaped"),
        (_member("/tmp/absolute.txt"), b"absolute"),
        (_member("ok.txt"), b"fine"),
    )
    refused = _pull(root, stream, ["ok.txt", "../outside.txt"])
    assert (root / "ok.txt").read_bytes() == b"fine"
    assert not (tmp_path / "outside.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()
    assert any("../outside.txt: leaves the workspace" in r for r in refused)
    assert any("/tmp/absolute.txt" in r and "absolute" in r for r in refused)


def test_a_file_written_through_a_link_in_the_stream_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    stream = _tar(
        (_member("etc", tarfile.SYMTYPE, link=str(victim)), b""),
        (_member("etc/passwd"), b"pwned"),
    )
    refused = _pull(root, stream, ["etc", "etc/passwd"])
    assert os.readlink(root / "etc") == str(victim), "the link is kept as a link"
    assert list(victim.iterdir()) == []
    assert any(r.startswith("etc/passwd: ") and "link" in r for r in refused)


def test_fifos_devices_and_hard_links_in_the_stream_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    stream = _tar(
        (_member("fifo", tarfile.FIFOTYPE), b""),
        (_member("dev", tarfile.CHRTYPE), b""),
        (_member("hard", tarfile.LNKTYPE, link="/etc/passwd"), b""),
    )
    refused = _pull(root, stream, ["fifo", "dev", "hard"])
    assert list(root.iterdir()) == []
    assert refused == ["fifo: a FIFO", "dev: a device", "hard: a hard link"]


def test_a_member_the_pod_did_not_list_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    refused = _pull(root, _tar((_member("sneaky.txt"), b"x")), ["listed.txt"])
    assert not (root / "sneaky.txt").exists()
    assert refused == ["sneaky.txt: not a file the sandbox listed as changed"]


def test_data_past_the_size_limit_is_left_in_the_sandbox(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    stream = _tar((_member("small"), b"a" * 10), (_member("huge"), b"b" * 5000))
    refused = _pull(root, stream, ["small", "huge"], max_bytes=1000)
    assert (root / "small").read_bytes() == b"a" * 10
    assert not (root / "huge").exists()
    assert refused and "past the workspace size limit" in refused[0]


def test_git_folder_is_copied_as_data_and_executable_bits_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    stream = _tar(
        (_member(".git/HEAD"), b"ref: refs/heads/main\n"), (_member("run.sh", mode=0o755), b"#!/bin/sh\n")
    )
    assert _pull(root, stream, [".git/HEAD", "run.sh"]) == []
    assert (root / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert os.stat(root / "run.sh").st_mode & 0o111


def test_deleted_paths_are_removed_from_the_host_without_following_links(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "a").write_text("a")
    outside = tmp_path / "keep"
    outside.write_text("keep")
    (root / "link").symlink_to(outside)
    report = apply_pull(root, Changes(delete=["dir/a", "dir", "link"]), {}, None, PullLimits())
    assert report.deleted == 3 and list(root.iterdir()) == []
    assert outside.read_text() == "keep"


def test_host_tar_round_trips_files_links_and_folders_without_following_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (src / "up").symlink_to("/etc")
    manifest = scan_host(src)
    assert {p: s.kind for p, s in manifest.items()} == {"pkg": "d", "pkg/mod.py": "f", "up": "l"}
    out = io.BytesIO()
    write_tar(src, all_paths(manifest), out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        kinds = {m.name: (m.isdir(), m.issym(), m.size) for m in tar.getmembers()}
    assert kinds == {"pkg": (True, False, 0), "pkg/mod.py": (False, False, 6), "up": (False, True, 0)}
