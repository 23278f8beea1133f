"""The apply_patch tool: argument forms, file_change events, read-only refusal."""

from __future__ import annotations

import json
from pathlib import Path

from codex_tui.protocol import ITEM_COMPLETED, ITEM_FILE_CHANGE, ITEM_STARTED, SandboxMode
from codex_tui.tools.base import ToolContext
from codex_tui.tools.patch_tool import ApplyPatchTool
from codex_tui.tools.registry import run_tool
from tests.sandbox_helpers import Recorder, RecordingSandbox, make_context

ADD_AND_UPDATE = (
    "*** Begin Patch\n*** Add File: docs/new.md\n+# New\n+text\n"
    "*** Update File: app.py\n@@\n-print('hi')\n+print('hello')\n*** End Patch\n"
)


def context_for(tmp_path: Path, recorder: Recorder, mode: SandboxMode = "auto") -> ToolContext:
    return make_context(tmp_path, RecordingSandbox(tmp_path), recorder, mode=mode)


async def test_function_call_form_applies_and_reports_a_file_change_item(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    recorder = Recorder()
    result = await ApplyPatchTool().run(
        json.dumps({"input": ADD_AND_UPDATE}), context_for(tmp_path, recorder)
    )
    assert result.success
    assert result.output == "Success. Updated the following files:\nA docs/new.md\nM app.py\n"
    assert result.may_change_files
    assert (tmp_path / "app.py").read_text() == "print('hello')\n"
    started = recorder.items(ITEM_STARTED)
    completed = recorder.items(ITEM_COMPLETED)
    assert len(started) == len(completed) == 1
    assert started[0]["type"] == ITEM_FILE_CHANGE
    assert started[0]["status"] == "in_progress"
    assert started[0]["id"] == completed[0]["id"]
    assert completed[0]["status"] == "completed"
    assert completed[0]["changes"] == [
        {"path": "docs/new.md", "kind": "add"},
        {"path": "app.py", "kind": "update"},
    ]
    assert (completed[0]["added"], completed[0]["removed"]) == (3, 1)


async def test_freeform_call_sends_the_raw_patch(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    result = await ApplyPatchTool().run(ADD_AND_UPDATE, context_for(tmp_path, Recorder()))
    assert result.success
    assert (tmp_path / "docs/new.md").read_text() == "# New\ntext\n"


def test_spec_offers_json_input_and_the_lark_grammar() -> None:
    spec = ApplyPatchTool().spec
    assert spec.name == "apply_patch"
    assert spec.parameters["required"] == ["input"]
    assert spec.freeform_grammar is not None
    assert spec.freeform_grammar.startswith("start: begin_patch hunk+ end_patch")
    assert 'eof_line: "*** End of File" LF' in spec.freeform_grammar


async def test_read_only_mode_refuses_the_patch(tmp_path: Path) -> None:
    recorder = Recorder()
    ctx = context_for(tmp_path, recorder, mode="read-only")
    result = await ApplyPatchTool().run(json.dumps({"input": ADD_AND_UPDATE}), ctx)
    assert not result.success
    assert "read-only" in result.output
    assert not (tmp_path / "docs").exists()
    assert recorder.items(ITEM_COMPLETED)[0]["status"] == "failed"


async def test_failed_patch_reports_what_was_already_changed(tmp_path: Path) -> None:
    recorder = Recorder()
    text = (
        "*** Begin Patch\n*** Add File: created.txt\n+hello\n"
        "*** Update File: missing.txt\n@@\n-a\n+b\n*** End Patch"
    )
    result = await ApplyPatchTool().run(text, context_for(tmp_path, recorder))
    assert not result.success
    assert result.may_change_files
    item = recorder.items(ITEM_COMPLETED)[0]
    assert item["status"] == "failed"
    assert item["changes"] == [{"path": "created.txt", "kind": "add"}]
    assert "missing.txt" in item["error"]
    assert recorder.items(ITEM_STARTED)[0]["changes"] == [
        {"path": "created.txt", "kind": "add"},
        {"path": "missing.txt", "kind": "update"},
    ]


async def test_malformed_json_arguments_get_a_parse_error(tmp_path: Path) -> None:
    result = await run_tool("apply_patch", '{"input": "*** Begin', context_for(tmp_path, Recorder()))
    assert not result.success
    assert result.output.startswith("failed to parse function arguments: ")


async def test_json_without_input_field_is_refused(tmp_path: Path) -> None:
    result = await ApplyPatchTool().run('{"patch": "x"}', context_for(tmp_path, Recorder()))
    assert not result.success
    assert "`input`" in result.output


async def test_invalid_patch_text_is_reported_to_the_model(tmp_path: Path) -> None:
    recorder = Recorder()
    result = await ApplyPatchTool().run(
        "*** Begin Patch\n*** Nope: a\n*** End Patch", context_for(tmp_path, recorder)
    )
    assert not result.success
    assert result.output.startswith("Invalid patch hunk on line 2:")
    assert recorder.items(ITEM_COMPLETED)[0]["changes"] == []
