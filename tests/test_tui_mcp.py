"""The TUI's MCP tool calls, web searches, MCP approvals and the /mcp screen."""

from __future__ import annotations

import base64
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.config_mcp import McpServerConfig
from codex_tui.tui.app import CodexApp
from codex_tui.tui.commands import complete_slash, parse_slash
from codex_tui.tui.screens.approval import ApprovalScreen
from codex_tui.tui.screens.mcp import McpScreen, server_content
from codex_tui.tui.source import REPLAY_NO_MCP, RolloutReplay
from codex_tui.tui.state import AppState
from codex_tui.tui.tool_lines import image_marker, image_size, mcp_call_line, web_search_line
from codex_tui.tui.widgets.chat_view import ChatView, ToolLine
from codex_tui.tui.widgets.composer import Composer, PromptArea
from tests.mcp_servers.support import SERVERS
from tests.test_tasks_support import scenario
from tests.test_tui_support import SIZE, only_new_task, running_app, screen_text

Snap = Callable[..., bool]
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
ROWS: list[dict[str, Any]] = [
    {
        "name": "demo",
        "transport": "stdio",
        "target": "python demo_server.py",
        "enabled": True,
        "state": "ready",
        "error": "",
        "tools": ["echo", "add", "forecast", "pixel"],
    },
    {
        "name": "search",
        "transport": "http",
        "target": "https://mcp.example.com/mcp",
        "enabled": True,
        "state": "failed",
        "error": "did not finish starting within 10 s (startup_timeout_sec)",
        "tools": [],
    },
    {
        "name": "lazy",
        "transport": "stdio",
        "target": "npx lazy-server",
        "enabled": True,
        "state": "stopped",
        "error": "",
        "tools": [],
    },
    {
        "name": "old",
        "transport": "stdio",
        "target": "old-server --port 1",
        "enabled": False,
        "state": "disabled",
        "error": "",
        "tools": [],
    },
]


class FakeMcpSource(RolloutReplay):
    """A replay of synthetic events whose manager knows some MCP servers (start marks them running)."""

    def __init__(self, events: list[p.Event], rows: list[dict[str, Any]]) -> None:
        super().__init__(events)
        self.rows = rows
        self.ops: list[p.Op] = []

    async def submit(self, op: p.Op) -> p.OpResult:
        """Answer OP_MCP_STATUS from the canned rows; everything else as a replay."""
        self.ops.append(op)
        if op.type != p.OP_MCP_STATUS:
            return await super().submit(op)
        if op.data.get("start"):
            self.rows = [r | {"state": "ready"} if r["state"] == "stopped" else r for r in self.rows]
        return p.OpResult(True, "", {"servers": self.rows})


def item_event(kind: str, seq: int, item: dict[str, Any]) -> p.Event:
    """An item.started / item.completed event of task t-1."""
    return p.Event(kind, "t-1", seq, {"item": item}, 1.0 + seq / 10)


def chat_events() -> list[p.Event]:
    """A finished task that called MCP tools (a long result, an image, a failure) and searched the web."""
    call: dict[str, Any] = {"type": p.ITEM_MCP_TOOL_CALL, "server": "demo"}
    echo = call | {"id": "i-1", "tool": "echo", "arguments": {"text": "hi", "times": 6}}
    lines = "\n".join(f"echo {n}: hi" for n in range(1, 10))
    pixel = call | {"id": "i-2", "tool": "pixel", "arguments": {}}
    image = {"type": "image", "data": PNG_1X1, "mime_type": "image/png"}
    fail = call | {"id": "i-3", "tool": "fail", "arguments": {"message": "boom"}}
    search = {"id": "i-4", "type": p.ITEM_WEB_SEARCH, "query": "textual mcp [bold]client[/bold]"}
    sources: list[Any] = [f"https://example.com/page/{n}" for n in range(1, 6)]
    sources.insert(0, {"title": "\x1b[31mRed[/red] title", "url": "https://textual.textualize.io/"})
    return [
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Use the tools", "prompt": "Use the tools"}, 1.0),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "running"}, 1.05),
        p.Event(p.TURN_STARTED, "t-1", 2, {"turn": 1}, 1.1),
        item_event(p.ITEM_STARTED, 3, echo | {"status": "in_progress"}),
        item_event(
            p.ITEM_COMPLETED,
            4,
            echo | {"status": "completed", "result": {"content": [{"type": "text", "text": lines}]}},
        ),
        item_event(p.ITEM_COMPLETED, 5, pixel | {"status": "completed", "result": {"content": [image]}}),
        item_event(p.ITEM_COMPLETED, 6, fail | {"status": "failed", "error": "boom"}),
        item_event(p.ITEM_STARTED, 7, search | {"status": "in_progress"}),
        item_event(p.ITEM_COMPLETED, 8, search | {"status": "completed", "sources": sources}),
        item_event(p.ITEM_COMPLETED, 9, {"id": "i-5", "type": p.ITEM_AGENT_MESSAGE, "text": "All done."}),
        p.Event(p.TASK_STATUS, "t-1", 10, {"status": "ready"}, 2.0),
    ]


