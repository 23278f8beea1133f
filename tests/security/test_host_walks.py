"""The host's walks of a task's checkout (the copy's manifest, the disk meter) against a shaped tree.

The sandbox decides how wide and deep the checkout is and, with a mounted checkout, can swap a
folder for a link while the host walks it.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui.boundary.safe_fs import CheckoutRoot
from codex_tui.sandbox.disk import usage_bytes
from codex_tui.sandbox.sync import scan_host


@pytest.fixture
def few_descriptors() -> Iterator[int]:
    """The process may open only ~200 more files while the test runs (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 200, hard))
    try:
        yield used + 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_copys_manifest_of_a_very_wide_checkout_is_complete_and_holds_few_descriptors(
    tmp_path: Path, few_descriptors: int
) -> None:
    for index in range(1000):  # one folder per name: a walk holding a descriptor per folder runs out
        (tmp_path / f"d{index}").mkdir()
        (tmp_path / f"d{index}" / "f").write_bytes(b"x")
    manifest = scan_host(tmp_path)
    assert len(manifest) == 2000, "folders were skipped when the process ran out of descriptors"
    assert all(f"d{index}/f" in manifest for index in range(1000))


def test_the_disk_meter_never_follows_a_folder_swapped_for_a_link_during_its_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout, outside = tmp_path / "checkout", tmp_path / "host-secrets"
    (checkout / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "big.bin").write_bytes(os.urandom(8 << 20))
    real_scandir = os.scandir
    listed: list[object] = []

    def racing_scandir(folder: object = ".") -> object:
        """The sandbox wins the race: `sub` becomes a link right before the host lists it."""
        listed.append(folder)
        if len(listed) == 2:  # the checkout first, then `sub`
            (checkout / "sub").rmdir()
            (checkout / "sub").symlink_to(outside)
        return real_scandir(folder)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", racing_scandir)
    used = usage_bytes(checkout)
    assert len(listed) == 2, "the walk listed the checkout and the subfolder"
    assert used < 1 << 20, "the meter counted a host folder outside the checkout through the link"


def make_chain(root: Path, names: list[str], data: bytes) -> None:
    """Folders `names` nested in `root` (made through descriptors: the path may pass PATH_MAX), `data`
    in a file at the bottom."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("hidden.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)


def test_the_disk_meter_counts_data_hidden_deeper_than_a_path_can_name(tmp_path: Path) -> None:
    make_chain(tmp_path, ["d" * 250] * 40, os.urandom(4 << 20))  # 10,000 characters of path
    assert usage_bytes(tmp_path) >= 4 << 20, "data beyond PATH_MAX escaped the disk limit"


def test_the_disk_meter_walks_a_deep_comb_with_few_descriptors_and_counts_everything(
    tmp_path: Path, few_descriptors: int
) -> None:
    folder = tmp_path
    for _ in range(400):  # each level: a file, a leaf folder with a file, and the next level
        (folder / "f").write_bytes(b"x" * 5000)
        (folder / "leaf").mkdir()
        (folder / "leaf" / "g").write_bytes(b"y" * 5000)
        folder = folder / "n"
        folder.mkdir()
    expected = sum(
        os.lstat(os.path.join(top, name)).st_blocks * 512
        for top, dirs, files in os.walk(tmp_path)
        for name in dirs + files
    )
    assert usage_bytes(tmp_path) == expected


def test_the_diffs_scan_of_a_very_wide_checkout_is_complete_and_holds_few_descriptors(
    tmp_path: Path, few_descriptors: int
) -> None:
    for index in range(1000):  # breadth first, one open folder per name found ran out of descriptors
        (tmp_path / f"d{index}").mkdir()
        (tmp_path / f"d{index}" / "f").write_bytes(b"x")
    with CheckoutRoot(tmp_path) as root:
        paths = {entry.path for entry in root.scan(lambda _folder: True, lambda found: [True] * len(found))}
    assert len(paths) == 2000, "folders were skipped: their files were missing from the diff"
