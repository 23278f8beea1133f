"""The default sandbox image: its status, and building it without a registry (Dockerfile or debootstrap).

`python -m codex_tui.sandbox.image build|status|prune` runs the same code as
`codex-tui sandbox build|status|prune`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException, ImageNotFound

from codex_tui.sandbox.base import OutputCallback, SandboxError, Stream
from codex_tui.sandbox.build_output import BuildOutput
from codex_tui.sandbox.engine import (
    ClientFactory,
    engine_reachable,
    get_client,
    in_thread,
    shared_client,
)

DEFAULT_IMAGE = "codex-tui-sandbox:latest"
IMAGE_VERSION = "2"
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
    "ripgrep",
)
BROWSER_IMAGE = "codex-tui-sandbox-browser:latest"
"""The default image plus a headless browser (`codex-tui sandbox build --browser`)."""
BROWSER_PACKAGES = ("chromium", "fonts-liberation", "fonts-dejavu-core", "dbus-x11")
"""dbus-x11 provides the `dbus-session-bus` dconf needs (debootstrap does not resolve virtual packages)."""
BROWSER_LABEL = "codex-tui.browser"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PULL_TIMEOUT_S = 20

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
    emit = BuildOutput(on_output)
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


def _base_image_available(client: docker.DockerClient, emit: BuildOutput) -> bool:
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
    client: docker.DockerClient,
    tag: str,
    emit: BuildOutput,
    packages: tuple[str, ...],
    labels: dict[str, str],
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
    client: docker.DockerClient,
    tag: str,
    emit: BuildOutput,
    packages: tuple[str, ...],
    labels: dict[str, str],
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


async def _ensure_debootstrap(emit: BuildOutput) -> str:
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


async def _run_streaming(argv: list[str], emit: BuildOutput) -> int:
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
    client: docker.DockerClient, root: Path, tag: str, emit: BuildOutput, labels: dict[str, str]
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
            from codex_tui.sandbox.image_prune import prune_env_images  # it imports this module

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
