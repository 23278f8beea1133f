"""Sandbox images: build the default image without a registry, and cache per-repository setup images.

`python -m codex_tui.sandbox.image build|status|prune` runs the same code as
`codex-tui sandbox build|status|prune`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.types import LogConfig

from codex_tui.sandbox.base import OutputCallback, SandboxError, SandboxLimits, Stream
from codex_tui.sandbox.engine import (
    LABEL_TASK,
    ClientFactory,
    engine_reachable,
    get_client,
    in_thread,
    owner_labels,
    shared_client,
)
from codex_tui.sandbox.environment import Environment, SecretMasker

DEFAULT_IMAGE = "codex-tui-sandbox:latest"
IMAGE_VERSION = "1"
"""Bump when the default image's contents change; older images are then reported stale and rebuilt."""
VERSION_LABEL = "codex-tui.image-version"
DEBIAN_BASE = "debian:bookworm-slim"
SUITE = "bookworm"
PACKAGES = (
    "bash",
    "coreutils",
    "git",
    "python3",
    "python3-venv",
    "gcc",
    "make",
    "libc6-dev",
    "ca-certificates",
    "procps",
)
BROWSER_IMAGE = "codex-tui-sandbox-browser:latest"
"""The default image plus a headless browser (`codex-tui sandbox build --browser`)."""
BROWSER_PACKAGES = ("chromium", "fonts-liberation", "fonts-dejavu-core", "dbus-x11")
"""dbus-x11 provides the `dbus-session-bus` dconf needs (debootstrap does not resolve virtual packages)."""
BROWSER_LABEL = "codex-tui.browser"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PULL_TIMEOUT_S = 20
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
LOG_TAIL_LINES = 30

_STRIP_PATHS = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/log",
)

_env_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(slots=True)
class ImageStatus:
    """What `codex-tui sandbox status` shows."""

    engine_ok: bool
    engine_message: str
    """Engine version when reachable, else the clear "not reachable" message."""
    tag: str
    present: bool = False
    image_id: str = ""
    size_mb: float = 0.0
    created: str = ""
    version: str = ""
    """The image's version label; differs from IMAGE_VERSION when the image is stale."""

    @property
    def current(self) -> bool:
        """Present and built by this version of codex-tui."""
        return self.present and self.version == IMAGE_VERSION

    def summary(self) -> str:
        """One or two lines for the terminal."""
        if not self.engine_ok:
            return self.engine_message
        if not self.present:
            return f"engine {self.engine_message}; image {self.tag}: missing (run `codex-tui sandbox build`)"
        stale = "" if self.current else f" — stale (version {self.version or '?'}, want {IMAGE_VERSION})"
        return (
            f"engine {self.engine_message}; image {self.tag}: {self.image_id[7:19]} "
            f"{self.size_mb:.0f} MB, created {self.created}{stale}"
        )


