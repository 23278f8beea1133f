"""Per-repository setup images: the cache key, running the setup and maintenance scripts, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound
from docker.types import LogConfig, Mount

from codex_tui.sandbox.base import OutputCallback, SandboxError, SandboxLimits
from codex_tui.sandbox.build_output import BuildOutput
from codex_tui.sandbox.docker_sync import copies_workspace, put_tree
from codex_tui.sandbox.engine import (
    LABEL_TASK,
    ClientFactory,
    get_client,
    in_thread,
    owner_labels,
)
from codex_tui.sandbox.environment import Environment, SecretMasker
from codex_tui.sandbox.image import DEFAULT_IMAGE

SETUP_SCRIPT_PATH = ".codex-tui/setup.sh"
LOCK_FILE_PATTERNS = (
    "requirements*.txt",
    "package-lock.json",
    "poetry.lock",
    "uv.lock",
    "Cargo.lock",
    "go.sum",
)
MAX_HASHED_FILE_BYTES = 16 * 1024 * 1024
ENV_LABEL = "codex-tui.env-of"
ENV_REPO_LABEL = "codex-tui.env-repo"
"""The repository path a setup image was built for; `prune_env_images` keeps the newest per repository."""
ENV_REPOSITORY = "codex-tui-env"
MAINTAINED_LABEL = "codex-tui.env-maintenance-key"
"""The maintenance key (script + the files it names) the image's contents are current for."""
_PLAIN_DEFINITION = Environment().definition()

_env_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def resolve_setup_script(repo: Path, setup_script: str | None) -> str | None:
    """The setup script to run: the configured `setup`, else `.codex-tui/setup.sh` in the repo."""
    if setup_script and setup_script.strip():
        return setup_script
    path = repo / SETUP_SCRIPT_PATH
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text if text.strip() else None


def setup_inputs(repo: Path, script: str, environment: Environment | None = None) -> list[Path]:
    """Lock files whose contents decide the cache key: common ones plus files the script names,
    minus the files a maintenance script refreshes (those decide `maintenance_key` instead)."""
    found: set[Path] = set()
    root = repo.resolve()
    for pattern in LOCK_FILE_PATTERNS:
        found.update(p for p in root.glob(pattern) if p.is_file())
    for token in set(re.findall(r"[\w][\w.\-/]*", script)):
        candidate = (root / token).resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            found.add(candidate)
    if environment is not None and environment.maintenance:
        found -= set(maintenance_inputs(repo, environment))
    return sorted(found)


def maintenance_inputs(repo: Path, environment: Environment) -> list[Path]:
    """The files `maintenance_inputs` names: repository-relative paths or glob patterns, files only."""
    root = repo.resolve()
    found: set[Path] = set()
    for pattern in environment.maintenance_inputs:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            continue
        for path in root.glob(pattern):
            resolved = path.resolve()
            if resolved.is_file() and resolved.is_relative_to(root):
                found.add(resolved)
    return sorted(found)


def _hash_files(digest: Any, root: Path, paths: list[Path]) -> None:
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        try:
            if path.stat().st_size <= MAX_HASHED_FILE_BYTES:
                digest.update(path.read_bytes())
            else:
                digest.update(str(path.stat().st_size).encode())
        except OSError:
            digest.update(b"unreadable")
        digest.update(b"\0")


def env_image_tag(base_id: str, repo: Path, script: str, environment: Environment | None = None) -> str:
    """`codex-tui-env:<hash>` of (base image id, script, lock files, environment definition); blocking.

    The definition holds plain variables, secret *names* and the maintenance script; never a
    secret's value.
    """
    digest = hashlib.sha256()
    definition = environment.definition() if environment is not None else _PLAIN_DEFINITION
    # An environment that adds nothing keeps the tags images had before environments existed.
    parts = [base_id, script] + ([definition] if definition != _PLAIN_DEFINITION else [])
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    root = repo.resolve()
    _hash_files(digest, root, setup_inputs(repo, script, environment))
    return f"codex-tui-env:{digest.hexdigest()[:16]}"


def maintenance_key(repo: Path, environment: Environment) -> str:
    """Hash of the maintenance script and the files it names; "" when there is no maintenance script."""
    if not environment.maintenance:
        return ""
    digest = hashlib.sha256(environment.maintenance.encode() + b"\0")
    _hash_files(digest, repo.resolve(), maintenance_inputs(repo, environment))
    return digest.hexdigest()[:16]


SecretsSource = Callable[[], dict[str, str]]
"""Returns the secrets' values; called only when a setup or maintenance script actually runs."""


