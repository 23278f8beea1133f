"""Pruning cached setup images: keep the newest per repository, never one a container uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.engine import (
    ClientFactory,
    get_client,
    in_thread,
)
from codex_tui.sandbox.env_image import ENV_LABEL, ENV_REPO_LABEL, ENV_REPOSITORY


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