def mcp_approval_events() -> list[p.Event]:
    """A task waiting for the user to approve an MCP call."""
    request = {
        "request_id": "r-1",
        "kind": "mcp",
        "server": "demo",
        "tool": "forecast",
        "arguments": {"city": "Zürich", "days": [1, 2]},
        "reason": "call forecast on the MCP server demo (it runs on your machine)",
    }
    return [
        p.Event(p.TASK_CREATED, "t-1", 0, {"title": "Weather", "prompt": "Weather?"}, 1.0),
        p.Event(p.TASK_STATUS, "t-1", 1, {"status": "waiting_approval"}, 1.1),
        p.Event(p.APPROVAL_REQUESTED, "t-1", 2, request, 1.2),
    ]


def make_app(tmp_path: Path, events: list[p.Event], rows: list[dict[str, Any]] | None = None) -> CodexApp:
    """The real app on synthetic events (and canned MCP status rows)."""
    config = Config(layout="tabs", home=tmp_path / "home", model="scripted:default")
    source = RolloutReplay(events) if rows is None else FakeMcpSource(events, rows)
    return CodexApp(config, source, repo=tmp_path, show_elapsed=False)


async def settle(pilot: Pilot[Any], condition: Callable[[], bool] | None = None) -> None:
    """Wait until the events are folded in and shown (and `condition`), with a still cursor."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    app.main_widget(PromptArea).cursor_blink = False
    for _ in range(200):
        done = not app._inbox and app.state.tasks and app.selected_id is not None
        if done and (condition is None or condition()):
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError(f"the app did not settle\n{screen_text(app)}")  # type: ignore[arg-type]
    await pilot.pause(0.2)


async def open_mcp(pilot: Pilot[Any]) -> McpScreen:
    """Type /mcp in the composer and wait for the servers (or a message) to show."""
    app = pilot.app
    assert isinstance(app, CodexApp)
    composer = app.main_widget(Composer)
    composer.area.focus()
    composer.area.insert("/mcp")
    await pilot.press("enter")
    for _ in range(200):
        screen = app.screen
        loaded = isinstance(screen, McpScreen) and not screen.message.endswith("…")
        if loaded and isinstance(screen, McpScreen) and (screen.rows or screen.message):
            await pilot.pause(0.1)
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"/mcp did not open\n{screen_text(app)}")


def tool_lines(app: CodexApp) -> list[ToolLine]:
    """The tool line widgets of the chat pane."""
    return list(app.main_widget(ChatView).query(ToolLine))


# --- the chat lines, as the reducer builds them ---------------------------------------------------


def test_mcp_call_line_shows_server_tool_arguments_and_status() -> None:
    item = {"type": p.ITEM_MCP_TOOL_CALL, "server": "demo", "tool": "echo", "arguments": {"text": "hi"}}
    assert mcp_call_line(item | {"status": "in_progress"}).text == 'demo.echo(text="hi") · running'
    done = mcp_call_line(
        item | {"status": "completed", "result": {"content": [{"type": "text", "text": "ok"}]}}
    )
    assert (done.icon, done.text, done.detail, done.error) == (
        "⚒",
        'demo.echo(text="hi") · completed',
        "ok",
        False,
    )


def test_failed_mcp_call_is_an_error_with_its_message() -> None:
    line = mcp_call_line(
        {"server": "demo", "tool": "fail", "arguments": {}, "status": "failed", "error": "boom"}
    )
    assert line.error and line.detail == "boom" and line.text.endswith("· failed")


def test_mcp_call_with_structured_content_only_shows_it_as_json() -> None:
    result = {"content": [], "structured_content": {"city": "Paris", "celsius": 21}}
    line = mcp_call_line({"server": "w", "tool": "forecast", "status": "completed", "result": result})
    assert line.detail == '{"city": "Paris", "celsius": 21}'


def test_mcp_call_with_raw_text_arguments_shows_the_text() -> None:
    line = mcp_call_line({"server": "s", "tool": "t", "arguments": "{not json", "status": "failed"})
    assert line.text.startswith("s.t({not json)")


def test_image_results_become_a_marker_with_their_size() -> None:
    assert image_marker({"type": "image", "data": PNG_1X1, "mime_type": "image/png"}) == "[image 1×1 png]"
    assert image_marker({"type": "image", "mime_type": "image/jpeg", "omitted_bytes": 1_200_000}) == (
        "[image jpeg, 1.2 MB]"
    )
    assert image_marker({"type": "image", "data": "not base64!", "mime_type": "image/png"}) == "[image png]"


def test_image_size_reads_png_gif_and_jpeg_headers() -> None:
    assert image_size(base64.b64decode(PNG_1X1)) == (1, 1)
    assert image_size(b"GIF89a" + struct.pack("<HH", 640, 480) + b"\0" * 8) == (640, 480)
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"\0" * 14
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 480, 640) + b"\0" * 10
    assert image_size(b"\xff\xd8" + app0 + sof) == (640, 480)
    assert image_size(b"\x89PNG\r\n\x1a\n") is None and image_size(b"") is None


def test_web_search_lists_five_sources_and_counts_the_rest() -> None:
    sources = [f"https://example.com/{n}" for n in range(8)]
    line = web_search_line({"query": "codex", "status": "completed", "sources": sources})
    assert line.text == 'Searched "codex"' and line.icon == "🔎"
    assert line.detail.splitlines() == [*sources[:5], "… and 3 more"]
    assert web_search_line({"query": "codex", "status": "in_progress"}).text == 'Searching "codex"'
    failed = web_search_line({"query": "codex", "status": "failed", "error": "stream ended"})
    assert failed.error and failed.detail == "stream ended"


def test_reducer_strips_control_sequences_from_tool_items() -> None:
    state = AppState()
    for event in chat_events():
        state.apply(event)
    blocks = {b.id: b for b in state.tasks["t-1"].blocks}
    assert "\x1b" not in blocks["i-4"].detail
    assert blocks["i-4"].detail.splitlines()[0] == "Red[/red] title — https://textual.textualize.io/"
    assert blocks["i-3"].level == "error" and blocks["i-1"].level == ""
    assert blocks["i-2"].detail == "[image 1×1 png]"


def test_slash_mcp_parses_and_completes() -> None:
    assert parse_slash("/mcp") is not None and not hasattr(parse_slash("/mcp"), "message")
    assert "/mcp" in complete_slash("/mc")


# --- the chat pane -------------------------------------------------------------------------------


async def test_chat_shows_mcp_calls_and_web_search_folded(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(tool_lines(app)) == 4)
        text = screen_text(app)
        assert '⚒ demo.echo(text="hi", times=6) · completed' in text
        assert "echo 6: hi" in text and "echo 7: hi" not in text
        assert "… 3 more lines (click to expand)" in text
        assert "[image 1×1 png]" in text and "⚒ demo.fail" in text
        assert '🔎 Searched "textual mcp [bold]client[/bold]"' in text
        assert "Red[/red] title — https://textual.textualize.io/" in text
        assert "https://example.com/page/4" in text and "… and 1 more" in text


async def test_clicking_a_folded_result_expands_and_folds_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(tool_lines(app)) == 4)
        first = tool_lines(app)[0]
        await pilot.click(first)
        await pilot.pause(0.1)
        assert first.expanded and "echo 9: hi" in screen_text(app)
        await pilot.click(first)
        await pilot.pause(0.1)
        assert not first.expanded and "echo 9: hi" not in screen_text(app)


async def test_failed_mcp_call_is_drawn_in_the_error_colour(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: len(tool_lines(app)) == 4)
        failed = [w for w in tool_lines(app) if w.block.id == "i-3"]
        assert failed and failed[0].has_class("error")
        assert not tool_lines(app)[0].has_class("error")


# --- the approval dialog -------------------------------------------------------------------------


async def test_mcp_approval_names_tool_and_server_and_shows_arguments_as_json(tmp_path: Path) -> None:
    app = make_app(tmp_path, mcp_approval_events())
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            if isinstance(app.screen, ApprovalScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "The agent wants to call tool forecast of MCP server demo" in text
        assert "(no details)" not in text
        for line in json.dumps({"city": "Zürich", "days": [1, 2]}, indent=2, ensure_ascii=False).splitlines():
            assert line in text


# --- the /mcp screen -----------------------------------------------------------------------------


async def test_slash_mcp_lists_servers_with_state_target_and_tools(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events(), ROWS)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_mcp(pilot)
        text = screen_text(app)
        assert "demo" in text and "● running" in text and "tools: echo, add, forecast, pixel" in text
        assert "stdio · python demo_server.py · enabled" in text
        assert "✘ failed" in text and "did not finish starting within 10 s" in text
        assert "○ not started" in text and "⊘ disabled" in text and "disabled in config" in text


async def test_start_key_starts_servers_and_refreshes(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events(), ROWS)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_mcp(pilot)
        await pilot.press("s")
        for _ in range(100):
            if all(r["state"] != "stopped" for r in screen.rows):
                break
            await pilot.pause(0.05)
        source = app.source
        assert isinstance(source, FakeMcpSource)
        assert [op.data for op in source.ops if op.type == p.OP_MCP_STATUS] == [
            {"start": False},
            {"start": True},
        ]
        assert "○ not started" not in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, McpScreen)


async def test_mcp_screen_in_a_replay_says_not_available(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_mcp(pilot)
        assert screen.message == REPLAY_NO_MCP and REPLAY_NO_MCP in screen_text(app)


def test_server_rows_never_carry_control_sequences() -> None:
    row = ROWS[1] | {"error": "\x1b]0;pwned\x07bad \x1b[2Jthing", "name": "x\x1b[31my"}
    plain = server_content(row).plain
    assert "\x1b" not in plain and "\x07" not in plain and "bad thing" in plain and "xy" in plain


async def test_help_and_palette_list_mcp(tmp_path: Path) -> None:
    app = make_app(tmp_path, chat_events())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "`/mcp`" in app.help_text()
        assert ("MCP servers", "configured servers, their state and tools", "mcp") in app.palette_actions()


# --- snapshots -----------------------------------------------------------------------------------


def test_snapshot_chat_with_mcp_call_and_web_search(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CodexApp)
        await settle(pilot, lambda: len(tool_lines(app)) == 4)

    assert snap_compare(make_app(tmp_path, chat_events()), terminal_size=SIZE, run_before=run_before)


def test_snapshot_mcp_screen(snap_compare: Snap, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await open_mcp(pilot)

    assert snap_compare(make_app(tmp_path, chat_events(), ROWS), terminal_size=SIZE, run_before=run_before)


# --- a real MCP server through the real task manager ---------------------------------------------


async def test_real_mcp_call_is_approved_then_shown_in_chat_and_mcp_screen(
    git_repo: Path, isolated_home: Path
) -> None:
    demo = McpServerConfig("demo", command=sys.executable, args=[str(SERVERS / "demo_server.py")])
    scripted = scenario(
        "mcp", {"tool_calls": [{"name": "demo__echo", "arguments": {"text": "hi"}}]}, {"text": "Echoed."}
    )
    async with running_app(
        git_repo, isolated_home, [scripted], model="scripted:mcp", mcp_servers={"demo": demo}
    ) as h:
        before = {t["id"] for t in h.manager.tasks()}
        await h.send("echo hi through MCP")
        await h.wait(lambda: len(h.manager.tasks()) > len(before), what="the task to be created")
        task_id = only_new_task(h, before)
        await h.wait(lambda: isinstance(h.app.screen, ApprovalScreen), what="the MCP approval")
        sentence = "The agent wants to call tool echo of MCP server demo"
        await h.wait(lambda: sentence in h.text(), what="the approval's sentence")
        await h.pilot.press("y")
        await h.wait_status(task_id, "ready", timeout=60)
        await h.wait(lambda: '⚒ demo.echo(text="hi") · completed' in h.text(), what="the MCP line")
        assert "echo: hi" in h.text()
        screen = await open_mcp(h.pilot)
        assert [r["state"] for r in screen.rows] == ["ready"]
        assert "● running" in h.text() and "echo" in h.text()


async def test_start_key_on_real_manager_starts_servers_and_shows_a_failure(
    git_repo: Path, isolated_home: Path
) -> None:
    servers = {
        "demo": McpServerConfig("demo", command=sys.executable, args=[str(SERVERS / "demo_server.py")]),
        "broken": McpServerConfig(
            "broken", command=sys.executable, args=[str(SERVERS / "crashing_server.py")]
        ),
    }
    async with running_app(git_repo, isolated_home, [], mcp_servers=servers) as h:
        screen = await open_mcp(h.pilot)
        assert [r["state"] for r in screen.rows] == ["stopped", "stopped"]
        assert "○ not started" in h.text()
        await h.pilot.press("s")
        await h.wait(lambda: [r["state"] for r in screen.rows] == ["ready", "failed"], timeout=60)
        await h.pilot.pause(0.1)
        text = h.text()
        assert "● running" in text and "tools: " in text and "echo" in text
        assert "✘ failed" in text and "MCP server 'broken' failed to start" in text
