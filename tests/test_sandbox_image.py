"""Sandbox images: default image status, cached per-repository setup images, apt mirror discovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from codex_tui.sandbox.base import SandboxError, SandboxSpec, Stream
from codex_tui.sandbox.docker import DockerSandbox
from codex_tui.sandbox.env_image import (
    ENV_REPO_LABEL,
    ensure_env_image,
    env_image_tag,
    resolve_setup_script,
    setup_inputs,
)
from codex_tui.sandbox.image import DEFAULT_IMAGE, IMAGE_VERSION, debian_mirror, image_status
from codex_tui.sandbox.image_prune import prune_env_images
from tests.conftest_docker import MakeDockerSandbox

REPO_ROOT = Path(__file__).resolve().parents[1]


class Log:
    """Collects setup output."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def __call__(self, stream: Stream, data: bytes) -> None:
        self.data.append(data)

    def text(self) -> str:
        return b"".join(self.data).decode()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "requirements.txt").write_text("requests==2.0\n")
    (path / "app.py").write_text("print('hi')\n")
    return path


@pytest.fixture
def env_tags(docker_engine: docker.DockerClient) -> Iterator[list[str]]:
    """Tags created by a test; removed afterwards so runs stay independent."""
    tags: list[str] = []
    yield tags
    for tag in set(tags):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_engine.images.remove(tag, force=True)


def unique_script(body: str) -> str:
    """A script whose cache key is new for this run (the comment changes the hash)."""
    return f"# run {uuid.uuid4().hex}\n{body}"


# --- no engine needed --------------------------------------------------------------------------


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_is_read_from_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://one.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no Debian mirror found"):
        debian_mirror(tmp_path)


def test_setup_script_comes_from_config_else_the_repository(repo: Path) -> None:
    assert resolve_setup_script(repo, None) is None
    (repo / ".codex-tui").mkdir()
    (repo / ".codex-tui" / "setup.sh").write_text("pip install -r requirements.txt\n")
    assert resolve_setup_script(repo, None) == "pip install -r requirements.txt\n"
    assert resolve_setup_script(repo, "make deps") == "make deps"


def test_cache_key_follows_script_and_lock_files_only(repo: Path) -> None:
    (repo / "deps").mkdir()
    (repo / "deps" / "pins.txt").write_text("a==1\n")
    script = "pip install -r deps/pins.txt"
    names = {p.name for p in setup_inputs(repo, script)}
    assert names == {"requirements.txt", "pins.txt"}
    first = env_image_tag("sha256:base", repo, script)
    assert first.startswith("codex-tui-env:") and len(first) == len("codex-tui-env:") + 16
    (repo / "app.py").write_text("print('changed code does not matter')\n")
    assert env_image_tag("sha256:base", repo, script) == first
    (repo / "deps" / "pins.txt").write_text("a==2\n")
    second = env_image_tag("sha256:base", repo, script)
    assert second != first
    (repo / "requirements.txt").write_text("requests==3.0\n")
    assert env_image_tag("sha256:base", repo, script) not in (first, second)
    assert env_image_tag("sha256:other", repo, script) != env_image_tag("sha256:base", repo, script)


def test_script_naming_a_file_outside_the_repo_does_not_read_it(repo: Path) -> None:
    assert all(
        p.is_relative_to(repo.resolve()) for p in setup_inputs(repo, "cat ../../etc/passwd /etc/hosts")
    )


# --- real engine -------------------------------------------------------------------------------


@pytest.mark.docker
async def test_status_reports_the_default_image(sandbox_image: str) -> None:
    status = await image_status(sandbox_image)
    assert status.engine_ok and status.present and status.current
    assert status.version == IMAGE_VERSION and status.size_mb > 10
    assert sandbox_image in status.summary() and "MB" in status.summary()


@pytest.mark.docker
async def test_default_image_has_the_tools_the_prompt_recommends(
    make_docker_sandbox: MakeDockerSandbox,
) -> None:
    sandbox = make_docker_sandbox()
    await sandbox.start()
    chunks: list[bytes] = []
    command = ["sh", "-c", "rg --version && git --version && python3 --version"]
    result = await sandbox.exec(command, on_output=lambda _stream, data: chunks.append(data))
    output = b"".join(chunks)
    assert result.exit_code == 0, output
    assert b"ripgrep" in output and b"git version" in output


