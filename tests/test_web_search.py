"""Hosted web search on the Responses wire (scripted server), the Chat note, and the config keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codex_tui.config import ConfigError, load_config
from codex_tui.models.base import Completed, ModelRequest, WebSearchCall
from codex_tui.models.chat import history_to_messages
from codex_tui.models.responses import history_to_input
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.task_tools import web_search_enabled

SEARCH_TURN = {
    "web_searches": [{"query": "textual markdown stream", "sources": ["https://textual.textualize.io/"]}],
    "text": "Found it.",
}


def request(**kw: Any) -> ModelRequest:
    prompt = {"type": "message", "role": "user", "content": [{"type": "text", "text": "search"}]}
    return ModelRequest(model="scripted:s", instructions="", history=[prompt], **kw)


async def test_search_is_offered_and_web_search_call_items_come_back_on_the_wire() -> None:
    async with ScriptedServer([{"name": "s", "turns": [SEARCH_TURN]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url), request(web_search=True))
        body = srv.model_requests()[0].body
    assert body["tools"] == [{"type": "web_search"}]
    assert "web_search_call.action.sources" in body["include"]
    searches = [e for e in events if isinstance(e, WebSearchCall)]
    assert [s.status for s in searches] == ["in_progress", "completed"]
    assert searches[-1].query == "textual markdown stream"
    assert searches[-1].sources == ["https://textual.textualize.io/"]
    completed = events[-1]
    assert isinstance(completed, Completed)
    [item] = [i for i in completed.items if i["type"] == "web_search"]
    [wire] = [i for i in history_to_input(completed.items) if i["type"] == "web_search_call"]
    assert wire == {
        "type": "web_search_call",
        "id": item["id"],
        "status": "completed",
        "action": item["action"],
    }
    assert wire["action"]["query"] == "textual markdown stream"


async def test_without_search_no_tool_is_offered_and_no_search_happens() -> None:
    async with ScriptedServer([{"name": "s", "turns": [SEARCH_TURN]}]) as srv:
        events = await collect_events(scripted_client(srv.base_url), request())
        body = srv.model_requests()[0].body
    assert "tools" not in body
    assert not [e for e in events if isinstance(e, WebSearchCall)]


def test_chat_history_skips_search_items_and_the_task_notes_it_once(tmp_path: Path) -> None:
    history: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "text", "text": "q"}]},
        {
            "type": "web_search",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search", "query": "q"},
        },
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "a"}]},
    ]
    assert [m["role"] for m in history_to_messages("", history)] == ["user", "assistant"]
    cfg = load_config(home=tmp_path, overrides=["tools.web_search=true"])
    notes: list[dict[str, Any]] = []
    assert web_search_enabled(cfg, "ollama", lambda _k, d: notes.append(d), noted=False) is False
    assert web_search_enabled(cfg, "ollama", lambda _k, d: notes.append(d), noted=True) is False
    assert web_search_enabled(cfg, "openai", lambda _k, d: notes.append(d), noted=False) is True
    [note] = notes
    assert "no hosted search" in note["message"] and "mcp_servers" in note["message"]


def test_mcp_servers_are_read_as_codex_users_write_them(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        """
[tools]
web_search = true

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-server"]
env = { API_KEY = "k" }
startup_timeout_sec = 20
tool_timeout_sec = 5.5
enabled_tools = ["search"]
approval = "never"

[mcp_servers.remote]
url = "https://mcp.example.com/mcp"
bearer_token_env_var = "REMOTE_TOKEN"
http_headers = { "X-Team" = "core" }
enabled = false
""",
        encoding="utf-8",
    )
    cfg = load_config(home=tmp_path)
    docs, remote = cfg.mcp_servers["docs"], cfg.mcp_servers["remote"]
    assert cfg.web_search is True
    assert (docs.command, docs.args, docs.env, docs.transport) == (
        "npx",
        ["-y", "docs-server"],
        {"API_KEY": "k"},
        "stdio",
    )
    assert (docs.startup_timeout_sec, docs.tool_timeout_sec, docs.approval) == (20.0, 5.5, "never")
    assert docs.offers("search") and not docs.offers("delete")
    assert (remote.transport, remote.enabled, remote.http_headers) == ("http", False, {"X-Team": "core"})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('command = "x"\nurl = "http://h"', "either 'command'"),
        ("args = []", "needs 'command'"),
        ('command = "x"\ntool_timeout_sec = 0', "'tool_timeout_sec': must be greater than 0"),
        ('command = "x"\napproval = "always"', "'approval'"),
        ('command = "x"\ncolour = "red"', "unknown key 'colour'"),
        ('url = "ftp://h"', "http:// or https://"),
    ],
)
def test_a_wrong_mcp_server_table_names_the_table_and_key(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(f"[mcp_servers.s]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[mcp_servers\.s\]") as caught:
        load_config(home=tmp_path)
    assert message in str(caught.value)
