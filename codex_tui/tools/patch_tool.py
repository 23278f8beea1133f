"""The `apply_patch` tool: a function tool `{input}` for chat models, a freeform (grammar) tool otherwise.

It edits the task's checkout on the host directly (in a thread), reports a `file_change` item to the
UI and answers the model in Codex's words.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_COMPLETED, ITEM_FILE_CHANGE, ITEM_STARTED
from codex_tui.tools.apply_patch import FileChange, PatchParseError, PatchResult, apply_patch, plan_patch
from codex_tui.tools.arguments import ArgumentsError, parse_json_object, required_str
from codex_tui.tools.base import ToolContext, ToolResult

APPLY_PATCH_LARK_GRAMMAR: Final = r"""start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?

hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?

filename: /(.+)/
add_line: "+" /(.*)/ LF -> line

change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF

%import common.LF
"""

APPLY_PATCH_DESCRIPTION: Final = """Edit files with a patch.
Paths are relative to the workspace root, never absolute. The patch is an envelope of file operations:

*** Begin Patch
*** Add File: hello.txt
+Hello world
*** Update File: src/app.py
*** Move to: src/main.py
@@ def greet():
 context line
-print("Hi")
+print("Hello, world!")
 context line
*** Delete File: obsolete.txt
*** End Patch

- Add File: every following line starts with `+` (the new file's contents).
- Update File: one or more chunks, each introduced by `@@` (optionally followed by a line such as a
  class or function definition that narrows where the chunk applies). Inside a chunk, lines start
  with ' ' (context), '-' (removed) or '+' (added). Show about 3 lines of context around each change;
  no line numbers. End a chunk with `*** End of File` when it must match the end of the file.
- Delete File: nothing follows."""

READ_ONLY_REFUSAL: Final = (
    "apply_patch was refused: this task runs in read-only mode, so files cannot be changed. "
    "Describe the change you would make instead, or ask the user to switch the task to auto mode."
)


def apply_patch_spec() -> ToolSpec:
    """The spec offered to the model: JSON `{input}` parameters plus the freeform Lark grammar."""
    return ToolSpec(
        name="apply_patch",
        description=APPLY_PATCH_DESCRIPTION,
        parameters={
            "type": "object",
            "properties": {
                "input": {
                    "type": "string",
                    "description": "The entire patch, from *** Begin Patch to *** End Patch.",
                }
            },
            "required": ["input"],
            "additionalProperties": False,
        },
        freeform_grammar=APPLY_PATCH_LARK_GRAMMAR,
    )


def patch_from_arguments(arguments: str) -> str:
    """The patch text: JSON `{"input": ...}` from a function call, or the raw text of a freeform call."""
    if arguments.lstrip().startswith("{"):
        return required_str(parse_json_object(arguments), "input")
    return arguments


class ApplyPatchTool:
    """The `apply_patch` tool."""

    def __init__(self) -> None:
        self.spec = apply_patch_spec()

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Apply the patch in the model's arguments to the task's checkout."""
        try:
            patch = patch_from_arguments(arguments)
        except ArgumentsError as error:
            return ToolResult(str(error), success=False)
        return await run_patch(patch, ctx)


async def run_patch(patch: str, ctx: ToolContext, *, cwd: Path | None = None) -> ToolResult:
    """Apply `patch` under ctx.workspace (relative paths from `cwd`), emitting a file_change item."""
    item_id = ctx.new_item_id()
    try:
        planned = await asyncio.to_thread(plan_patch, patch)
    except PatchParseError:
        planned = []
    _emit_item(ctx, ITEM_STARTED, item_id, planned, "in_progress")
    if ctx.mode == "read-only":
        result = PatchResult(False, READ_ONLY_REFUSAL)
    else:
        result = await asyncio.to_thread(apply_patch, patch, ctx.workspace, cwd)
    status = "completed" if result.success else "failed"
    error = None if result.success else result.output
    _emit_item(ctx, ITEM_COMPLETED, item_id, result.changes, status, error=error)
    attempted = ctx.mode != "read-only"
    return ToolResult(result.output, success=result.success, may_change_files=attempted)


def _emit_item(
    ctx: ToolContext,
    event: str,
    item_id: str,
    changes: list[FileChange],
    status: str,
    *,
    error: str | None = None,
) -> None:
    item: dict[str, Any] = {
        "id": item_id,
        "type": ITEM_FILE_CHANGE,
        "changes": [change.to_dict() for change in changes],
        "status": status,
        "added": sum(change.added for change in changes),
        "removed": sum(change.removed for change in changes),
    }
    if error is not None:
        item["error"] = error
    ctx.emit(event, {"item": item})