class _Emitter:
    """Hands output produced in worker threads to `on_output` on the event loop, line by line."""

    def __init__(
        self,
        on_output: OutputCallback | None,
        tail_lines: int = LOG_TAIL_LINES,
        masker: SecretMasker | None = None,
    ) -> None:
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.masker = masker
        """Secrets of the setup run: masked before anything is kept or forwarded."""

    def __call__(self, stream: Stream, data: bytes) -> None:
        """Thread-safe: mask secrets, remember the tail and forward the chunk to the loop."""
        if self.masker is not None:
            data = self.masker.feed(stream, data)
        self._forward(stream, data)

    def flush(self) -> None:
        """Release what the masker held back (the output ended)."""
        if self.masker is not None:
            for stream in ("stdout", "stderr"):
                self._forward(stream, self.masker.flush(stream))  # type: ignore[arg-type]

    def _forward(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        text = data.decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.tail.append(line.rstrip())
        if self._on_output is not None:
            self._loop.call_soon_threadsafe(self._on_output, stream, data)

    def tail_text(self) -> str:
        """The last lines seen, for error messages."""
        return "\n".join(self.tail)


# --- status ------------------------------------------------------------------------------------


def _image_status_sync(tag: str, client_factory: ClientFactory | None) -> ImageStatus:
    ok, message = engine_reachable(client_factory)
    status = ImageStatus(engine_ok=ok, engine_message=message, tag=tag)
    if not ok:
        return status
    client = (client_factory or shared_client)()
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return status
    except DockerException as exc:
        status.engine_message = f"{message}; cannot inspect {tag}: {exc}"
        return status
    attrs = image.attrs
    status.present = True
    status.image_id = image.id or ""
    status.size_mb = float(attrs.get("Size", 0)) / 1e6
    status.created = str(attrs.get("Created", ""))[:19].replace("T", " ")
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    status.version = str(labels.get(VERSION_LABEL, ""))
    return status


async def image_status(tag: str = DEFAULT_IMAGE, client_factory: ClientFactory | None = None) -> ImageStatus:
    """Engine reachable? image present? its size, creation time and version."""
    return await in_thread(_image_status_sync, tag, client_factory)


# --- default image -----------------------------------------------------------------------------


async def ensure_default_image(
    tag: str = DEFAULT_IMAGE,
    on_output: OutputCallback | None = None,
    client_factory: ClientFactory | None = None,
    *,
    browser: bool | None = None,
) -> str:
    """Build the default image only when it is missing or stale; returns its id."""
    status = await image_status(tag, client_factory)
    if not status.engine_ok:
        raise SandboxError(status.engine_message)
    if status.current:
        return status.image_id
    return await build_default_image(tag, on_output, client_factory=client_factory, browser=browser)


def image_packages(browser: bool) -> tuple[str, ...]:
    """The Debian packages of the default image, plus chromium and fonts for the browser variant."""
    return PACKAGES + BROWSER_PACKAGES if browser else PACKAGES


async def build_default_image(
    tag: str = DEFAULT_IMAGE,
    on_output: OutputCallback | None = None,
    *,
    client_factory: ClientFactory | None = None,
    browser: bool | None = None,
) -> str:
    """Build the default image: from a Debian base image when one is at hand, else by debootstrap.

    `browser` adds Debian's chromium and fonts (None: only when `tag` is BROWSER_IMAGE).
    """
    client = await get_client(client_factory)
    emit = _Emitter(on_output)
    with_browser = tag == BROWSER_IMAGE if browser is None else browser
    packages = image_packages(with_browser)
    labels = {
        VERSION_LABEL: IMAGE_VERSION,
        "codex-tui.image": tag,
        BROWSER_LABEL: "1" if with_browser else "0",
    }
    if await in_thread(_base_image_available, client, emit):
        emit("stdout", f"building {tag} from {DEBIAN_BASE}\n".encode())
        await in_thread(_docker_build, client, tag, emit, packages, labels)
    else:
        emit("stdout", f"no {DEBIAN_BASE} image available: bootstrapping {tag} with debootstrap\n".encode())
        await _bootstrap_build(client, tag, emit, packages, labels)
    image = await in_thread(client.images.get, tag)
    emit("stdout", f"built {tag} ({image.id})\n".encode())
    return str(image.id)


def _base_image_available(client: docker.DockerClient, emit: _Emitter) -> bool:
    try:
        client.images.get(DEBIAN_BASE)
        return True
    except ImageNotFound:
        pass
    emit("stdout", f"trying to pull {DEBIAN_BASE} (up to {PULL_TIMEOUT_S} s)\n".encode())
    try:
        puller = docker.from_env(timeout=PULL_TIMEOUT_S).api
        repo, _, tag = DEBIAN_BASE.partition(":")
        puller.pull(repo, tag=tag)
        client.images.get(DEBIAN_BASE)
        return True
    except Exception as exc:
        emit("stdout", f"pull failed: {str(exc).splitlines()[0][:200]}\n".encode())
        return False


def _dockerfile(packages: tuple[str, ...], labels: dict[str, str]) -> str:
    strip = " ".join(f"/{p}/*" for p in _STRIP_PATHS)
    return "\n".join(
        [
            f"FROM {DEBIAN_BASE}",
            "ENV DEBIAN_FRONTEND=noninteractive",
            "RUN apt-get update -q && apt-get install -y -q --no-install-recommends "
            + " ".join(packages)
            + f" && rm -rf {strip}",
            "RUN " + _finish_rootfs_shell("/"),
            f"ENV PATH={IMAGE_PATH} LANG=C.UTF-8",
            "LABEL " + _label_words(labels),
            "WORKDIR /workspace",
            'CMD ["/bin/bash"]',
            "",
        ]
    )


def _finish_rootfs_shell(root: str) -> str:
    """Shell commands shared by both build paths: /tmp, /workspace, git safe.directory."""
    r = root.rstrip("/")
    return (
        f"mkdir -p {r}/tmp {r}/workspace && chmod 1777 {r}/tmp && chmod 0777 {r}/workspace && "
        f"printf '[safe]\\n\\tdirectory = *\\n' > {r}/etc/gitconfig"
    )


def _label_words(labels: dict[str, str]) -> str:
    return " ".join(f'{key}="{value}"' for key, value in labels.items())


def _docker_build(
    client: docker.DockerClient, tag: str, emit: _Emitter, packages: tuple[str, ...], labels: dict[str, str]
) -> None:
    dockerfile = io.BytesIO(_dockerfile(packages, labels).encode())
    try:
        for chunk in client.api.build(fileobj=dockerfile, tag=tag, rm=True, forcerm=True, decode=True):
            if "stream" in chunk:
                emit("stdout", str(chunk["stream"]).encode())
            if "error" in chunk:
                raise SandboxError(f"building {tag} failed: {chunk['error']}\n{emit.tail_text()}")
    except DockerException as exc:
        raise SandboxError(f"building {tag} failed: {exc}\n{emit.tail_text()}") from None


async def _bootstrap_build(
    client: docker.DockerClient, tag: str, emit: _Emitter, packages: tuple[str, ...], labels: dict[str, str]
) -> None:
    debootstrap = await _ensure_debootstrap(emit)
    mirror = debian_mirror()
    root = Path(tempfile.mkdtemp(prefix="codex-tui-rootfs-", dir="/var/tmp"))
    try:
        argv = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(packages)}",
            SUITE,
            str(root),
            mirror,
        ]
        emit("stdout", f"$ {' '.join(argv)}\n".encode())
        code = await _run_streaming(argv, emit)
        if code != 0:
            raise SandboxError(f"debootstrap failed (exit {code}):\n{emit.tail_text()}")
        await in_thread(_finish_rootfs, root)
        await in_thread(_import_rootfs, client, root, tag, emit, labels)
    finally:
        await in_thread(shutil.rmtree, root, True)


