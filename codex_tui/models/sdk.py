"""Thin helpers around the `openai` SDK's request building."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import AsyncGenerator
from typing import Any

import openai

from codex_tui.models.base import (
    ModelError,
    ModelEvent,
    ModelRequest,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCall,
)
from codex_tui.models.retry import RetryPolicy, stream_with_retries

RAW_PARAMS = ("input", "instructions", "tools", "messages", "text", "response_format")
"""Params already in wire shape, sent as is: the large ones, and the caller's output schema."""
_REASONING_WORDS = re.compile(r"reasoning[._ ](effort|summar)|\bthink", re.IGNORECASE)
"""`reasoning.effort` / `reasoning_effort` unsupported, unverified for reasoning summaries, Ollama's think."""


def raw_body(kwargs: dict[str, Any], keys: tuple[str, ...] = RAW_PARAMS) -> dict[str, Any]:
    """Move already wire-shaped, potentially large params into `extra_body`.

    The SDK walks every typed param recursively before sending (about 200 ms for a history of
    180 items, growing with its length). Our history is converted to the exact wire shape already,
    so the walk adds latency to every model call and changes nothing; `extra_body` is sent as is
    (an output schema's JSON reaches the server exactly as the caller wrote it).
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
        self.sends_reasoning_effort = True
        """False once the server refused a reasoning effort (a model that does not reason)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._client.base_url)!r})"

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        """Stream one model call; raises ModelError when it cannot complete.

        A model that does not reason answers a request with a reasoning effort with HTTP 400; the
        call is then sent again without one (and so is every later call of this client).
        """
        if not self.sends_reasoning_effort:
            request = dataclasses.replace(request, reasoning_effort=None)
        streamed = False
        try:
            async with contextlib.aclosing(self._call(request)) as events:
                async for event in events:
                    streamed = streamed or isinstance(event, TextDelta | ReasoningDelta | ToolCall)
                    yield event
        except ModelError as exc:
            if not (request.reasoning_effort and rejects_reasoning_effort(exc)):
                raise
            self.sends_reasoning_effort = False
            reason = f"{exc} — sending the request again without a reasoning effort"
            yield Retrying(attempt=1, delay_s=0.0, reason=reason, discard_partial=streamed)
            async with contextlib.aclosing(self.stream(request)) as events:
                async for event in events:
                    yield event

    def _call(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        try:
            kwargs = self.build_kwargs(request)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"cannot send the conversation: a history item is malformed ({exc!r})") from None
        return stream_with_retries(lambda: self._attempt(kwargs), self.policy)

    def build_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        """The SDK call's keyword arguments (implemented by each wire client)."""
        raise NotImplementedError

    def _attempt(self, kwargs: dict[str, Any]) -> AsyncGenerator[ModelEvent, None]:
        """One try of the call (implemented by each wire client)."""
        raise NotImplementedError


def rejects_reasoning_effort(error: ModelError) -> bool:
    """True for a 400 that blames the reasoning parameter rather than the conversation."""
    return error.status_code == 400 and _REASONING_WORDS.search(str(error)) is not None


async def hang_up(stream: Any) -> None:
    """Close an SDK stream: release the HTTP response, then end the SDK's event generator now.

    `AsyncStream.close()` only closes the response; the generator reading it would otherwise stay
    suspended until garbage collection, possibly after its event loop has closed.
    """
    await stream.close()
    events = getattr(stream, "_iterator", None)
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()
