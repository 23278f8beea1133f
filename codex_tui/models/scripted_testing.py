"""Helpers for code that drives a wire client against the scripted server (tests, benches, demo)."""

from __future__ import annotations

import openai

from codex_tui.models.base import ModelClient, ModelEvent, ModelRequest
from codex_tui.models.chat import ChatClient
from codex_tui.models.responses import ResponsesClient
from codex_tui.models.retry import RetryPolicy

TEST_KEY = "sk-scripted-test-key"


def scripted_client(
    base_url: str,
    wire_api: str = "responses",
    *,
    max_retries: int = 3,
    idle_timeout_s: float = 10.0,
    base_delay_s: float = 0.01,
    api_key: str = TEST_KEY,
) -> ModelClient:
    """A wire client for `base_url` with a quick retry policy (short backoff)."""
    policy = RetryPolicy(max_retries=max_retries, base_delay_s=base_delay_s, idle_timeout_s=idle_timeout_s)
    client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)
    if wire_api == "chat":
        return ChatClient(client, policy)
    return ResponsesClient(client, policy)


async def collect_events(client: ModelClient, request: ModelRequest) -> list[ModelEvent]:
    """Run one model call to the end and return every event it yielded."""
    return [event async for event in client.stream(request)]
