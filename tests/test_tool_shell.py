"""The shell tool against a real subprocess sandbox: output, timeouts, limits, approvals, apply_patch."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from codex_tui.protocol import (
    ITEM_COMMAND,
    ITEM_COMPLETED,
    ITEM_FILE_CHANGE,
    ITEM_STARTED,
    OUTPUT_DELTA,
    ApprovalDecision,
    SandboxMode,
)
from codex_tui.tools.base import ToolContext, ToolResult
from codex_tui.tools.shell import ShellTool
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context, processes_with


def setup(
    tmp_path: Path, mode: SandboxMode = "auto", **extra: Any
) -> tuple[RecordingSandbox, Recorder, ToolContext]:
    sandbox = RecordingSandbox(tmp_path, mode)
    recorder = Recorder()
    return sandbox, recorder, make_context(tmp_path, sandbox, recorder, mode=mode, **extra)


async def shell(ctx: ToolContext, command: list[str] | str, **args: Any) -> ToolResult:
    return await ShellTool().run(json.dumps({"command": command, **args}), ctx)


def deltas(recorder: Recorder) -> str:
    return "".join(d["text"] for d in recorder.of_type(OUTPUT_DELTA))


async def test_command_output_reaches_the_model_in_codex_format(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    result = await shell(ctx, ["bash", "-lc", "echo hello; echo oops >&2"])
    assert result.success
    assert result.output.startswith("Exit code: 0\nWall time: ")
    assert " seconds\nOutput:\n" in result.output
    assert "hello\n" in result.output and "oops\n" in result.output
    started, completed = recorder.items(ITEM_STARTED)[0], recorder.items(ITEM_COMPLETED)[0]
    assert started["type"] == ITEM_COMMAND
    assert started["status"] == "in_progress"
    assert started["command"] == "echo hello; echo oops >&2"
    assert completed["id"] == started["id"]
    assert completed["status"] == "completed"
    assert completed["exit_code"] == 0
    assert completed["timed_out"] is False
    assert isinstance(completed["duration_ms"], int)
    assert "hello" in completed["aggregated_output"]
    assert {d["stream"] for d in recorder.of_type(OUTPUT_DELTA)} == {"stdout", "stderr"}


async def test_string_command_runs_through_bash_lc(tmp_path: Path) -> None:
    sandbox, _, ctx = setup(tmp_path)
    result = await shell(ctx, "echo $((2 + 3))")
    assert result.output.endswith("Output:\n5\n")
    assert sandbox.calls[0].argv == ["bash", "-lc", "echo $((2 + 3))"]
    assert sandbox.calls[0].cwd == str(tmp_path)


async def test_nonzero_exit_code_is_reported_as_failure(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    result = await shell(ctx, ["bash", "-lc", "echo partial; exit 3"])
    assert not result.success
    assert result.output.startswith("Exit code: 3\n")
    item = recorder.items(ITEM_COMPLETED)[0]
    assert (item["status"], item["exit_code"]) == ("failed", 3)


async def test_timeout_kills_the_command_and_returns_124(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    begin = time.monotonic()
    result = await shell(ctx, ["bash", "-lc", "echo started; sleep 100"], timeout_ms=300)
    assert time.monotonic() - begin < 5
    assert result.output.startswith("Exit code: 124\n")
    assert "command timed out after 300 milliseconds\nstarted\n" in result.output
    item = recorder.items(ITEM_COMPLETED)[0]
    assert item["timed_out"] is True
    assert item["exit_code"] == 124


async def test_default_timeout_comes_from_the_context(tmp_path: Path) -> None:
    sandbox, _, ctx = setup(tmp_path, default_timeout_ms=200)
    result = await shell(ctx, ["sleep", "100"])
    assert result.output.startswith("Exit code: 124\n")
    assert sandbox.calls[0].timeout_s == pytest.approx(0.2)


async def test_fifty_megabytes_of_output_keep_memory_bounded(tmp_path: Path) -> None:
    sandbox = RecordingSandbox(tmp_path)
    recorder = Recorder()
    streamed = {"bytes": 0, "events": 0}

    def count_only(type_: str, data: dict[str, Any]) -> None:
        if type_ == OUTPUT_DELTA:
            streamed["bytes"] += len(data["text"])
            streamed["events"] += 1
        else:
            recorder.emit(type_, data)

    ctx = make_context(tmp_path, sandbox, recorder, emit=count_only)
    tracemalloc.start()
    try:
        result = await shell(ctx, "yes | head -c 50000000", timeout_ms=60_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes"
    assert streamed["bytes"] == 50_000_000
    assert streamed["events"] < 50_000_000 // 16_384 + 200
    assert result.success
    assert "Total output lines: 25000000\n" in result.output
    assert "[... omitted 24999744 of 25000000 lines ...]" in result.output
    assert len(result.output.encode()) < 10_500
    item = recorder.items(ITEM_COMPLETED)[0]
    assert len(item["aggregated_output"].encode()) <= 10_000


async def test_binary_output_is_decoded_with_replacement_and_without_nuls(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    result = await shell(ctx, ["bash", "-lc", r"printf '\000\377\376bin\000ary\n'"])
    assert "\x00" not in result.output
    assert result.output.endswith("Output:\n\ufffd\ufffdbinary\n")
    assert deltas(recorder) == "\ufffd\ufffdbinary\n"


async def test_output_deltas_are_batched_not_one_event_per_line(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    await shell(ctx, ["seq", "1", "100000"])
    expected = "".join(f"{n}\n" for n in range(1, 100_001))
    assert deltas(recorder) == expected
    assert len(recorder.of_type(OUTPUT_DELTA)) < 200
    assert all(d["item_id"] == "item_1" for d in recorder.of_type(OUTPUT_DELTA))


async def test_workdir_is_relative_to_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    sandbox, _, ctx = setup(tmp_path)
    result = await shell(ctx, ["pwd"], workdir="sub")
    assert result.output.endswith(f"Output:\n{tmp_path.resolve() / 'sub'}\n")
    await shell(ctx, ["pwd"], workdir=str(tmp_path / "sub"))
    assert sandbox.calls[1].cwd == sandbox.calls[0].cwd


@pytest.mark.parametrize("workdir", ["..", "sub/../..", "/etc", "escape"])
async def test_workdir_outside_the_workspace_is_refused(tmp_path: Path, workdir: str) -> None:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    sandbox, recorder, ctx = setup(root)
    result = await shell(ctx, ["ls"], workdir=workdir)
    assert not result.success
    assert "outside the workspace" in result.output
    assert sandbox.calls == []
    assert recorder.events == []


async def test_missing_workdir_is_refused(tmp_path: Path) -> None:
    sandbox, _, ctx = setup(tmp_path)
    result = await shell(ctx, ["ls"], workdir="nope")
    assert result.output == "workdir nope does not exist or is not a directory"
    assert sandbox.calls == []


HEREDOC = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: hello.txt\n+hi there\n*** End Patch\nEOF\n"


async def test_apply_patch_heredoc_in_shell_is_applied_as_a_patch(tmp_path: Path) -> None:
    sandbox, recorder, ctx = setup(tmp_path)
    result = await shell(ctx, ["bash", "-lc", HEREDOC])
    assert result.success
    assert result.output == "Success. Updated the following files:\nA hello.txt\n"
    assert (tmp_path / "hello.txt").read_text() == "hi there\n"
    assert sandbox.calls == []
    assert [item["type"] for item in recorder.items(ITEM_COMPLETED)] == [ITEM_FILE_CHANGE]


async def test_apply_patch_argv_form_and_cd_prefix_in_shell(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    _, _, ctx = setup(tmp_path)
    patch = "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch"
    assert (await shell(ctx, ["apply_patch", patch])).success
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert (await shell(ctx, f"cd pkg && {HEREDOC}")).success
    assert (tmp_path / "pkg/hello.txt").read_text() == "hi there\n"


async def test_apply_patch_heredoc_with_cd_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    _, _, ctx = setup(root)
    result = await shell(ctx, f"cd .. && {HEREDOC}")
    assert not result.success
    assert not (tmp_path / "hello.txt").exists()


async def test_raw_patch_sent_as_a_command_is_refused(tmp_path: Path) -> None:
    sandbox, _, ctx = setup(tmp_path)
    result = await shell(ctx, "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch")
    assert not result.success
    assert result.output.startswith("patch detected without explicit call to apply_patch")
    assert sandbox.calls == []


@pytest.mark.parametrize(("mode", "decision"), [("auto", "approve"), ("read-only", "approve_task")])
async def test_escalation_asks_the_user_and_runs_escalated_when_approved(
    tmp_path: Path, mode: SandboxMode, decision: ApprovalDecision
) -> None:
    sandbox, recorder, ctx = setup(tmp_path, mode)
    recorder.decision = decision
    result = await shell(
        ctx, ["echo", "fetched"], with_escalated_permissions=True, justification="needs the network"
    )
    assert recorder.approvals == [
        {"kind": "command", "command": "echo fetched", "reason": "needs the network"}
    ]
    assert sandbox.calls[0].escalated is True
    assert result.success


async def test_denied_escalation_does_not_run_and_tells_the_model(tmp_path: Path) -> None:
    sandbox, recorder, ctx = setup(tmp_path)
    recorder.decision = "deny"
    result = await shell(ctx, ["touch", "x"], with_escalated_permissions=True, justification="why not")
    assert not result.success
    assert "The user denied this command" in result.output
    assert sandbox.calls == []
    assert not (tmp_path / "x").exists()
    assert recorder.items(ITEM_COMPLETED)[0]["status"] == "declined"


async def test_full_access_needs_no_approval(tmp_path: Path) -> None:
    sandbox, recorder, ctx = setup(tmp_path, "full-access")
    result = await shell(ctx, ["true"], with_escalated_permissions=True)
    assert result.success
    assert recorder.approvals == []
    assert sandbox.calls[0].escalated is False


async def wait_for_process(marker: str) -> None:
    for _ in range(200):
        if processes_with(marker):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no process running {marker}")


async def test_interrupt_kills_the_process_and_closes_the_item(tmp_path: Path) -> None:
    _, recorder, ctx = setup(tmp_path)
    running = asyncio.create_task(shell(ctx, ["sleep", "100.4242"], timeout_ms=60_000))
    await wait_for_process("sleep 100.4242")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert processes_with("sleep 100.4242") == []
    item = recorder.items(ITEM_COMPLETED)[0]
    assert item["status"] == "failed"
    assert item["note"] == "interrupted"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "failed to parse function arguments: "),
        ("[1, 2]", "failed to parse function arguments: expected a JSON object"),
        ("{}", "missing or invalid field `command`"),
        ('{"command": []}', "missing or invalid field `command`"),
        ('{"command": ["ls", 3]}', "missing or invalid field `command`"),
        ('{"command": "  "}', "invalid field `command`: the command is empty"),
        ('{"command": ["ls"], "timeout_ms": -5}', "invalid field `timeout_ms`"),
        ('{"command": ["ls"], "workdir": 7}', "invalid field `workdir`"),
    ],
)
async def test_bad_arguments_get_a_clear_error(tmp_path: Path, arguments: str, message: str) -> None:
    sandbox, _, ctx = setup(tmp_path)
    result = await ShellTool().run(arguments, ctx)
    assert not result.success
    assert result.output.startswith(message)
    assert sandbox.calls == []


class SlowToStopSandbox(RecordingSandbox):
    """A sandbox that does not enforce the timeout it is given."""

    async def exec(self, argv: list[str], **kwargs: Any) -> Any:
        kwargs["timeout_s"] = 3600
        return await super().exec(argv, **kwargs)


async def test_a_sandbox_that_misses_its_timeout_is_cancelled_by_the_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("codex_tui.tools.shell.GRACE_S", 0.2)
    sandbox = SlowToStopSandbox(tmp_path)
    recorder = Recorder()
    ctx = make_context(tmp_path, sandbox, recorder)
    result = await shell(ctx, ["sleep", "100.5151"], timeout_ms=100)
    assert result.output.startswith("Exit code: 124\n")
    assert "did not stop the command at its timeout" in result.output
    assert processes_with("sleep 100.5151") == []
    assert recorder.items(ITEM_COMPLETED)[0]["timed_out"] is True