async def _ensure_debootstrap(emit: _Emitter) -> str:
    found = _which_sbin("debootstrap")
    if found:
        if os.geteuid() != 0:
            raise SandboxError(
                "building the sandbox image needs root for debootstrap: "
                "run `sudo codex-tui sandbox build` (or make a debian:bookworm-slim image available)"
            )
        return found
    if os.geteuid() != 0:
        raise SandboxError(
            "building the sandbox image needs debootstrap and root: "
            "`sudo apt-get install debootstrap && sudo codex-tui sandbox build`"
        )
    emit("stdout", b"installing debootstrap\n")
    code = await _run_streaming(["apt-get", "install", "-y", "-q", "debootstrap"], emit)
    if code != 0:
        await _run_streaming(["apt-get", "update", "-q"], emit)
        code = await _run_streaming(["apt-get", "install", "-y", "-q", "debootstrap"], emit)
    found = _which_sbin("debootstrap")
    if code != 0 or not found:
        raise SandboxError(f"could not install debootstrap (apt-get exit {code}):\n{emit.tail_text()}")
    return found


def _which_sbin(name: str) -> str | None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(name, path=path)


async def _run_streaming(argv: list[str], emit: _Emitter) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    except OSError as exc:
        emit("stderr", f"cannot run {argv[0]}: {exc.strerror}\n".encode())
        return 127
    assert proc.stdout is not None
    while chunk := await proc.stdout.read(65536):
        emit("stdout", chunk)
    return await proc.wait()


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first Debian archive URI configured for apt (one-line or deb822 format)."""
    for uri, suites in _apt_sources(apt_dir):
        if SUITE in suites and "security" not in uri:
            return uri
    for uri, _ in _apt_sources(apt_dir):
        if "security" not in uri:
            return uri
    raise SandboxError(f"no Debian mirror found in {apt_dir}/sources.list(.d); cannot bootstrap the image")


def _apt_sources(apt_dir: Path) -> Iterator[tuple[str, list[str]]]:
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            yield from _deb822_sources(text)
        elif path.name == "sources.list" or path.suffix == ".list":
            yield from _one_line_sources(text)


def _one_line_sources(text: str) -> Iterator[tuple[str, list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def _deb822_sources(text: str) -> Iterator[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split()


def _finish_rootfs(root: Path) -> None:
    for rel in _STRIP_PATHS:
        target = root / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    subprocess.run(["sh", "-c", _finish_rootfs_shell(str(root))], check=True)


def _import_rootfs(
    client: docker.DockerClient, root: Path, tag: str, emit: _Emitter, labels: dict[str, str]
) -> None:
    repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    changes = [
        'CMD ["/bin/bash"]',
        f"ENV PATH={IMAGE_PATH}",
        "ENV LANG=C.UTF-8",
        "WORKDIR /workspace",
        "LABEL " + _label_words(labels),
    ]
    emit("stdout", f"importing {root} as {tag}\n".encode())
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert tar.stdout is not None
        out = client.api.import_image(
            src=tar.stdout, repository=repository, tag=version or "latest", changes=changes, stream_src=True
        )
        emit("stdout", (str(out).strip() + "\n").encode())
    except DockerException as exc:
        raise SandboxError(f"docker import of {tag} failed: {exc}") from None
    finally:
        _, err = tar.communicate()
        if tar.returncode:
            emit("stderr", err)


# --- per-repository setup images ---------------------------------------------------------------


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
        emit = _Emitter(on_output, masker=SecretMasker(values))
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
    the repository's own script before any task, with the repository mounted read-only.
    """
    memory = f"{setup.limits.memory_mb}m"
    return dict(
        api.create_host_config(
            binds={str(setup.repo.resolve()): {"bind": "/workspace", "mode": "ro"}},
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
    client: docker.DockerClient, setup: _Setup, emit: _Emitter, timeout_s: float, *, maintenance: bool = False
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
            await in_thread(api.remove_container, container_id, force=True)
    if old_id:
        with contextlib.suppress(DockerException, SandboxError):  # still used by a running task: kept
            await in_thread(api.remove_image, old_id)


def _pump_logs(stream: Iterable[tuple[bytes | None, bytes | None]], emit: _Emitter) -> asyncio.Future[None]:
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
    emit: _Emitter,
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


# --- pruning setup images ----------------------------------------------------------------------


@dataclass(slots=True)
class EnvImage:
    """One cached setup image, as `prune_env_images` sees it."""

    image_id: str
    tags: list[str]
    repo: str
    """The repository path it was built for; "" for images built before the label existed."""
    created: str
    size_bytes: int
    """Approximate space it holds on its own: its size minus its base image's, when the base is present."""

    def describe(self) -> str:
        """`codex-tui-env:<hash> (12 MB, created 2024-05-01 10:00:00)`."""
        name = ", ".join(self.tags) or self.image_id[7:19]
        return f"{name} ({_megabytes(self.size_bytes)}, created {self.created[:19].replace('T', ' ')})"


@dataclass(slots=True)
class PruneReport:
    """What `prune_env_images` removed (or would remove), kept, and could not remove."""

    dry_run: bool
    removed: list[EnvImage]
    kept: list[EnvImage]
    in_use: list[EnvImage]
    """Older than the newest `keep_per_repo` but used by a container, so kept."""
    failed: list[tuple[EnvImage, str]]

    @property
    def freed_bytes(self) -> int:
        """Space freed (or that would be freed) by the removed images."""
        return sum(image.size_bytes for image in self.removed)

    def lines(self) -> list[str]:
        """Human lines for the terminal, grouped by outcome, ending with the space freed."""
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb} {image.describe()} [{_repo_name(image.repo)}]" for image in self.removed]
        out += [f"kept (used by a container) {image.describe()}" for image in self.in_use]
        out += [f"could not remove {image.describe()}: {reason}" for image, reason in self.failed]
        if not self.removed and not self.failed:
            out.append(f"nothing to prune ({len(self.kept) + len(self.in_use)} setup image(s) kept)")
        else:
            done, freed = ("would be removed", "would free") if self.dry_run else ("removed", "freed")
            kept = len(self.kept) + len(self.in_use)
            space = _megabytes(self.freed_bytes)
            out.append(f"{len(self.removed)} setup image(s) {done}, {freed} {space}; {kept} kept")
        return out


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _repo_name(repo: str) -> str:
    return repo or "no repository label"


async def prune_env_images(
    keep_per_repo: int = 1,
    *,
    dry_run: bool = False,
    repos: Iterable[Path] | None = None,
    client_factory: ClientFactory | None = None,
) -> PruneReport:
    """Remove `codex-tui-env` images no container uses, keeping the newest `keep_per_repo` per repository.

    Images without the repository label form one group. `repos` limits the pruning to those
    repositories' images (unlabelled ones are then left alone). Raises SandboxError when the
    engine is not reachable or `keep_per_repo` is negative.
    """
    if keep_per_repo < 0:
        raise SandboxError(f"--keep must be 0 or more, got {keep_per_repo}")
    only = None if repos is None else {str(Path(r).resolve()) for r in repos}
    client = await get_client(client_factory)
    return await in_thread(_prune_env_images_sync, client, keep_per_repo, dry_run, only)


def _prune_env_images_sync(
    client: docker.DockerClient, keep: int, dry_run: bool, only: set[str] | None
) -> PruneReport:
    report = PruneReport(dry_run=dry_run, removed=[], kept=[], in_use=[], failed=[])
    try:
        images = _env_images(client)
        used = _images_used_by_containers(client)
    except DockerException as exc:
        raise SandboxError(f"cannot list setup images: {exc}") from None
    groups: dict[str, list[EnvImage]] = {}
    for image in images:
        if only is None or image.repo in only:
            groups.setdefault(image.repo, []).append(image)
    for group in groups.values():
        group.sort(key=lambda image: _created_key(image.created), reverse=True)
        report.kept.extend(group[:keep])
        for image in group[keep:]:
            if image.image_id in used:
                report.in_use.append(image)
                continue
            error = None if dry_run else _remove_image(client, image)
            if error is None:
                report.removed.append(image)
            else:
                report.failed.append((image, error))
    return report


def _env_images(client: docker.DockerClient) -> list[EnvImage]:
    """Every image tagged `codex-tui-env:*`, with its repository label and approximate own size."""
    base_sizes: dict[str, int] = {}
    found: list[EnvImage] = []
    for image in client.images.list(name=ENV_REPOSITORY):
        attrs = image.attrs
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        tags = [t for t in image.tags if t.split(":", 1)[0] == ENV_REPOSITORY]
        size = int(attrs.get("Size") or 0)
        base_id = str(labels.get(ENV_LABEL, ""))
        if base_id:
            if base_id not in base_sizes:
                base_sizes[base_id] = _image_size(client, base_id)
            size = max(size - base_sizes[base_id], 0)
        found.append(
            EnvImage(
                image_id=str(image.id),
                tags=sorted(tags),
                repo=str(labels.get(ENV_REPO_LABEL, "")),
                created=str(attrs.get("Created", "")),
                size_bytes=size,
            )
        )
    return found


def _image_size(client: docker.DockerClient, name: str) -> int:
    try:
        return int(client.images.get(name).attrs.get("Size") or 0)
    except ImageNotFound:
        return 0


def _images_used_by_containers(client: docker.DockerClient) -> set[str]:
    """Ids of images any container (running or stopped) was created from."""
    return {str(c.get("ImageID", "")) for c in client.api.containers(all=True)}


def _remove_image(client: docker.DockerClient, image: EnvImage) -> str | None:
    """Untag and delete one image (never forced); the reason when the engine refuses."""
    try:
        for tag in image.tags or [image.image_id]:
            client.api.remove_image(tag)
    except ImageNotFound:
        return None  # removed meanwhile by someone else: gone either way
    except APIError as exc:
        return str(exc.explanation or exc).splitlines()[0][:200]
    return None


def _created_key(created: str) -> float:
    """Seconds since the epoch from Docker's RFC 3339 `Created` (nanoseconds trimmed); 0 when unreadable."""
    text = created.strip().replace("Z", "+00:00")
    match = re.match(r"^([^.+]+)(?:\.(\d+))?(.*)$", text)
    if not match:
        return 0.0
    stamp = match.group(1) + (f".{match.group(2)[:6]}" if match.group(2) else "") + match.group(3)
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


# --- command line ------------------------------------------------------------------------------


def _print_chunk(stream: Stream, data: bytes) -> None:
    target = sys.stdout if stream == "stdout" else sys.stderr
    target.buffer.write(data)
    target.flush()


def main(argv: list[str] | None = None) -> int:
    """`build [--if-missing] [--tag T]`, `status [--tag T]` or `prune [--keep N] [--dry-run]`.

    Prints one clear line on failure.
    """
    parser = argparse.ArgumentParser(prog="python -m codex_tui.sandbox.image")
    parser.add_argument("command", choices=("build", "status", "prune"))
    parser.add_argument("--tag", default=DEFAULT_IMAGE)
    parser.add_argument("--if-missing", action="store_true", help="build only when missing or stale")
    parser.add_argument("--keep", type=int, default=1, help="prune: setup images kept per repository")
    parser.add_argument("--dry-run", action="store_true", help="prune: only show what would be removed")
    args = parser.parse_args(argv)
    try:
        if args.command == "prune":
            report = asyncio.run(prune_env_images(args.keep, dry_run=args.dry_run))
            print("\n".join(report.lines()))
            return 1 if report.failed else 0
        if args.command == "status":
            status = asyncio.run(image_status(args.tag))
            print(status.summary())
            return 0 if status.current else 1
        builder = ensure_default_image if args.if_missing else build_default_image
        asyncio.run(builder(args.tag, _print_chunk))
        return 0
    except SandboxError as exc:
        print(f"codex-tui sandbox {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
