"""The `shell` tool: run a command in the task's sandbox, stream its output, answer like Codex.

Output is streamed to the UI as batched `command.output_delta` events and kept in a bounded
head+tail buffer; the model reads ``Exit code / Wall time / Output`` with the middle omitted when the
output is long. ``apply_patch`` invoked through the shell (heredoc or argv form) is routed to the
apply_patch tool, as Codex does.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_COMMAND, ITEM_COMPLETED, ITEM_STARTED, OUTPUT_DELTA
from codex_tui.sandbox.base import ExecResult, SandboxError, Stream
from codex_tui.tools.apply_patch import PatchParseError, parse_patch, to_relative
from codex_tui.tools.arguments import (
    ArgumentsError,
    optional_bool,
    optional_positive_int,
    optional_str,
    parse_json_object,
)
from codex_tui.tools.base import ToolContext, ToolResult
from codex_tui.tools.output import (
    MODEL_MAX_LINES,
    HeadTailBuffer,
    OutputBatcher,
    format_exec_output,
)
from codex_tui.tools.patch_tool import run_patch

TIMEOUT_EXIT_CODE: Final = 124
GRACE_S: Final = 5.0
"""How long past its timeout a sandbox may take to stop a command before the tool cancels it."""
APPLY_PATCH_COMMANDS: Final = ("apply_patch", "applypatch")
SHELLS: Final = ("bash", "sh", "zsh")
DENIED_MESSAGE: Final = "The user denied this command; it was not run. Do not retry it; find another way."
IMPLICIT_PATCH_MESSAGE: Final = (
    'patch detected without explicit call to apply_patch. Rerun as ["apply_patch", "<patch>"]'
)

_HEREDOC = re.compile(
    r"""\A\s*
    (?:cd\s+(?P<cd>'[^']*'|"[^"]*"|[^\s'"&|;<>]+)\s*&&\s*)?
    (?:apply_patch|applypatch)\s*<<-?\s*(?P<quote>['"]?)(?P<delim>[A-Za-z_][A-Za-z0-9_]*)(?P=quote)[ \t]*\n
    (?P<body>.*?)\n?
    ^(?P=delim)\s*\Z""",
    re.DOTALL | re.MULTILINE | re.VERBOSE,
)

SHELL_DESCRIPTION: Final = """Run a command in the task's sandbox and return its exit code and output.
`command` is an argv array (e.g. ["bash", "-lc", "pytest -q"]) or a shell string (run with bash -lc).
Prefer `workdir` (relative to the workspace) over `cd`. Commands time out after `timeout_ms`
(default {default_s:g} s; exit code 124). Long output is shortened to its first and last lines.
{mode_note}
To edit files use apply_patch, not shell redirections."""

_MODE_NOTES: Final = {
    "read-only": (
        "The workspace is read-only and there is no network. To run a command that needs to write or "
        "reach the network, set with_escalated_permissions and explain why in justification; the user "
        "is asked first."
    ),
    "auto": (
        "The workspace is writable; there is no network. To run a command that needs the network, set "
        "with_escalated_permissions and explain why in justification; the user is asked first."
    ),
    "full-access": "The workspace is writable and the network is on.",
}


@dataclass(slots=True)
class ShellArgs:
    """A validated shell call."""

    argv: list[str]
    display: str
    workdir: str | None
    timeout_ms: int
    escalate: bool
    justification: str


@dataclass(slots=True)
class PatchInvocation:
    """`apply_patch` recognised in a shell command: the patch text and an optional `cd` folder."""

    patch: str
    cd: str | None = None


def shell_spec(mode: str = "auto", default_timeout_ms: int = 10_000) -> ToolSpec:
    """The spec offered to the model (the description says what the mode allows)."""
    description = SHELL_DESCRIPTION.format(
        default_s=default_timeout_ms / 1000, mode_note=_MODE_NOTES.get(mode, _MODE_NOTES["auto"])
    )
    return ToolSpec(
        name="shell",
        description=description,
        parameters={
            "type": "object",
            "properties": {
                "command": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The command to run, as an argv array.",
                },
                "workdir": {"type": "string", "description": "Working directory, relative to the workspace."},
                "timeout_ms": {"type": "number", "description": "Timeout in milliseconds."},
                "with_escalated_permissions": {
                    "type": "boolean",
                    "description": "Ask the user to run this command outside the sandbox's limits.",
                },
                "justification": {
                    "type": "string",
                    "description": "Why escalated permissions are needed (shown to the user).",
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    )


def parse_shell_args(arguments: str, default_timeout_ms: int) -> ShellArgs:
    """Validate the model's arguments; raises ArgumentsError with a message for the model."""
    args = parse_json_object(arguments)
    argv, display = _command(args.get("command"))
    timeout_ms = optional_positive_int(args, "timeout_ms") or default_timeout_ms
    return ShellArgs(
        argv=argv,
        display=display,
        workdir=optional_str(args, "workdir"),
        timeout_ms=timeout_ms,
        escalate=optional_bool(args, "with_escalated_permissions"),
        justification=optional_str(args, "justification") or "",
    )


def _command(value: Any) -> tuple[list[str], str]:
    if isinstance(value, str):
        if not value.strip():
            raise ArgumentsError("invalid field `command`: the command is empty")
        return ["bash", "-lc", value], value
    if isinstance(value, list) and value and all(isinstance(part, str) for part in value):
        return list(value), display_command(value)
    raise ArgumentsError("missing or invalid field `command`: expected a non-empty array of strings")


def display_command(argv: list[str]) -> str:
    """The command as the user reads it: the script of `bash -lc SCRIPT`, else the quoted argv."""
    if len(argv) == 3 and posixpath.basename(argv[0]) in SHELLS and argv[1] in ("-lc", "-c"):
        return argv[2]
    return shlex.join(argv)


def extract_apply_patch(argv: list[str]) -> PatchInvocation | None:
    """Recognise `["apply_patch", PATCH]` and `bash -lc "[cd DIR &&] apply_patch <<'EOF' ... EOF"`."""
    if len(argv) == 2 and argv[0] in APPLY_PATCH_COMMANDS:
        return PatchInvocation(argv[1])
    if len(argv) == 3 and posixpath.basename(argv[0]) in SHELLS and argv[1] in ("-lc", "-c"):
        match = _HEREDOC.match(argv[2])
        if match:
            cd = match.group("cd")
            if cd and cd[0] in "'\"":
                cd = cd[1:-1]
            return PatchInvocation(match.group("body"), cd)
    return None


def is_implicit_patch(argv: list[str]) -> bool:
    """True when a raw patch was sent as the command instead of through apply_patch."""
    candidates = [argv[0]] if len(argv) == 1 else []
    if len(argv) == 3 and posixpath.basename(argv[0]) in SHELLS and argv[1] in ("-lc", "-c"):
        candidates.append(argv[2])
    for text in candidates:
        try:
            parse_patch(text)
        except PatchParseError:
            continue
        return True
    return False


def resolve_workdir(workdir: str | None, ctx: ToolContext) -> tuple[str, Path]:
    """(path inside the sandbox, host path) of a workdir; raises ArgumentsError outside the workspace."""
    root = Path(os.path.realpath(ctx.workspace))
    if workdir is None or not workdir.strip():
        return ctx.sandbox.workdir, root
    relative = to_relative(workdir.strip(), roots=(ctx.sandbox.workdir, str(ctx.workspace), str(root)))
    host = Path(os.path.realpath(root / relative)) if relative is not None else None
    if host is None or (host != root and not host.is_relative_to(root)):
        raise ArgumentsError(
            f"workdir {workdir} is outside the workspace; use a path relative to {ctx.sandbox.workdir}"
        )
    if not host.is_dir():
        raise ArgumentsError(f"workdir {workdir} does not exist or is not a directory")
    inner = host.relative_to(root).as_posix()
    sandbox_dir = ctx.sandbox.workdir if inner == "." else posixpath.join(ctx.sandbox.workdir, inner)
    return sandbox_dir, host


class ShellTool:
    """The `shell` tool."""

    def __init__(self, mode: str = "auto", default_timeout_ms: int = 10_000) -> None:
        self.spec = shell_spec(mode, default_timeout_ms)

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Run the model's command (or its apply_patch) in the task's sandbox."""
        try:
            args = parse_shell_args(arguments, ctx.default_timeout_ms)
            sandbox_dir, host_dir = resolve_workdir(args.workdir, ctx)
        except ArgumentsError as error:
            return ToolResult(str(error), success=False)
        invocation = extract_apply_patch(args.argv)
        if invocation is not None:
            return await _run_patch_invocation(invocation, host_dir, ctx)
        if is_implicit_patch(args.argv):
            return ToolResult(IMPLICIT_PATCH_MESSAGE, success=False)
        return await run_command(args, sandbox_dir, ctx)


async def _run_patch_invocation(invocation: PatchInvocation, host_dir: Path, ctx: ToolContext) -> ToolResult:
    cwd = host_dir
    if invocation.cd:
        try:
            _, cwd = resolve_workdir(posixpath.join(_relative_to_root(host_dir, ctx), invocation.cd), ctx)
        except ArgumentsError as error:
            return ToolResult(f"apply_patch: {error}", success=False)
    return await run_patch(invocation.patch, ctx, cwd=cwd)


def _relative_to_root(host_dir: Path, ctx: ToolContext) -> str:
    return host_dir.relative_to(Path(os.path.realpath(ctx.workspace))).as_posix()


async def run_command(args: ShellArgs, sandbox_dir: str, ctx: ToolContext) -> ToolResult:
    """Ask for approval when needed, run the command, and report it as a command_execution item."""
    item: dict[str, Any] = {
        "id": ctx.new_item_id(),
        "type": ITEM_COMMAND,
        "command": args.display,
        "aggregated_output": "",
        "exit_code": None,
        "status": "in_progress",
    }
    ctx.emit(ITEM_STARTED, {"item": dict(item)})
    escalated = False
    if args.escalate and ctx.mode != "full-access":
        decision = await ctx.request_approval(
            {"kind": "command", "command": args.display, "reason": args.justification}
        )
        if decision not in ("approve", "approve_task"):
            ctx.emit(ITEM_COMPLETED, {"item": {**item, "status": "declined"}})
            return ToolResult(DENIED_MESSAGE, success=False)
        escalated = True
    return await _execute(args, sandbox_dir, escalated, item, ctx)


async def _execute(
    args: ShellArgs, sandbox_dir: str, escalated: bool, item: dict[str, Any], ctx: ToolContext
) -> ToolResult:
    buffer = HeadTailBuffer(keep_bytes=ctx.max_output_bytes_to_model)
    item_id = item["id"]

    def deliver(stream: Stream, text: str) -> None:
        ctx.emit(OUTPUT_DELTA, {"item_id": item_id, "stream": stream, "text": text})

    batcher = OutputBatcher(deliver)

    def on_output(stream: Stream, data: bytes) -> None:
        buffer.feed(data)
        batcher.feed(stream, data)

    timeout_s = args.timeout_ms / 1000
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s + GRACE_S):  # unlike wait_for, never swallows an interrupt
            result = await ctx.sandbox.exec(
                args.argv, cwd=sandbox_dir, timeout_s=timeout_s, on_output=on_output, escalated=escalated
            )
    except TimeoutError:
        result = ExecResult(
            TIMEOUT_EXIT_CODE,
            time.monotonic() - started,
            timed_out=True,
            note="the sandbox did not stop the command at its timeout; it was cancelled",
        )
    except asyncio.CancelledError:
        batcher.close()
        _complete(ctx, item, buffer, "failed", None, time.monotonic() - started, False, "interrupted")
        raise
    except SandboxError as error:
        batcher.close()
        message = f"sandbox error: {error}"
        _complete(ctx, item, buffer, "failed", None, time.monotonic() - started, False, message)
        return ToolResult(message, success=False)
    except Exception as error:
        batcher.close()
        message = f"failed to run command: {type(error).__name__}: {error}"
        _complete(ctx, item, buffer, "failed", None, time.monotonic() - started, False, message)
        return ToolResult(message, success=False)
    batcher.close()
    return _finish(args, result, buffer, item, ctx, escalated)


def _finish(
    args: ShellArgs,
    result: ExecResult,
    buffer: HeadTailBuffer,
    item: dict[str, Any],
    ctx: ToolContext,
    escalated: bool,
) -> ToolResult:
    exit_code = TIMEOUT_EXIT_CODE if result.timed_out else result.exit_code
    notes: list[str] = []
    if result.timed_out:
        notes.append(f"command timed out after {args.timeout_ms} milliseconds")
    if result.note and not (result.timed_out and result.note.startswith("timed out")):
        notes.append(result.note)
    status = "completed" if exit_code == 0 else "failed"
    _complete(ctx, item, buffer, status, exit_code, result.duration_s, result.timed_out, "; ".join(notes))
    text = buffer.render(ctx.max_output_bytes_to_model, MODEL_MAX_LINES)
    output = format_exec_output(
        exit_code, result.duration_s, text, total_lines=buffer.total_lines, notes=notes
    )
    may_change = ctx.mode != "read-only" or escalated
    return ToolResult(output, success=exit_code == 0, may_change_files=may_change)


def _complete(
    ctx: ToolContext,
    item: dict[str, Any],
    buffer: HeadTailBuffer,
    status: str,
    exit_code: int | None,
    duration_s: float,
    timed_out: bool,
    note: str,
) -> None:
    done = {
        **item,
        "aggregated_output": buffer.render(ctx.max_output_bytes_to_model, MODEL_MAX_LINES),
        "exit_code": exit_code,
        "status": status,
        "duration_ms": int(duration_s * 1000),
        "timed_out": timed_out,
    }
    if note:
        done["note"] = note
    ctx.emit(ITEM_COMPLETED, {"item": done})
