"""make_model_client: provider choice, keys, base URLs and the retry budget from config."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.config import Config, ConfigError, ModelProvider, load_config
from codex_tui.models.base import ModelError, ModelRequest, TextDelta, ToolSpec
from codex_tui.models.chat import ChatClient
from codex_tui.models.factory import make_model_client
from codex_tui.models.responses import ResponsesClient
from codex_tui.models.scripted_testing import collect_events
from codex_tui.scripted import ScriptedServer

SECRET = "sk-live-do-not-leak-1234567890"


def request() -> ModelRequest:
    history = [{"type": "message", "role": "user", "content": [{"type": "text", "text": "hello"}]}]
    return ModelRequest(
        "scripted:s", "Be brief.", history, tools=[ToolSpec("shell", "Run", {"type": "object"})]
    )


def scripted(api_key: str | None = None) -> ScriptedServer:
    return ScriptedServer([{"name": "s", "turns": [{"text": "hi there"}]}], api_key=api_key)


def test_missing_key_says_which_variable_to_set_or_to_use_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"set OPENAI_API_KEY or use --demo"):
        make_model_client(Config())


async def test_key_from_the_environment_is_sent_but_never_recorded_or_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    async with scripted(api_key=SECRET) as srv:
        client = make_model_client(Config(), base_url_override=srv.base_url)
        events = await collect_events(client, request())
        recorded = repr(srv.requests)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hi there"
    assert srv.requests[0].authorized is True
    assert SECRET not in recorded and SECRET not in repr(client)
    assert isinstance(client, ResponsesClient)


async def test_openai_base_url_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    async with scripted() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        await collect_events(make_model_client(Config()), request())
        assert [r.path for r in srv.requests] == ["/v1/responses"]


async def test_chat_provider_without_key_talks_chat_completions(tmp_path: Path) -> None:
    async with scripted() as srv:
        config = f'model_provider = "local"\n[model_providers.local]\nbase_url = "{srv.base_url}"\n'
        (tmp_path / "config.toml").write_text(config + 'wire_api = "chat"\n')
        client = make_model_client(load_config(home=tmp_path))
        events = await collect_events(client, request())
        assert [r.path for r in srv.requests] == ["/v1/chat/completions"]
    assert isinstance(client, ChatClient)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hi there"


async def test_retry_budget_comes_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    errors = [{"status": 503, "message": "Service busy"}] * 4
    async with ScriptedServer([{"name": "s", "turns": [{"text": "x", "errors": errors}]}]) as srv:
        cfg = Config(request_max_retries=1)
        cfg.model_providers["demo"] = ModelProvider("demo", None, None, "chat", False)
        cfg.model_provider = "demo"
        with pytest.raises(ModelError, match="Service busy"):
            await collect_events(make_model_client(cfg, base_url_override=srv.base_url), request())
        assert len(srv.model_requests()) == 2
