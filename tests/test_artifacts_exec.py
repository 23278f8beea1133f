"""Artifacts end to end: `exec --json` lists the artifact item, people see "📎 name — caption", the
copy lands in the data folder, and the PR text lists it (untrusted captions stay inert)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from codex_tui import protocol as p
from codex_tui.exec_printers import HumanPrinter, artifact_line
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.prtext import build_pr_text
from codex_tui.tasks.store import TaskRecord
from tests.test_exec import provider_flags, run_cli
from tests.test_tasks_support import scenario, shell_call
from tests.test_tool_view_image import png_1x1

CAPTION = "The calculator page at 1280×800"


def artifact_scenario() -> dict[str, object]:
    """Make a PNG inside the sandbox, attach it, then answer."""
    encoded = base64.b64encode(png_1x1()).decode()
    write = f"import base64; open('shot.png', 'wb').write(base64.b64decode('{encoded}'))"
    return scenario(
        "artifact",
        {"tool_calls": [shell_call("python3", "-c", write)]},
        {"tool_calls": [{"name": "attach_artifact", "arguments": {"path": "shot.png", "caption": CAPTION}}]},
        {"text": "Attached a screenshot."},
    )


def test_exec_json_lists_the_artifact_and_the_pr_text_names_it(git_repo: Path, isolated_home: Path) -> None:
    srv = ScriptedServer([artifact_scenario()]).start_in_thread()
    try:
        flags = provider_flags(srv.base_url, "scripted:artifact")
        result = run_cli("exec", "--json", "-C", str(git_repo), *flags, "screenshot it", home=isolated_home)
    finally:
        srv.stop()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [item] = [e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "artifact"]
    assert item["name"] == "shot.png" and item["caption"] == CAPTION
    assert item["mime_type"] == "image/png" and item["size"] == len(png_1x1())
    assert item["sha256"] == hashlib.sha256(png_1x1()).hexdigest()
    copy = Path(item["path"])
    assert copy.is_relative_to(isolated_home / "data" / "artifacts")
    assert copy.read_bytes() == png_1x1()
    task_id = next(e["thread_id"] for e in events if e["type"] == "thread.started")
    shown = run_cli("tasks", "show", task_id, "--pr", home=isolated_home)
    assert shown.returncode == 0, shown.stderr
    assert "## Artifacts" in shown.stdout
    assert (
        f"- `shot.png` (image/png, {len(png_1x1())} bytes, sha256 `{item['sha256'][:16]}`) — {CAPTION}"
        in (shown.stdout)
    )


def test_exec_prints_a_paperclip_line_for_people(git_repo: Path, isolated_home: Path) -> None:
    srv = ScriptedServer([artifact_scenario()]).start_in_thread()
    try:
        flags = provider_flags(srv.base_url, "scripted:artifact")
        result = run_cli("exec", "-C", str(git_repo), *flags, "screenshot it", home=isolated_home)
    finally:
        srv.stop()
    assert result.returncode == 0, result.stderr
    assert f"📎 shot.png — {CAPTION}" in result.stderr


def artifact_event(seq: int, **fields: object) -> p.Event:
    item = {"id": f"item_{seq}", "type": p.ITEM_ARTIFACT, "name": "a.png", "mime_type": "image/png"}
    return p.Event(p.ITEM_COMPLETED, "t1", seq, {"item": {**item, **fields}})


def test_human_line_strips_control_sequences_from_name_and_caption() -> None:
    line = artifact_line({"name": "a\x1b]0;pwned\x07.png", "caption": "see \x1b[2Jthis\nnow"})
    assert line == "📎 a.png — see this now"
    assert artifact_line({"name": "plot.svg", "caption": ""}) == "📎 plot.svg"


def test_human_printer_shows_artifacts(tmp_path: Path) -> None:
    out = (tmp_path / "err.txt").open("w+")
    HumanPrinter(out, 1)(artifact_event(1, caption="a caption"))
    out.seek(0)
    assert out.read() == "📎 a.png — a caption\n"


def test_pr_text_keeps_untrusted_captions_inert() -> None:
    record = TaskRecord(id="t1", title="Make a page", prompt="make a page", repo="", created=0.0, updated=0.0)
    events = [
        p.Event(p.TURN_STARTED, "t1", 1, {"turn": 1}),
        artifact_event(2, name="x`y.png", caption="# heading\x1b[31m", size=2048, sha256="ab" * 32),
    ]
    body = build_pr_text(record, events, None, []).body
    assert "- ``x`y.png`` (image/png, 2.0 KB, sha256 `abababababababab`) — \\# heading" in body
    assert "\x1b" not in body


def test_pr_text_has_no_artifacts_section_without_artifacts() -> None:
    record = TaskRecord(id="t1", title="Fix", prompt="fix", repo="", created=0.0, updated=0.0)
    body = build_pr_text(record, [p.Event(p.TURN_STARTED, "t1", 1, {"turn": 1})], None, []).body
    assert "## Artifacts" not in body


def test_undone_turn_drops_its_artifacts_from_the_pr_text() -> None:
    record = TaskRecord(id="t1", title="Fix", prompt="fix", repo="", created=0.0, updated=0.0)
    events = [
        p.Event(p.TURN_STARTED, "t1", 1, {"turn": 1}),
        artifact_event(2),
        p.Event(p.TURN_UNDONE, "t1", 3, {"turn": 1, "conversation": True}),
    ]
    assert "## Artifacts" not in build_pr_text(record, events, None, []).body