@pytest.mark.docker
async def test_status_of_a_missing_image_says_how_to_build_it(docker_engine: docker.DockerClient) -> None:
    status = await image_status("codex-tui-nope:missing")
    assert status.engine_ok and not status.present and not status.current
    assert "codex-tui sandbox build" in status.summary()


@pytest.mark.docker
def test_module_cli_status_and_unreachable_engine(sandbox_image: str) -> None:
    cmd = [sys.executable, "-m", "codex_tui.sandbox.image", "status"]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert ok.returncode == 0 and DEFAULT_IMAGE in ok.stdout
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent"}
    down = subprocess.run(
        [*cmd[:-1], "build", "--if-missing"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
    )
    assert down.returncode == 1
    assert "Docker engine not reachable at unix:///nonexistent" in down.stderr
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1


@pytest.mark.docker
async def test_no_setup_script_means_the_base_image(sandbox_image: str, repo: Path) -> None:
    assert await ensure_env_image(sandbox_image, repo, None) == sandbox_image


@pytest.mark.docker
async def test_second_task_on_same_repo_reuses_setup_image(
    sandbox_image: str, repo: Path, env_tags: list[str], sandbox_workspace: Path
) -> None:
    script = unique_script(
        "sleep 1.5\nmkdir -p /opt/deps && cp /workspace/requirements.txt /opt/deps/\necho ok"
    )
    log = Log()
    started = time.monotonic()
    tag = await ensure_env_image(sandbox_image, repo, script, log)
    env_tags.append(tag)
    first = time.monotonic() - started
    assert "ok" in log.text()
    started = time.monotonic()
    again = await ensure_env_image(sandbox_image, repo, script, log)
    second = time.monotonic() - started
    assert again == tag
    assert first >= 1.5 and second * 10 < first, (first, second)
    assert log.text().count("running the setup script") == 1
    sandbox = DockerSandbox(SandboxSpec(task_id="env", workspace=sandbox_workspace, image=tag))
    await sandbox.start()
    try:
        out = Log()
        assert (await sandbox.exec(["cat", "/opt/deps/requirements.txt"], on_output=out)).exit_code == 0
        assert out.text() == "requests==2.0\n"
    finally:
        await sandbox.stop()


@pytest.mark.docker
async def test_changed_script_or_lock_file_rebuilds(
    sandbox_image: str, repo: Path, env_tags: list[str]
) -> None:
    script = unique_script("echo one")
    first = await ensure_env_image(sandbox_image, repo, script)
    changed = await ensure_env_image(sandbox_image, repo, script + "echo two\n")
    (repo / "requirements.txt").write_text("requests==9.9\n")
    relocked = await ensure_env_image(sandbox_image, repo, script)
    env_tags.extend([first, changed, relocked])
    assert len({first, changed, relocked}) == 3


@pytest.mark.docker
async def test_repository_setup_file_is_used(sandbox_image: str, repo: Path, env_tags: list[str]) -> None:
    (repo / ".codex-tui").mkdir()
    (repo / ".codex-tui" / "setup.sh").write_text(unique_script("echo from-the-repo"))
    log = Log()
    tag = await ensure_env_image(sandbox_image, repo, None, log)
    env_tags.append(tag)
    assert tag.startswith("codex-tui-env:") and "from-the-repo" in log.text()


@pytest.mark.docker
async def test_failing_setup_raises_with_the_log_tail(
    sandbox_image: str, repo: Path, env_tags: list[str], docker_engine: docker.DockerClient
) -> None:
    script = unique_script(
        "echo preparing\necho 'E: package flux-capacitor not found' >&2\nexit 3\necho never"
    )
    with pytest.raises(SandboxError) as info:
        await ensure_env_image(sandbox_image, repo, script)
    message = str(info.value)
    assert "the setup script failed (exit 3)" in message
    assert "preparing" in message and "E: package flux-capacitor not found" in message
    tag = env_image_tag(docker_engine.images.get(sandbox_image).id, repo, script)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(tag)
    setups = docker_engine.api.containers(all=True, filters={"label": f"codex-tui.task=setup:{tag}"})
    assert setups == [], "the failed setup container is removed"


@pytest.mark.docker
async def test_concurrent_tasks_on_same_repo_build_the_setup_once(
    sandbox_image: str, repo: Path, env_tags: list[str]
) -> None:
    script = unique_script("sleep 1\necho built-once")
    log = Log()
    tags = await asyncio.gather(*(ensure_env_image(sandbox_image, repo, script, log) for _ in range(3)))
    env_tags.extend(tags)
    assert len(set(tags)) == 1
    assert log.text().count("built-once") == 1


# --- pruning setup images ----------------------------------------------------------------------


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    """True when the engine still has `tag`."""
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


async def test_negative_keep_is_a_clear_error() -> None:
    with pytest.raises(SandboxError, match="--keep must be 0 or more, got -1"):
        await prune_env_images(-1)


@pytest.mark.docker
async def test_prune_removes_the_older_setup_image_of_a_repository_only(
    sandbox_image: str, repo: Path, env_tags: list[str], docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    old = await ensure_env_image(sandbox_image, repo, unique_script("head -c 2000000 /dev/urandom > /opt/a"))
    env_tags.append(old)
    new = await ensure_env_image(sandbox_image, repo, unique_script("echo b > /opt/b"))
    env_tags.append(new)
    theirs = await ensure_env_image(sandbox_image, other, unique_script("echo c > /opt/c"))
    env_tags.append(theirs)
    assert docker_engine.images.get(new).labels[ENV_REPO_LABEL] == str(repo.resolve())
    assert docker_engine.images.get(theirs).labels[ENV_REPO_LABEL] == str(other.resolve())

    report = await prune_env_images(1, repos=[repo, other])

    assert [image.tags for image in report.removed] == [[old]]
    assert sorted(tag for image in report.kept for tag in image.tags) == sorted([new, theirs])
    assert not report.failed and not report.in_use
    assert 2_000_000 <= report.freed_bytes < 3_000_000, report.freed_bytes
    assert not image_exists(docker_engine, old)
    assert image_exists(docker_engine, new) and image_exists(docker_engine, theirs)
    assert report.lines()[0].startswith(f"removed {old} (2.0 MB")
    assert report.lines()[-1] == "1 setup image(s) removed, freed 2.0 MB; 2 kept"


@pytest.mark.docker
async def test_prune_keeps_an_image_a_running_container_uses(
    sandbox_image: str,
    repo: Path,
    env_tags: list[str],
    docker_engine: docker.DockerClient,
    make_docker_sandbox: MakeDockerSandbox,
) -> None:
    old = await ensure_env_image(sandbox_image, repo, unique_script("echo a > /opt/a"))
    new = await ensure_env_image(sandbox_image, repo, unique_script("echo b > /opt/b"))
    env_tags.extend([old, new])
    sandbox = make_docker_sandbox(image=old)
    await sandbox.start()

    report = await prune_env_images(1, repos=[repo])

    assert [image.tags for image in report.in_use] == [[old]]
    assert report.removed == [] and report.failed == []
    assert image_exists(docker_engine, old) and image_exists(docker_engine, new)
    assert f"kept (used by a container) {old}" in report.lines()[0]


@pytest.mark.docker
async def test_prune_dry_run_removes_nothing(
    sandbox_image: str, repo: Path, env_tags: list[str], docker_engine: docker.DockerClient
) -> None:
    old = await ensure_env_image(sandbox_image, repo, unique_script("echo a > /opt/a"))
    new = await ensure_env_image(sandbox_image, repo, unique_script("echo b > /opt/b"))
    env_tags.extend([old, new])

    report = await prune_env_images(1, dry_run=True, repos=[repo])
    assert [image.tags for image in report.removed] == [[old]]
    assert report.lines()[-1].startswith("1 setup image(s) would be removed, would free ")

    cli = subprocess.run(
        [sys.executable, "-m", "codex_tui", "sandbox", "prune", "--dry-run", "--keep", "1"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"would remove {old} (" in cli.stdout and f"[{repo.resolve()}]" in cli.stdout
    assert f"would remove {new} " not in cli.stdout
    assert image_exists(docker_engine, old) and image_exists(docker_engine, new)
