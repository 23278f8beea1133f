"""The `codex-tui` command line: config errors, `tasks` subcommands, `sandbox status`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from codex_tui.scripted import ScriptedServer
from tests.conftest import run_git
from tests.test_exec import ROOT, provider_flags, run_cli
from tests.test_publish import bare_remote, fake_gh, gh_calls  # noqa: F401  (fixture)
from tests.test_tasks_support import add_file_patch, patch_call, scenario, shell_call


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """A scripted server whose scenarios add a file, or add two in two turns."""
    scenarios = [
        scenario(
            "adds",
            {"tool_calls": [patch_call(add_file_patch("added.txt", "from the task"))]},
            {"text": "Added."},
        ),
        scenario(
            "crash",
            {
                "tool_calls": [
                    patch_call(add_file_patch("before.txt", "written before the kill")),
                    shell_call("sleep", "30", timeout_ms=60_000),
                ]
            },
            {"text": "resumed and finished"},
        ),
        scenario(
            "two-turns",
            {"tool_calls": [patch_call(add_file_patch("one.txt", "1"))]},
            {"text": "first"},
            {"tool_calls": [patch_call(add_file_patch("two.txt", "2"))]},
            {"text": "second"},
        ),
    ]
    srv = ScriptedServer(scenarios).start_in_thread()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("config_text", "args", "expected"),
    [
        ("model = 3\n", [], "key 'model': expected a string, got 3"),
        ("model = [unclosed\n", [], "not valid TOML"),
        ("", ["-c", "nope=1"], "-c nope=1: unknown key 'nope'"),
        ("", ["--profile", "fast"], "profile 'fast' not found"),
        ("", ["-c", "model_provider=nowhere"], "model_provider 'nowhere' is not defined"),
        ('[model_providers.x]\nwire_api = "grpc"\n', [], "'grpc' is not one of responses, chat"),
    ],
)
def test_config_mistakes_print_one_line_and_exit_2(
    isolated_home: Path, git_repo: Path, config_text: str, args: list[str], expected: str
) -> None:
    (isolated_home / "config.toml").write_text(config_text)
    result = run_cli("exec", "hi", "-C", str(git_repo), *args, home=isolated_home)
    assert result.returncode == 2
    assert result.stderr.startswith("codex-tui: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert result.stdout == ""


def test_config_file_in_another_encoding_prints_one_line_and_exit_2(
    isolated_home: Path, git_repo: Path
) -> None:
    (isolated_home / "config.toml").write_bytes('model = "café"\n'.encode("latin-1"))
    result = run_cli("exec", "hi", "-C", str(git_repo), home=isolated_home)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"codex-tui: {isolated_home / 'config.toml'}: not UTF-8 text (byte 12 cannot be decoded)\n"
    )


def test_missing_folder_and_bad_attempts_are_reported(isolated_home: Path, tmp_path: Path) -> None:
    gone = run_cli("exec", "hi", "-C", str(tmp_path / "nope"), home=isolated_home)
    assert gone.returncode == 1 and "folder not found" in gone.stderr
    many = run_cli("exec", "hi", "--attempts", "9", home=isolated_home)
    assert many.returncode == 2 and "--attempts must be from 1 to 4" in many.stderr


def _exec(server: ScriptedServer, repo: Path, home: Path, model: str) -> str:
    result = run_cli(
        "exec", f"run {model}", "-C", str(repo), "--json", *provider_flags(server.base_url, model), home=home
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout.splitlines()[0])["thread_id"])


def test_tasks_list_show_apply_and_prune(server: ScriptedServer, git_repo: Path, isolated_home: Path) -> None:
    task_id = _exec(server, git_repo, isolated_home, "scripted:adds")
    listing = run_cli("tasks", "list", home=isolated_home)
    assert listing.returncode == 0
    [line] = listing.stdout.splitlines()
    assert line.startswith(task_id) and " ready " in line and "+1 −0" in line and "run scripted:adds" in line

    show = run_cli("tasks", "show", task_id[:10], home=isolated_home)
    assert show.returncode == 0, show.stderr
    assert "› run scripted:adds" in show.stdout and "\nAdded." in show.stdout
    assert "✎ add added.txt" in show.stdout and "added     added.txt +1 −0" in show.stdout

    dry = run_cli("tasks", "apply", task_id, "--dry-run", home=isolated_home)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "applied: added.txt" in dry.stdout and not (git_repo / "added.txt").exists()
    applied = run_cli("tasks", "apply", task_id, home=isolated_home)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (git_repo / "added.txt").read_text() == "from the task\n"
    assert " applied " in run_cli("tasks", "list", home=isolated_home).stdout

    checkout = isolated_home / "data" / "worktrees" / task_id
    assert checkout.is_dir()
    pruned = run_cli("tasks", "prune", home=isolated_home)
    assert pruned.returncode == 0 and "removed 1 checkout(s)" in pruned.stdout
    assert not checkout.exists()
    assert "Added." in run_cli("tasks", "show", task_id, home=isolated_home).stdout
    again = run_cli("tasks", "resume", task_id, "more", home=isolated_home)
    assert again.returncode == 1 and "pruned" in again.stderr


def test_tasks_resume_and_undo(server: ScriptedServer, git_repo: Path, isolated_home: Path) -> None:
    task_id = _exec(server, git_repo, isolated_home, "scripted:two-turns")
    flags = provider_flags(server.base_url, "scripted:two-turns")
    resumed = run_cli("tasks", "resume", task_id, "and the second file", *flags, home=isolated_home)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "second\n"
    assert "+2 −0" in run_cli("tasks", "list", home=isolated_home).stdout
    undo = run_cli("tasks", "undo", task_id, home=isolated_home)
    assert undo.returncode == 0 and "Undid turn 2" in undo.stdout
    assert "+1 −0" in run_cli("tasks", "list", home=isolated_home).stdout


def test_task_of_a_killed_exec_is_listed_shown_and_resumed(
    server: ScriptedServer, git_repo: Path, isolated_home: Path
) -> None:
    flags = provider_flags(server.base_url, "scripted:crash")
    env = {**os.environ, "CODEX_TUI_HOME": str(isolated_home)}
    command = [sys.executable, "-m", "codex_tui", "exec", "crash", "-C", str(git_repo), "--json", *flags]
    app = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert app.stdout is not None
        task_id = json.loads(app.stdout.readline())["thread_id"]
        rollout = isolated_home / "data" / "rollouts" / f"{task_id}.jsonl"
        deadline = time.monotonic() + 20
        while '"command":"sleep 30"' not in (rollout.read_text() if rollout.exists() else ""):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
    finally:
        tree = [app.pid, *(c.pid for c in psutil.Process(app.pid).children(recursive=True))]
        for pid in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        app.wait()

    [line] = run_cli("tasks", "list", home=isolated_home).stdout.splitlines()
    assert line.startswith(task_id) and "failed (interrupted: the app stopped)" in line
    show = run_cli("tasks", "show", task_id, home=isolated_home).stdout
    assert "· crash · failed (interrupted: the app stopped)" in show.splitlines()[0]
    assert "› crash" in show and "✎ add before.txt" in show and "▶ sleep 30 · did not finish" in show
    resumed = run_cli("tasks", "resume", task_id, "carry on", *flags, home=isolated_home)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "resumed and finished\n"
    [line] = run_cli("tasks", "list", home=isolated_home).stdout.splitlines()
    assert " ready " in line and "+1 −0" in line


def test_unknown_task_is_one_clear_line(isolated_home: Path) -> None:
    result = run_cli("tasks", "show", "t-nothing", home=isolated_home)
    assert result.returncode == 1
    assert result.stderr == "codex-tui: no task matching 't-nothing'\n"
    assert run_cli("tasks", "list", home=isolated_home).stdout == "no tasks yet\n"


def test_sandbox_status_without_an_engine_says_how_to_fix_it(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = run_cli("sandbox", "status", home=isolated_home)
    assert result.returncode == 1
    assert "Docker engine not reachable at unix:///nonexistent/docker.sock" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_prune_without_an_engine_prints_one_line_and_exits_1(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = run_cli("sandbox", "prune", "--dry-run", home=isolated_home)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "codex-tui: sandbox prune: Docker engine not reachable at unix:///nonexistent"
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_version_and_help(isolated_home: Path) -> None:
    assert run_cli("--version", home=isolated_home).stdout.startswith("codex-tui ")
    help_text = run_cli("exec", "--help", home=isolated_home).stdout
    assert "--json" in help_text and "--attempts" in help_text and "--allow-non-git" in help_text


def test_tasks_show_pr_prints_the_pull_request_text(
    server: ScriptedServer, git_repo: Path, isolated_home: Path
) -> None:
    task_id = _exec(server, git_repo, isolated_home, "scripted:adds")
    shown = run_cli("tasks", "show", task_id, "--pr", home=isolated_home)
    assert shown.returncode == 0, shown.stderr
    title, blank, *body = shown.stdout.splitlines()
    assert title == "run scripted:adds" and blank == ""
    assert body[0] == "## Summary" and "> run scripted:adds" in body and "> Added." in body
    assert "- `added.txt` — added (+1 −0)" in body and "The agent ran no commands." in body

    index_path = isolated_home / "data" / "index.json"
    index = json.loads(index_path.read_text())
    [row] = index["tasks"]
    row["pr"] = {"title": "Saved \x1b]0;x\x07title", "body": "Saved body\x1b[2J\n"}
    index_path.write_text(json.dumps(index))
    saved = run_cli("tasks", "show", task_id, "--pr", home=isolated_home)
    assert saved.returncode == 0 and saved.stdout == "Saved title\n\nSaved body\n"


def test_tasks_apply_pr_commits_pushes_and_prints_the_pr_url(
    server: ScriptedServer,
    git_repo: Path,
    isolated_home: Path,
    tmp_path: Path,
    fake_gh: Path,  # noqa: F811
) -> None:
    task_id = _exec(server, git_repo, isolated_home, "scripted:adds")
    remote = bare_remote(tmp_path)
    run_git(git_repo, "remote", "add", "origin", str(remote))
    applied = run_cli("tasks", "apply", task_id, "--pr", home=isolated_home)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "to codex/run-scripted-adds" in applied.stdout
    assert "pull request: https://github.com/o/r/pull/42" in applied.stdout
    branch = "codex/run-scripted-adds"
    assert run_git(git_repo, "show", f"{branch}:added.txt") == "from the task\n"
    assert not (git_repo / "added.txt").exists()
    assert run_git(git_repo, "log", "-1", "--format=%s", branch) == "run scripted:adds\n"
    assert run_git(remote, "rev-parse", f"refs/heads/{branch}") == run_git(git_repo, "rev-parse", branch)
    [call] = gh_calls(fake_gh)
    assert call["argv"][call["argv"].index("--title") + 1] == "run scripted:adds"
    assert call["body"].startswith("## Summary") and "`added.txt` — added (+1 −0)" in call["body"]