async def ensure_env_image(
    base: str,
    repo: Path,
    setup_script: str | None,
    on_output: OutputCallback | None = None,
    *,
    client_factory: ClientFactory | None = None,
    timeout_s: float = 1800.0,
    limits: SandboxLimits | None = None,
    environment: Environment | None = None,
    secrets: SecretsSource | None = None,
    maintenance: bool = False,
) -> str:
    """The image a task on `repo` starts from: `base`, or a cached image with the setup script run.

    The setup container gets the task containers' memory and pids `limits`. When the cached image
    is reused, the environment's maintenance script runs on it first if the files it names
    changed since (or on every reuse when asked, or when `maintenance` is True); the result
    replaces the cached image.
    """
    env = environment or Environment()
    script = await asyncio.to_thread(resolve_setup_script, repo, setup_script or env.setup)
    if script is None:
        return base
    client = await get_client(client_factory)
    base_id = await in_thread(_image_id, client, base)
    tag = await asyncio.to_thread(env_image_tag, base_id, repo, script, env)
    key = await asyncio.to_thread(maintenance_key, repo, env)
    wanted = bool(key) and (maintenance or env.maintenance_every_reuse)
    labels = await in_thread(_image_labels, client, tag)
    if labels is not None and not wanted and labels.get(MAINTAINED_LABEL, "") == key:
        return tag
    lock = _env_locks.setdefault(asyncio.get_running_loop(), {}).setdefault(tag, asyncio.Lock())
    async with lock, _file_lock(tag):
        labels = await in_thread(_image_labels, client, tag)
        if labels is not None and not wanted and labels.get(MAINTAINED_LABEL, "") == key:
            return tag
        values = await asyncio.to_thread(secrets) if secrets is not None else {}
        emit = BuildOutput(on_output, masker=SecretMasker(values))
        if labels is None:
            setup = _Setup(base, base_id, repo, script, tag, limits or SandboxLimits(), env.env, values, key)
            await _run_setup(client, setup, emit, timeout_s)
        else:
            assert env.maintenance is not None
            job = _Setup(
                tag, base_id, repo, env.maintenance, tag, limits or SandboxLimits(), env.env, values, key
            )
            await _run_setup(client, job, emit, timeout_s, maintenance=True)
    return tag


def _image_labels(client: docker.DockerClient, name: str) -> dict[str, str] | None:
    """The image's labels, or None when it does not exist."""
    try:
        attrs = client.images.get(name).attrs
    except ImageNotFound:
        return None
    except DockerException as exc:
        raise SandboxError(f"cannot inspect image {name}: {exc}") from None
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def _image_id(client: docker.DockerClient, name: str) -> str:
    try:
        return str(client.images.get(name).id)
    except ImageNotFound:
        raise SandboxError(
            f"sandbox image {name} not found: run `codex-tui sandbox build`"
            + ("" if name == DEFAULT_IMAGE else f" or build/pull {name}")
        ) from None
    except DockerException as exc:
        raise SandboxError(f"cannot inspect image {name}: {exc}") from None


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except ImageNotFound:
        return False
    except DockerException as exc:
        raise SandboxError(f"cannot inspect image {name}: {exc}") from None


@contextlib.asynccontextmanager
async def _file_lock(tag: str) -> AsyncIterator[None]:
    """Cross-process lock so two codex-tui processes do not build the same setup image at once."""
    path = Path(tempfile.gettempdir()) / f"codex-tui-{tag.replace(':', '-').replace('/', '-')}.lock"
    fd = await asyncio.to_thread(os.open, str(path), os.O_CREAT | os.O_RDWR, 0o666)
    locked = False
    try:
        while not locked:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                await asyncio.sleep(0.2)
        yield
    finally:
        # Holders re-check the image after locking, so unlinking here at worst lets a waiter on
        # the old file and a newcomer both find the finished image; /tmp does not fill with locks.
        if locked:
            path.unlink(missing_ok=True)
        os.close(fd)


_SETUP_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -e -c "$1"; else exec sh -e -c "$1"; fi'
_SETUP_CAP_DROP = ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT"]
"""Default capabilities the setup never needs; it keeps those package managers use (chown, setuid…)."""


@dataclass(slots=True)
class _Setup:
    """One setup (or maintenance) run: the image to run it in, the repository, its script, the
    tag to cache it as, and what it gets: plain variables and the secrets' values."""

    base: str
    base_id: str
    repo: Path
    script: str
    tag: str
    limits: SandboxLimits
    env: dict[str, str]
    secrets: dict[str, str]
    maintenance_key: str = ""


def _setup_host_config(api: docker.APIClient, setup: _Setup) -> dict[str, Any]:
    """The task containers' memory and pids limits and no-new-privileges, a capped log.

    Unlike a task container the setup runs as root with the network on and a writable root
    filesystem: it installs packages, and what it writes becomes the cached image. It runs
    the repository's own script before any task, with the repository mounted read-only; a remote
    engine (docker_sync.py) gets a copy in a volume instead (volumes are not committed either).
    """
    memory = f"{setup.limits.memory_mb}m"
    repo: dict[str, Any] = {"binds": {str(setup.repo.resolve()): {"bind": "/workspace", "mode": "ro"}}}
    if copies_workspace("auto"):
        repo = {"mounts": [Mount("/workspace", None, type="volume")]}
    return dict(
        api.create_host_config(
            **repo,
            init=True,
            network_mode="bridge",
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=setup.limits.pids,
            cap_drop=_SETUP_CAP_DROP,
            security_opt=["no-new-privileges"],
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        )
    )


