"""Thin helpers around the `openai` SDK's request building."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import openai

from codex_tui.models.base import ModelError, ModelEvent, ModelRequest
from codex_tui.models.retry import RetryPolicy, stream_with_retries

LARGE_PARAMS = ("input", "instructions", "tools", "messages")


def raw_body(kwargs: dict[str, Any], keys: tuple[str, ...] = LARGE_PARAMS) -> dict[str, Any]:
    """Move already wire-shaped, potentially large params into `extra_body`.

    The SDK walks every typed param recursively before sending (about 200 ms for a history of
    180 items, growing with its length). Our history is converted to the exact wire shape already,
    so the walk adds latency to every model call and changes nothing; `extra_body` is sent as is.
    """
    out = {k: v for k, v in kwargs.items() if k not in keys}
    extra = dict(out.pop("extra_body", None) or {})
    extra.update({k: kwargs[k] for k in keys if k in kwargs})
    if "messages" in extra:
        out["messages"] = []  # required by the SDK's signature; the body's value wins when merged
    if extra:
        out["extra_body"] = extra
    return out


class WireClient:
    """The shell shared by the wire clients: build the body once, then retry whole attempts."""

    def __init__(self, client: openai.AsyncOpenAI, policy: RetryPolicy | None = None) -> None:
        self._client = client
        self.policy = policy or RetryPolicy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._client.base_url)!r})"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model call; raises ModelError when it cannot complete."""
        try:
            kwargs = self.build_kwargs(request)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"cannot send the conversation: a history item is malformed ({exc!r})") from None
        async for event in stream_with_retries(lambda: self._attempt(kwargs), self.policy):
            yield event

    def build_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        """The SDK call's keyword arguments (implemented by each wire client)."""
        raise NotImplementedError

    def _attempt(self, kwargs: dict[str, Any]) -> AsyncGenerator[ModelEvent, None]:
        """One try of the call (implemented by each wire client)."""
        raise NotImplementedError
