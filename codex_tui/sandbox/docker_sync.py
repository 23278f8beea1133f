"""The Docker backend's workspace as data, for an engine that does not share this machine's files.

With `DOCKER_HOST` naming a remote engine (tcp://, ssh://…) a bind mount of the host checkout would
mount a folder of the *engine's* machine. Instead the container gets anonymous volumes (removed
with it) at /workspace, at each borrowed object folder and at `SYNC_DIR`, and the checkout travels
as tar streams, as for the Kubernetes backend (`sync.py`):

- at start, before anything ran in the container, the checkout (members owned by the commands' uid)
  and the borrowed object folders go in with `put_archive`;
- before each command, what the host changed since (apply_patch, undo) is put into `SYNC_DIR` (a
  folder only root writes) as a delete list and a tar, which an exec *as the commands' uid* applies
  in /workspace, so nothing is ever extracted by root into a tree the sandbox shaped;
- after each command the container's manifest (`sync.POD_MANIFEST`) is compared with the last one,
  and the changed files come back as a tar from `tar -c` in an exec, checked member by member by
  `sync.apply_pull` (THE SANDBOX BOUNDARY: no link followed, no special file, bounded sizes).

A read-only task's copy in the container is writable, but its commands' changes never come back;
before a command that is copied back (an escalated one) `revert` puts every path that changed in
the container since the last synchronisation back to the host's version, so the copy back carries
that command's changes only, never what earlier read-only commands wrote.

`sandbox.docker_sync` ("auto", "mount", "copy") overrides the choice; auto copies unless the engine
is reached through a unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Final

import docker
from docker.errors import DockerException
from docker.types import Mount

from codex_tui.boundary.terminal import strip_controls
from codex_tui.sandbox.base import ExecResult, SandboxError, SandboxSpec
from codex_tui.sandbox.engine import engine_location, in_thread
from codex_tui.sandbox.k8s_exec import Captured, ExecStatus
from codex_tui.sandbox.sync import (
    POD_MANIFEST,
    Manifest,
    PullLimits,
    SyncError,
    SyncState,
    all_paths,
    diff_manifests,
    nul_list,
    parse_pod_manifest,
    pull_changes,
    scan_host,
    write_tar,
)

WORKDIR: Final = "/workspace"
SYNC_DIR: Final = "/.codex-sync"
"""A volume only root (put_archive) writes: the lists and tars an exec reads."""
MANIFEST_MAX: Final = 64 << 20
SPOOL_MEMORY: Final = 8 << 20
STDERR_KEEP: Final = 4096
_LIST = f"cd {WORKDIR} || exit 1; " + POD_MANIFEST
_PUSH = (
    f'cd {WORKDIR} || exit 1; if [ -s "$1" ]; then xargs -0 -r chmod -R u+rwX -- < "$1" 2>/dev/null; '
    'xargs -0 -r rm -rf -- < "$1" || exit 1; fi; '
    'if [ -s "$2" ]; then tar -x -p -f "$2" || exit 1; fi; '
) + POD_MANIFEST
"""Host -> container, run as the commands' uid: delete the listed paths (made writable first: a
command may have locked a folder), extract the tar, then print the new manifest."""
PULL_SCRIPT: Final = (
    f'cd {WORKDIR} || exit 1; tar -c -f - --format=gnu --null --no-recursion --hard-dereference -T "$1"'
)
"""Container -> host: a tar of the listed paths (hard links stored as files)."""


def engine_is_local(location: str) -> bool:
    """Does the engine share this machine's files and pids? Only when reached through a unix socket."""
    return location.startswith("unix://") or location.startswith("/")


def copies_workspace(setting: str, location: str | None = None) -> bool:
    """Copy the checkout in and back ("copy", or "auto" with a remote engine) rather than mount it."""
    if setting in ("mount", "copy"):
        return setting == "copy"
    return not engine_is_local(location or engine_location())


