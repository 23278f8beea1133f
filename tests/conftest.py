"""Shared fixtures: an isolated app home per test and real git repositories in temp folders."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui.boundary.identity import needs_chown, sandbox_ids

pytest_plugins = ["tests.conftest_docker"]


@pytest.fixture(scope="session", autouse=True)
def no_checkout_disk_left_mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Checkouts of killed test processes keep their own filesystem mounted: unmount them at the end."""
    yield
    base = str(tmp_path_factory.getbasetemp().resolve())
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(base + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own CODEX_TUI_HOME so nothing touches the developer's config or data."""
    home = tmp_path_factory.mktemp("codex-home")
    monkeypatch.setenv("CODEX_TUI_HOME", str(home))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield home


def give_to_sandbox(folder: Path) -> Path:
    """Let sandboxed commands work in `folder` as a task checkout lets them: when the tests run as
    root, commands run as an unprivileged uid, so the folder becomes theirs and its parents
    (pytest's private temp folders) become traversable."""
    if not needs_chown():
        return folder
    uid, gid = sandbox_ids()
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    os.lchown(folder, uid, gid)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)
    return folder


def run_git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout (raises on failure).

    As the agent would: a task's checkout belongs to the sandbox's uid when the tests run as root.
    """
    argv = ["git", "-c", "safe.directory=*", "-C", str(repo), *args]
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    return out.stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """Create a git repository at `path` with `files` committed on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    run_git(path, "init", "-q", "-b", "main")
    run_git(path, "config", "user.email", "dev@example.com")
    run_git(path, "config", "user.name", "Dev")
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A small committed repository: a Python module with a unittest test."""
    return make_repo(
        tmp_path / "repo",
        {
            "calc.py": "def add(a, b):\n    return a + b\n",
            "test_calc.py": (
                "import unittest\n\nfrom calc import add\n\n\n"
                "class AddTest(unittest.TestCase):\n"
                "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\n"
                "if __name__ == '__main__':\n    unittest.main()\n"
            ),
            "README.md": "# calc\n",
        },
    )
