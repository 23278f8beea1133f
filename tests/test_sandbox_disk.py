"""A checkout's disk limit: its own loop-mounted filesystem (as root), or the watchdog fallback."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from codex_tui.boundary.identity import sandbox_ids
from codex_tui.sandbox import disk
from codex_tui.sandbox.disk import (
    DiskError,
    DiskQuota,
    over_limit,
    provision,
    reattach,
    release,
    sweep,
    watch,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem image needs root")


def mount_options(path: Path) -> set[str]:
    """The options `findmnt` shows for the filesystem mounted at `path`; empty when none is."""
    done = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", "--mountpoint", str(path)], capture_output=True)
    return set(done.stdout.decode().strip().split(",")) - {""}


def loop_devices_of(image: Path) -> str:
    """`losetup` lines of the loop devices backed by `image`."""
    return subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout


@pytest.fixture
async def disks(tmp_path: Path) -> AsyncIterator[Path]:
    """A folder for checkouts and their images; every image left there is released after the test."""
    yield tmp_path
    await sweep(tmp_path, keep=[])


@pytest.fixture
def no_mounting(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as a non-root user sees it: no filesystem of its own for a checkout."""
    monkeypatch.setattr(disk, "_mount_blocker", lambda: "mounting needs root")


@needs_root
async def test_checkout_gets_its_own_small_filesystem_mounted_nosuid_nodev(disks: Path) -> None:
    checkout = disks / "t1"
    started = time.monotonic()
    quota = await provision(checkout, disks / "t1.state", 1024, owner=sandbox_ids())
    elapsed = time.monotonic() - started
    assert quota.mounted and quota.image is not None and not quota.watched
    assert {"nosuid", "nodev", "rw"} <= mount_options(checkout)
    assert list(checkout.iterdir()) == [], "no lost+found: git clones into an empty folder"
    assert (checkout.stat().st_uid, checkout.stat().st_gid) == sandbox_ids()
    other = await provision(disks / "t2", disks / "t2.state", 64)
    assert (other.checkout.stat().st_uid, other.checkout.stat().st_gid) == (os.getuid(), os.getgid())
    assert quota.image.stat().st_blocks * 512 < 16 * 2**20, "the image is sparse"
    assert not quota.image.is_relative_to(checkout)
    assert "1024 MB, its own filesystem" in quota.describe()
    assert elapsed < 0.5, f"provisioning took {elapsed:.2f} s"


@needs_root
async def test_writes_past_the_limit_fail_with_enospc_and_cost_the_host_only_the_limit(disks: Path) -> None:
    checkout = disks / "full"
    quota = await provision(checkout, disks / "state", 32)
    with pytest.raises(OSError) as error, (checkout / "big").open("wb") as out:
        for _ in range(1024):
            out.write(b"\0" * 2**20)
            out.flush()
            os.fsync(out.fileno())
    assert error.value.errno == errno.ENOSPC
    assert quota.image is not None and quota.image.stat().st_blocks * 512 < 40 * 2**20
    assert await over_limit(quota) == "", "a mounted checkout is limited by its filesystem, not the watchdog"


@needs_root
async def test_reattach_mounts_the_kept_image_again_with_the_files(disks: Path) -> None:
    checkout, state = disks / "again", disks / "state"
    first = await provision(checkout, state, 64)
    (checkout / "work.txt").write_text("kept\n")
    assert await reattach(checkout, state, 64) == first, "already mounted: nothing to do"
    subprocess.run(["umount", str(checkout)], check=True)  # as after a reboot
    assert not (checkout / "work.txt").exists()
    again = await reattach(checkout, state, 999)
    assert again.mounted and again.size_mb == 64, "the image's own size wins"
    assert (checkout / "work.txt").read_text() == "kept\n"
    assert {"nosuid", "nodev"} <= mount_options(checkout)


@needs_root
async def test_reattach_refuses_to_hide_files_written_into_the_bare_mount_point(disks: Path) -> None:
    checkout, state = disks / "hidden", disks / "state"
    await provision(checkout, state, 64)
    subprocess.run(["umount", str(checkout)], check=True)
    (checkout / "stray.txt").write_text("written while unmounted\n")
    with pytest.raises(DiskError, match="not empty"):
        await reattach(checkout, state, 64)