class WorkspaceCopy:
    """One container's copy of the task's checkout: filled at start, synchronised around commands."""

    def __init__(self, spec: SandboxSpec, uid: int, gid: int) -> None:
        self.spec = spec
        self.uid, self.gid = uid, gid
        self.user = f"{uid}:{gid}"
        self.pull_script = PULL_SCRIPT
        """The container-side command of a copy back (a test replaces it to play a compromised one)."""
        limit = spec.limits.disk_mb << 20 if spec.limits.disk_mb else PullLimits().max_bytes
        self.pull_limits = PullLimits(max_bytes=limit)
        self._client: docker.DockerClient | None = None
        self._container = ""
        self._state = SyncState()
        self._unsynced = False
        """A command ran whose changes were not copied back: the container's copy may differ."""

    def describe(self) -> str:
        """How the workspace reaches the container, for the sandbox's one-line description."""
        return (
            "workspace copied in; only escalated commands' changes come back"
            if self.spec.read_only
            else "workspace copied in and back as data"
        )

    def mounts(self) -> list[Mount]:
        """Anonymous volumes (removed with the container) where the copies live."""
        targets = [WORKDIR, *map(str, self.spec.extra_ro_mounts), SYNC_DIR]
        return [Mount(target, None, type="volume") for target in targets]

    async def copy_in(self, client: docker.DockerClient, container_id: str) -> None:
        """Put the borrowed object folders and the checkout into a container nothing ran in yet."""
        self._client, self._container = client, container_id
        for borrowed in self.spec.extra_ro_mounts:
            await in_thread(self._put_tree, borrowed, str(borrowed))
        host = await in_thread(self._put_tree, self.spec.workspace, WORKDIR)
        self._state.host = host
        self._state.box = self._manifest_from(await self._capture(["sh", "-c", _LIST]), "list the workspace")

    def _put_tree(self, root: Path, dest: str) -> Manifest:
        assert self._client is not None
        return put_tree(self._client.api, self._container, root, dest, owner=(self.uid, self.gid))

    def _put_archive(self, dest: str, data: IO[bytes]) -> None:
        assert self._client is not None
        put_archive(self._client.api, self._container, dest, data)

    async def around(self, command: Callable[[], Awaitable[ExecResult]], *, pull: bool) -> ExecResult:
        """Push the host's changes, run `command`, then copy its changes back (when `pull`; also
        after an interrupted command), adding what was refused to the result's note."""
        try:
            if pull and self._unsynced:
                await self.revert()
            await self.push()
        except SyncError as exc:
            raise SandboxError(f"could not copy the host's changes into the sandbox: {exc}") from None
        self._unsynced = self._unsynced or not pull
        try:
            result = await command()
        except asyncio.CancelledError:
            if pull:  # what the interrupted command changed still comes back
                with contextlib.suppress(SandboxError, SyncError):
                    await self.pull()
            raise
        try:
            note = await self.pull() if pull else ""
        except SyncError as exc:
            note = f"the workspace was not copied back: {exc}"
        if note:
            result.note = f"{result.note}; {note}" if result.note else note
        return result

    async def push(self) -> None:
        """Send what the host changed since the last sync (apply_patch, undo) into the container."""
        host = await in_thread(scan_host, self.spec.workspace)
        changes = diff_manifests(self._state.host, host)
        if not changes:
            return
        await self._send(changes.delete, changes.copy, "copy changes into the sandbox")
        self._state.host = host

    async def revert(self) -> None:
        """Undo in the container what commands not copied back changed (a read-only task's): every
        path changed there since the last synchronisation is removed, then the host's version put
        back. SandboxError when that fails (the next command must not run on the tampered copy)."""
        box = self._manifest_from(await self._capture(["sh", "-c", _LIST]), "list the workspace")
        drift = diff_manifests(self._state.box, box)
        if drift:
            changed = {*drift.copy, *drift.delete}
            restore = [path for path in all_paths(self._state.host) if path in changed]
            await self._send(sorted(changed), restore, "undo the changes of commands not copied back")
        self._unsynced = False

    async def _send(self, delete: list[str], copy: list[str], what: str) -> None:
        """Delete `delete` in the container's copy, then put the host's `copy` there (commands' uid)."""
        await in_thread(self._put_push_files, nul_list(delete), copy)
        argv = ["sh", "-c", _PUSH, "sh", f"{SYNC_DIR}/delete.list", f"{SYNC_DIR}/push.tar"]
        self._state.box = self._manifest_from(await self._capture(argv), what)

    def _put_push_files(self, deleted: bytes, copied: list[str]) -> None:
        """`delete.list` and `push.tar` (empty when there is nothing of that kind) into SYNC_DIR."""
        with (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as inner,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as outer,
        ):
            size = write_tar(self.spec.workspace, copied, inner) if copied else 0
            inner.seek(0)
            with tarfile.open(fileobj=outer, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_file(tar, "delete.list", io.BytesIO(deleted), len(deleted))
                _add_file(tar, "push.tar", inner, size)
            outer.seek(0)
            self._put_archive(SYNC_DIR, outer)

    async def pull(self) -> str:
        """Copy what the last command changed back to the host checkout; a note of what was refused."""

        async def list_box() -> bytes:
            listing = await self._capture(["sh", "-c", _LIST])
            try:
                return self._ok(listing, "list the workspace").read()
            finally:
                listing.stdout.close()

        async def fetch(files: list[str], cap: int) -> tuple[IO[bytes], bool]:
            await in_thread(self._put_bytes, "pull.list", nul_list(files))
            out = await self._capture(["sh", "-c", self.pull_script, "sh", f"{SYNC_DIR}/pull.list"], cap)
            return out.stdout, out.overflow

        return await pull_changes(
            self._state, self.spec.workspace, self.pull_limits, list_box, fetch, in_thread
        )

    def _put_bytes(self, name: str, data: bytes) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_file(tar, name, io.BytesIO(data), len(data))
        buffer.seek(0)
        self._put_archive(SYNC_DIR, buffer)

    async def _capture(self, argv: list[str], max_stdout: int = MANIFEST_MAX) -> Captured:
        return await in_thread(self._capture_blocking, argv, max_stdout)

    def _capture_blocking(self, argv: list[str], max_stdout: int) -> Captured:
        """Run argv in the container as the commands' uid; stdout spooled up to `max_stdout` bytes."""
        assert self._client is not None
        api = self._client.api
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - handed to the caller
        err = bytearray()
        size, overflow = 0, False
        try:
            exec_id = api.exec_create(self._container, argv, user=self.user, workdir=WORKDIR)["Id"]
            for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
                if stdout and not overflow:
                    overflow = size + len(stdout) > max_stdout
                    if not overflow:
                        out.write(stdout)
                        size += len(stdout)
                if stderr:
                    err += stderr
                    del err[:-STDERR_KEEP]
            code = api.exec_inspect(exec_id).get("ExitCode")
        except DockerException as exc:
            out.close()
            raise SandboxError(f"the workspace copy for task {self.spec.task_id} failed: {exc}") from None
        out.seek(0)
        return Captured(ExecStatus(code if isinstance(code, int) else None), out, bytes(err), overflow)

    def _manifest_from(self, out: Captured, what: str) -> Manifest:
        try:
            manifest, _ = parse_pod_manifest(self._ok(out, what).read())
        except SyncError as exc:
            raise SandboxError(f"could not {what}: {exc}") from None
        finally:
            out.stdout.close()
        return manifest

    def _ok(self, out: Captured, what: str) -> IO[bytes]:
        if out.status.exit_code == 0 and not out.overflow:
            return out.stdout
        lines = strip_controls(out.stderr.decode("utf-8", "replace")).strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise SandboxError(
            f"could not {what} for task {self.spec.task_id} (exit {out.status.exit_code}){detail}"
        )


def put_tree(
    api: docker.APIClient, container_id: str, root: Path, dest: str, *, owner: tuple[int, int]
) -> Manifest:
    """Copy all of `root` (read without following links) to `dest` in a container; the manifest read.

    Blocking. Only for a container nothing untrusted ran in yet: the engine extracts as root.
    """
    try:
        manifest = scan_host(root)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
            write_tar(root, all_paths(manifest), spool, owner=owner)
            spool.seek(0)
            put_archive(api, container_id, dest, spool)
    except (SyncError, OSError) as exc:
        raise SandboxError(f"could not copy {root} into the container: {exc}") from None
    return manifest


def put_archive(api: docker.APIClient, container_id: str, dest: str, data: IO[bytes]) -> None:
    """Extract the tar `data` at `dest` in the container (blocking); SandboxError when it fails."""
    try:
        api.put_archive(container_id, dest, data)
    except DockerException as exc:
        raise SandboxError(f"could not copy files into the container: {exc}") from None


def _add_file(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    tar.addfile(info, data)
