"""`codex-tui exec` as a user runs it: a real subprocess, the scripted model, real git repos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from codex_tui.scripted import ScriptedServer
from tests.test_agent_harness import write_png
from tests.test_tasks_support import add_file_patch, patch_call, scenario, shell_call

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, home: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m codex_tui ARGS` with a CI-like environment (no API key, no TTY)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"CI": "true", "CODEX_TUI_HOME": str(home), "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "codex_tui", *args],
        cwd=ROOT,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def provider_flags(base_url: str, model: str) -> list[str]:
    """`-c` flags that point the CLI at a scripted server."""
    return [
        "-c", "model_provider=scripted",
        "-c", f"model_providers.scripted.base_url={base_url}",
        "-c", "model_providers.scripted.wire_api=responses",
        "-c", "request_max_retries=0",
        "-m", model,
        "--sandbox-backend", "local",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[ScriptedServer]:
    """One scripted server in a thread for the CLI subprocesses of this module."""
    scenarios = [
        scenario(
            "good",
            {
                "reasoning": "plan it",
                "tool_calls": [shell_call("ls"), patch_call(add_file_patch("new.txt", "hello"))],
            },
            {"text": "Added new.txt."},
        ),
        scenario(
            "sleeps",
            {"tool_calls": [shell_call("sleep", "30", timeout_ms=60_000)]},
            {"text": "woke up"},
        ),
        scenario("broken", {"errors": [{"status": 500, "message": "scripted outage"}], "text": "never"}),
        scenario(
            "escalates",
            {
                "tool_calls": [
                    shell_call("echo", "outside", with_escalated_permissions=True, justification="needs net")
                ]
            },
            {"text": "Could not leave the sandbox."},
        ),
    ]
    server = ScriptedServer(scenarios).start_in_thread()
    yield server
    server.stop()


def test_exec_demo_json_has_the_codex_event_shape(isolated_home: Path) -> None:
    result = run_cli("exec", "--demo", "--json", home=isolated_home)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "thread.started" and events[0]["thread_id"].startswith("t-")
    assert events[1] == {"type": "turn.started"}
    assert events[-1]["type"] == "turn.completed"
    assert set(events[-1]["usage"]) == {"input_tokens", "cached_input_tokens", "output_tokens"}
    assert {e["type"] for e in events} <= {
        "thread.started",
        "turn.started",
        "item.started",
        "item.updated",
        "item.completed",
        "turn.completed",
    }
    completed = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in completed if i["type"] == "command_execution"]
    assert [c["exit_code"] for c in commands if c["command"].startswith("python3 -m unittest")] == [1, 0]
    [change] = [i for i in completed if i["type"] == "file_change"]
    assert (
        change["changes"] == [{"path": "textkit/stats.py", "kind": "update"}]
        and change["status"] == "completed"
    )
    todo = [i for i in completed if i["type"] == "todo_list"][-1]
    assert all(step["completed"] for step in todo["items"])
    assert "sorted(values)" in [i for i in completed if i["type"] == "agent_message"][-1]["text"]


def test_exec_prints_progress_on_stderr_and_the_answer_on_stdout(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    last = tmp_path / "last.txt"
    result = run_cli(
        "exec", "add a file", "-C", str(git_repo), "-o", str(last),
        *provider_flags(scripted_server.base_url, "scripted:good"), home=isolated_home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Added new.txt.\n"
    assert last.read_text() == "Added new.txt.\n"
    assert "▶ Ran ls · exit 0 · " in result.stderr
    assert "✎ Added new.txt +1 −0" in result.stderr
    assert "· thinking: plan it" in result.stderr
    assert "Traceback" not in result.stderr


def test_exec_reads_the_prompt_from_stdin(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    result = run_cli(
        "exec", "-", "-C", str(git_repo), "--json", *flags, home=isolated_home, stdin="from stdin\n"
    )
    assert result.returncode == 0, result.stderr
    prompts = [r.body for r in scripted_server.model_requests() if "from stdin" in json.dumps(r.body)]
    assert prompts, "the prompt read from stdin reached the model"


def test_exec_exits_1_when_the_task_fails(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:broken")
    result = run_cli("exec", "will fail", "-C", str(git_repo), "--json", *flags, home=isolated_home)
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [failed] = [e for e in events if e["type"] == "turn.failed"]
    assert "scripted outage" in failed["error"]["message"]
    assert any(e["type"] == "error" and "scripted outage" in e["message"] for e in events)
    assert "Traceback" not in result.stderr


def test_exec_with_attempts_reports_each_attempt(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    result = run_cli("exec", "twice", "-C", str(git_repo), "--attempts", "2", *flags, home=isolated_home)
    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("── attempt")]
    assert [h.split()[2] for h in headers] == ["1/2", "2/2"]
    assert result.stdout.count("Added new.txt.") == 2
    assert "[1/2] ▶ Ran ls" in result.stderr and "[2/2] ▶ Ran ls" in result.stderr


def test_exec_outside_git_explains_and_fails(
    tmp_path: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    result = run_cli("exec", "hello", "-C", str(plain), *flags, home=isolated_home)
    assert result.returncode == 1
    assert "is not a git repository" in result.stderr and "--allow-non-git" in result.stderr
    allowed = run_cli("exec", "hello", "-C", str(plain), "--allow-non-git", *flags, home=isolated_home)
    assert allowed.returncode == 0, allowed.stderr


def test_exec_without_a_key_for_a_real_provider_fails_clearly(git_repo: Path, isolated_home: Path) -> None:
    result = run_cli("exec", "hi", "-C", str(git_repo), "--sandbox-backend", "local", home=isolated_home)
    assert result.returncode == 1
    assert "OPENAI_API_KEY" in result.stderr and "--demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_headless_approval_request_is_denied_with_a_note(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:escalates")
    result = run_cli(
        "exec", "escalate", "-C", str(git_repo), "--approval", "on-request", *flags, home=isolated_home
    )
    assert result.returncode == 0, result.stderr
    assert "? approval requested: echo outside — needs net" in result.stderr
    assert "denied: there is no terminal to ask" in result.stderr and "--sandbox full-access" in result.stderr
    assert "▶ Declined echo outside" in result.stderr
    assert result.stdout == "Could not leave the sandbox.\n"


def test_exec_sends_comma_separated_images_as_image_inputs(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    first, second = write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png", width=3)
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    images = f"{first},{second}"
    result = run_cli("exec", "look at both", "-C", str(git_repo), "-i", images, *flags, home=isolated_home)
    assert result.returncode == 0, result.stderr
    body = next(r.body for r in scripted_server.model_requests() if "look at both" in json.dumps(r.body))
    [prompt] = [i for i in body["input"] if i.get("role") == "user"]
    urls = [part["image_url"] for part in prompt["content"] if part["type"] == "input_image"]
    assert len(urls) == 2 and all(url.startswith("data:image/png;base64,") for url in urls)
    assert urls[0] != urls[1]


def test_exec_with_a_missing_or_non_image_attachment_fails_before_the_model_is_called(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    for attachment, message in ((tmp_path / "gone.png", "image not found"), (text, "not an image")):
        prompt = f"see {attachment.name}"
        result = run_cli(
            "exec", prompt, "-C", str(git_repo), "-i", str(attachment), *flags, home=isolated_home
        )
        assert result.returncode == 1
        assert message in result.stderr and str(attachment) in result.stderr
        assert "Traceback" not in result.stderr
        assert not [r for r in scripted_server.model_requests() if prompt in json.dumps(r.body)]


def test_exec_read_only_sandbox_refuses_the_agents_edits(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:good")
    result = run_cli(
        "exec", "try to add", "-C", str(git_repo), "--sandbox", "read-only", *flags, home=isolated_home
    )
    assert result.returncode == 0, result.stderr
    assert "✎ Patch failed: apply_patch was refused: this task runs in read-only mode" in result.stderr
    assert "▶ Ran ls · exit 0" in result.stderr


def test_ctrl_c_stops_exec_with_130_and_says_how_to_resume(
    git_repo: Path, isolated_home: Path, scripted_server: ScriptedServer
) -> None:
    flags = provider_flags(scripted_server.base_url, "scripted:sleeps")
    env = {**os.environ, "CODEX_TUI_HOME": str(isolated_home)}
    app = subprocess.Popen(
        [sys.executable, "-m", "codex_tui", "exec", "nap", "-C", str(git_repo), "--json", *flags],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert app.stdout is not None
    lines = [app.stdout.readline()]
    while '"command_execution"' not in lines[-1]:
        lines.append(app.stdout.readline())
        assert lines[-1], "exec ended before the command started"
    children = psutil.Process(app.pid).children(recursive=True)
    started = time.monotonic()
    app.send_signal(signal.SIGINT)
    _, err = app.communicate(timeout=20)
    assert app.returncode == 130 and time.monotonic() - started < 10
    task_id = json.loads(lines[0])["thread_id"]
    assert f"continue with `codex-tui tasks resume {task_id}`" in err
    assert "Traceback" not in err
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, "the interrupted command is still running"