@needs_root
async def test_release_unmounts_and_deletes_the_image(disks: Path) -> None:
    checkout, state = disks / "gone", disks / "state"
    quota = await provision(checkout, state, 64)
    assert quota.image is not None
    (checkout / "file").write_text("x")
    await release(checkout, state)
    assert mount_options(checkout) == set() and list(checkout.iterdir()) == []
    assert not quota.image.exists() and list(state.iterdir()) == []
    for _ in range(50):  # the loop device is freed once the kernel lets go of it
        if not loop_devices_of(quota.image):
            break
        await asyncio.sleep(0.02)
    assert loop_devices_of(quota.image) == ""
    await release(checkout, state)  # twice is fine


@needs_root
async def test_sweep_releases_images_whose_checkout_is_gone_or_unknown(disks: Path) -> None:
    kept, dropped, deleted = disks / "kept", disks / "dropped", disks / "deleted"
    quotas = [await provision(path, disks / f"{path.name}.state", 32) for path in (kept, dropped, deleted)]
    await release_mount_only(deleted)
    deleted.rmdir()
    released = await sweep(disks, keep=[kept, deleted])
    assert sorted(released) == sorted([dropped.resolve(), deleted.resolve()])
    assert quotas[0].image is not None and quotas[0].image.exists() and mount_options(kept)
    assert mount_options(dropped) == set()
    assert all(q.image is not None and not q.image.exists() for q in quotas[1:])


async def release_mount_only(checkout: Path) -> None:
    """Unmount a checkout's filesystem but keep its image (a checkout deleted behind our back)."""
    await asyncio.to_thread(subprocess.run, ["umount", str(checkout)], check=True)


async def test_provision_refuses_a_folder_with_files_and_an_image_folder_inside_it(disks: Path) -> None:
    busy = disks / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    with pytest.raises(DiskError, match="not empty"):
        await provision(busy, disks / "state", 64)
    with pytest.raises(DiskError, match="must not be inside the checkout"):
        await provision(disks / "fresh", disks / "fresh" / ".state", 64)


async def test_zero_means_no_limit(disks: Path) -> None:
    quota = await provision(disks / "free", disks / "state", 0)
    assert not quota.mounted and not quota.watched
    assert quota.describe() == "disk: no limit (sandbox.disk_mb = 0)"
    assert await over_limit(quota) == ""


async def test_without_mounting_the_watchdog_reports_a_checkout_over_its_limit(
    disks: Path, no_mounting: None
) -> None:
    checkout = disks / "watched"
    quota = await provision(checkout, disks / "state", 2)
    quota.measure_every_s = 0  # measure at every check (the default waits between walks)
    assert quota.watched and not quota.mounted
    assert "watched" in quota.describe() and "mounting needs root" in quota.describe()
    (checkout / "small").write_bytes(b"x" * 100_000)
    assert await over_limit(quota) == ""
    (checkout / "sub").mkdir()
    (checkout / "sub" / "big").write_bytes(os.urandom(3 * 2**20))
    os.link(checkout / "sub" / "big", checkout / "hard-link")  # counted once
    os.symlink("/usr", checkout / "link-out")  # never followed
    message = await over_limit(quota)
    assert message.startswith("disk limit exceeded: the task's checkout holds 3 MB, more than its 2 MB")
    assert "sandbox.disk_mb" in message


async def test_watch_returns_once_the_limit_is_passed(disks: Path, no_mounting: None) -> None:
    checkout = disks / "watched"
    quota = await provision(checkout, disks / "state", 1)
    quota.measure_every_s = 0
    watcher = asyncio.create_task(watch(quota, interval_s=0.05))
    await asyncio.sleep(0.2)
    assert not watcher.done()
    (checkout / "big").write_bytes(os.urandom(2 * 2**20))
    message = await asyncio.wait_for(watcher, 5)
    assert "disk limit exceeded" in message


async def test_watch_never_returns_for_an_unlimited_checkout(disks: Path) -> None:
    quota = DiskQuota(disks, 0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watch(quota, interval_s=0.01), 0.2)