_SETUP_KEEPER = ["sh", "-c", "while :; do sleep 3600; done"]
"""The setup container's main process; the script itself runs as a `docker exec` beside it."""


async def _run_setup(
    client: docker.DockerClient,
    setup: _Setup,
    emit: BuildOutput,
    timeout_s: float,
    *,
    maintenance: bool = False,
) -> None:
    """Run the script in a container of `setup.base` and commit the result as `setup.tag`.

    The container's own environment (which `docker commit` copies into the image) holds only
    plain variables; the secrets reach the script as the exec's environment, which is not part
    of the container's config, so the cached image's config and history never hold them.
    """
    what = "maintenance script" if maintenance else "setup script"
    emit("stdout", f"running the {what} for {setup.repo} in {setup.base} (cached as {setup.tag})\n".encode())
    api = client.api
    plain = {"HOME": "/root", "DEBIAN_FRONTEND": "noninteractive", **setup.env}
    created = await in_thread(
        api.create_container,
        setup.base,
        command=_SETUP_KEEPER,
        working_dir="/workspace",
        environment=plain,
        labels={**owner_labels(), LABEL_TASK: f"setup:{setup.tag}"},
        host_config=_setup_host_config(api, setup),
    )
    container_id = str(created["Id"])
    old_id = await in_thread(_image_id, client, setup.tag) if maintenance else ""
    try:
        if copies_workspace("auto"):
            await in_thread(put_tree, api, container_id, setup.repo.resolve(), "/workspace", owner=(0, 0))
        await in_thread(api.start, container_id)
        command = ["sh", "-c", _SETUP_SHELL, "setup", setup.script]
        exec_id = (
            await in_thread(api.exec_create, container_id, command, environment={**plain, **setup.secrets})
        )["Id"]
        stream = await in_thread(api.exec_start, exec_id, stream=True, demux=True)
        code = await _wait_exec(client, container_id, exec_id, _pump_logs(stream, emit), emit, timeout_s)
        emit.flush()
        if code != 0:
            raise SandboxError(f"the {what} failed (exit {code}); last lines:\n{emit.tail_text()}")
        labels = f"{MAINTAINED_LABEL}={json.dumps(setup.maintenance_key)}"
        if not maintenance:
            labels += (
                f' {ENV_LABEL}="{setup.base_id}" codex-tui.env-created="{int(time.time())}" '
                f"{ENV_REPO_LABEL}={json.dumps(str(setup.repo.resolve()), ensure_ascii=False)}"
            )
        changes = ['CMD ["/bin/bash"]', "WORKDIR /workspace", f"LABEL {labels}"]
        repository, _, version = setup.tag.partition(":")
        await in_thread(api.commit, container_id, repository=repository, tag=version, changes=changes)
        emit(
            "stdout", f"cached the {'maintained image' if maintenance else 'setup'} as {setup.tag}\n".encode()
        )
    except DockerException as exc:
        message = emit.masker.mask_text(str(exc)) if emit.masker is not None else str(exc)
        raise SandboxError(f"the {what} could not run: {message}\n{emit.tail_text()}") from None
    finally:
        with contextlib.suppress(DockerException, SandboxError):  # the engine may be gone: swept later
            await in_thread(api.remove_container, container_id, force=True, v=True)
    if old_id:
        with contextlib.suppress(DockerException, SandboxError):  # still used by a running task: kept
            await in_thread(api.remove_image, old_id)


def _pump_logs(
    stream: Iterable[tuple[bytes | None, bytes | None]], emit: BuildOutput
) -> asyncio.Future[None]:
    """Read the setup container's demuxed output in a dedicated thread; the future ends with it."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def pump() -> None:
        try:
            for stdout, stderr in stream:
                if stdout:
                    emit("stdout", stdout)
                if stderr:
                    emit("stderr", stderr)
        except Exception as exc:
            emit("stderr", f"(log stream ended: {exc})\n".encode())
        finally:
            done.get_loop().call_soon_threadsafe(_resolve, done)

    threading.Thread(target=pump, name="codex-setup-logs", daemon=True).start()
    return done


async def _wait_exec(
    client: docker.DockerClient,
    container_id: str,
    exec_id: str,
    pumped: asyncio.Future[None],
    emit: BuildOutput,
    timeout_s: float,
) -> int:
    """The script's exit code once its output ended; kills the container and raises after `timeout_s`."""
    try:
        await asyncio.wait_for(asyncio.shield(pumped), timeout_s)
    except TimeoutError:
        with contextlib.suppress(DockerException, SandboxError):
            await in_thread(client.api.kill, container_id)
        message = f"the setup script did not finish in {timeout_s:.0f} s:\n{emit.tail_text()}"
        raise SandboxError(message) from None
    info = await in_thread(client.api.exec_inspect, exec_id)
    code = info.get("ExitCode")
    return 1 if code is None else int(code)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
