"""`codex-tui exec --json` with an MCP server configured, and with hosted web search on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from codex_tui.exec_printers import approval_subject, tool_item_line
from codex_tui.scripted import ScriptedServer
from tests.mcp_servers.support import SERVERS
from tests.test_exec import provider_flags, run_cli
from tests.test_tasks_support import scenario

SECRET = "s3cr3t-mcp-token-value"


def write_config(home: Path, *, approval: str = "never") -> None:
    """config.toml with the demo server (its env holds a secret that must stay out of rollouts)."""
    script = json.dumps(str(SERVERS / "demo_server.py"))
    (home / "config.toml").write_text(
        f"""
[mcp_servers.demo]
command = {json.dumps(sys.executable)}
args = [{script}]
env = {{ DEMO_SECRET = "{SECRET}" }}
approval = "{approval}"
disabled_tools = ["crash"]
""",
        encoding="utf-8",
    )


def mcp_scenario() -> dict[str, object]:
    """Search the web, call three MCP tools, then answer."""
    return scenario(
        "mcp",
        {
            "web_searches": [{"query": "codex mcp", "sources": ["https://example.com/mcp"]}],
            "tool_calls": [
                {"name": "demo__echo", "arguments": {"text": "hi"}},
                {"name": "demo__pixel", "arguments": {}},
                {"name": "demo__env_secret", "arguments": {}},
            ],
        },
        {"text": "All done."},
    )


def test_exec_json_emits_mcp_tool_call_and_web_search_items(git_repo: Path, isolated_home: Path) -> None:
    write_config(isolated_home)
    srv = ScriptedServer([mcp_scenario()]).start_in_thread()
    try:
        flags = provider_flags(srv.base_url, "scripted:mcp")
        result = run_cli("exec", "--json", "--search", "-C", str(git_repo), *flags, "go", home=isolated_home)
        bodies = [r.body for r in srv.model_requests()]
    finally:
        srv.stop()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    done = [e["item"] for e in events if e["type"] == "item.completed"]
    calls = [i for i in done if i["type"] == "mcp_tool_call"]
    assert [(c["server"], c["tool"], c["status"]) for c in calls] == [
        ("demo", "echo", "completed"),
        ("demo", "pixel", "completed"),
        ("demo", "env_secret", "completed"),
    ]
    assert calls[0]["arguments"] == {"text": "hi"}
    assert calls[0]["result"]["content"] == [{"type": "text", "text": "echo: hi"}]
    assert calls[0]["result"]["structured_content"] == {"result": "echo: hi"}
    assert calls[1]["result"]["content"][0]["type"] == "image"
    started = [
        e["item"] for e in events if e["type"] == "item.started" and e["item"]["type"] == "mcp_tool_call"
    ]
    assert [s["status"] for s in started] == ["in_progress"] * 3
    [search] = [i for i in done if i["type"] == "web_search"]
    assert search["query"] == "codex mcp" and search["status"] == "completed"
    assert search["sources"] == ["https://example.com/mcp"]
    tools = bodies[0]["tools"]
    assert {"type": "web_search"} in tools
    names = {t.get("name") for t in tools}
    assert {"demo__echo", "demo__pixel", "demo__forecast"} <= names and "demo__crash" not in names
    second = bodies[1]["input"]
    outputs = {i["call_id"]: i["output"] for i in second if i.get("type") == "function_call_output"}
    assert '{"result": "echo: hi"}' in outputs.values() and '{"result": "secret present"}' in outputs.values()
    assert any(i.get("type") == "web_search_call" and i["action"]["query"] == "codex mcp" for i in second)
    images = [
        p for i in second if i.get("type") == "message" for p in i["content"] if p["type"] == "input_image"
    ]
    assert images and images[0]["image_url"].startswith("data:image/png;base64,")
    data = isolated_home / "data"
    kept = [
        f
        for f in data.rglob("*")
        if f.is_file() and f.relative_to(data).parts[0] not in ("disks", "worktrees")
    ]
    stored = "".join(f.read_text(encoding="utf-8", errors="replace") for f in kept)
    assert stored and SECRET not in stored and SECRET not in result.stdout + result.stderr


def test_exec_mcp_call_waits_for_approval_and_a_headless_run_declines_it(
    git_repo: Path, isolated_home: Path
) -> None:
    write_config(isolated_home, approval="on-request")
    srv = ScriptedServer([mcp_scenario()]).start_in_thread()
    try:
        flags = provider_flags(srv.base_url, "scripted:mcp")
        result = run_cli("exec", "--json", "-C", str(git_repo), *flags, "use the tools", home=isolated_home)
    finally:
        srv.stop()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    calls = [
        e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "mcp_tool_call"
    ]
    assert calls and all(c["status"] == "failed" and c["error"] == "declined by the user" for c in calls)
    assert not [e for e in events if e["type"] == "item.completed" and e["item"]["type"] == "web_search"]


def test_mcp_list_shows_each_server_state_and_tools(isolated_home: Path) -> None:
    write_config(isolated_home)
    crashy = json.dumps(str(SERVERS / "crashing_server.py"))
    with (isolated_home / "config.toml").open("a", encoding="utf-8") as handle:
        handle.write(f"\n[mcp_servers.crashy]\ncommand = {json.dumps(sys.executable)}\nargs = [{crashy}]\n")
    text = run_cli("mcp", "list", home=isolated_home)
    as_json = run_cli("mcp", "list", "--json", home=isolated_home)
    assert text.returncode == 1 and as_json.returncode == 1
    assert "demo · stdio · ready" in text.stdout and "tools: echo, add, forecast, pixel" in text.stdout
    assert "crashy · stdio · failed" in text.stdout and "missing configuration" in text.stdout
    rows = {row["name"]: row for row in json.loads(as_json.stdout)["servers"]}
    assert rows["demo"]["state"] == "ready" and "crash" not in rows["demo"]["tools"]
    assert rows["crashy"]["state"] == "failed" and SECRET not in as_json.stdout


def test_people_see_mcp_calls_searches_and_mcp_approvals_as_one_line_each() -> None:
    call = {"type": "mcp_tool_call", "server": "demo", "tool": "echo", "arguments": {"text": "hi"}}
    assert tool_item_line({**call, "status": "completed"}) == '⚒ MCP demo.echo {"text": "hi"} · completed'
    failed = tool_item_line({**call, "status": "failed", "error": "declined by the user"})
    assert failed.endswith("· failed: declined by the user")
    search = {
        "type": "web_search",
        "query": "mcp",
        "status": "completed",
        "sources": ["https://a", "https://b"],
    }
    assert tool_item_line(search) == '⌕ searched "mcp" · 2 sources'
    request = {"kind": "mcp", "server": "demo", "tool": "echo", "arguments": {"text": "hi"}}
    assert approval_subject(request) == 'MCP demo.echo {"text": "hi"}'
