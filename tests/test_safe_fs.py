"""The host's only way into a checkout: no links followed, regular files only, bounded, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from codex_tui.boundary.safe_fs import CheckoutRoot, UnsafePath, remove_tree, split_relative
from codex_tui.workspace.applyback import link_escapes


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "checkout"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "a.txt").write_text("a\n")
    (root / "to-secret").symlink_to(outside / "secret.txt")
    (root / "to-outside").symlink_to(outside)
    os.mkfifo(root / "fifo")
    return root, outside


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../../x", ".git/config", "sub/.GIT/hooks/pre-commit", "", "."]
)
def test_paths_that_escape_or_touch_git_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        split_relative(path)


def test_reads_refuse_links_fifos_and_oversized_files(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with CheckoutRoot(root) as files:
        assert files.read_file("a.txt", 10) == b"a\n"
        for path, reason in [
            ("to-secret", "symbolic link"),
            ("fifo", "FIFO"),
            ("to-outside/secret.txt", "link"),
        ]:
            with pytest.raises(UnsafePath, match=reason):
                files.read_file(path, 100)
        with pytest.raises(UnsafePath, match="too large"):
            files.read_file("a.txt", 1)
        assert files.read_file("a.txt", 1, truncate=True) == b"a"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_never_opened(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    os.mknod(root / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    with CheckoutRoot(root) as files, pytest.raises(UnsafePath, match="device"):
        files.read_file("zero", 1 << 30)


def test_writes_replace_links_instead_of_writing_through_them(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    with CheckoutRoot(root) as files:
        files.write_file("to-secret", b"mine\n")
        with pytest.raises(UnsafePath, match="not a folder"):
            files.write_file("to-outside/new.txt", b"x")
        files.write_file("new/deep/file.txt", b"deep\n", executable=True)
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not (root / "to-secret").is_symlink() and (root / "to-secret").read_text() == "mine\n"
    assert os.stat(root / "new/deep/file.txt").st_mode & 0o100


def test_remove_tree_deletes_links_not_their_targets_and_unlocks_folders(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    locked = root / "locked"
    locked.mkdir()
    (locked / "f").write_text("x")
    locked.chmod(0o555)
    remove_tree(root)
    assert not root.exists()
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_scan_skips_git_and_marks_special_files(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    with CheckoutRoot(root) as files:
        found = {e.path: e.kind for e in files.scan(lambda _p: True, lambda es: [True] * len(es))}
    assert found == {"a.txt": "file", "fifo": "other", "to-outside": "symlink", "to-secret": "symlink"}


@pytest.mark.parametrize(
    ("path", "target", "escapes"),
    [
        ("a", "/etc/passwd", True),
        ("a", "../x", True),
        ("sub/a", "../b", False),
        ("sub/a", "../../b", True),
        ("a", ".git/hooks/pre-commit", True),
        ("a", "b/c", False),
    ],
)
def test_links_leaving_the_repository_are_recognised(path: str, target: str, escapes: bool) -> None:
    assert link_escapes(path, target) is escapes
