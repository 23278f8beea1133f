"""Build the model client for the configured provider (wire API, base URL, key, retry policy)."""

from __future__ import annotations

import os

import openai

from codex_tui.config import Config, ConfigError, ModelProvider
from codex_tui.models.base import ModelClient
from codex_tui.models.chat import ChatClient
from codex_tui.models.responses import ResponsesClient
from codex_tui.models.retry import RetryPolicy

PLACEHOLDER_KEY = "codex-tui-no-key"
"""Sent to servers that need no key (the SDK always sends an Authorization header)."""
CONNECT_TIMEOUT_S = 15.0


def make_model_client(cfg: Config, *, base_url_override: str | None = None) -> ModelClient:
    """The client for `cfg.provider`; raises ConfigError when a required API key is missing.

    `base_url_override` (the scripted server of --demo and tests) needs no key.
    """
    provider = cfg.provider
    base_url = base_url_override or provider_base_url(provider)
    key = provider.api_key()
    if not key:
        if provider.requires_api_key and base_url_override is None:
            raise ConfigError(missing_key_message(provider))
        key = PLACEHOLDER_KEY
    policy = RetryPolicy(
        max_retries=max(0, cfg.request_max_retries), idle_timeout_s=cfg.stream_idle_timeout_s
    )
    timeout = openai.Timeout(max(policy.idle_timeout_s, CONNECT_TIMEOUT_S), connect=CONNECT_TIMEOUT_S)
    client = openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)
    if provider.wire_api == "chat":
        return ChatClient(client, policy)
    return ResponsesClient(client, policy)


def provider_base_url(provider: ModelProvider) -> str | None:
    """The provider's base URL; for the built-in `openai` provider OPENAI_BASE_URL wins if set."""
    if provider.name == "openai":
        return os.environ.get("OPENAI_BASE_URL") or provider.base_url
    return provider.base_url


def missing_key_message(provider: ModelProvider) -> str:
    """What the user should do when the provider's key is not in the environment."""
    env_key = provider.env_key or "an API key"
    return (
        f"model provider '{provider.name}' needs an API key: set {env_key} "
        "or use --demo to try codex-tui with the built-in scripted model"
    )
