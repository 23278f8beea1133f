"""Retries shared by both wire clients: backoff with jitter, Retry-After, idle-stream timeout.

A model call is one *attempt* function that streams events and ends with `Completed`. Anything
that breaks an attempt (429, 5xx, connection error, a stream that is cut, goes silent or ends
early, a retryable in-stream error) makes :func:`stream_with_retries` yield `Retrying` and run the
whole call again; a 4xx other than 408/409/429 or an exhausted budget raises `ModelError` with the
server's own message and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import openai

from codex_tui.models.base import (
    Completed,
    ModelError,
    ModelEvent,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCall,
)

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER_S = 120.0
_TRY_AGAIN_RE = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


@dataclass(slots=True)
class RetryPolicy:
    """How often and how patiently a model call is retried."""

    max_retries: int = 4
    base_delay_s: float = 0.2
    max_delay_s: float = 20.0
    idle_timeout_s: float = 300.0
    """No stream event (or no response head) for this long counts as a cut stream."""

    def backoff(self, attempt: int) -> float:
        """Exponential delay with ±10 % jitter for the given 1-based retry attempt."""
        delay: float = self.base_delay_s * 2.0 ** (attempt - 1)
        return min(self.max_delay_s, delay) * random.uniform(0.9, 1.1)


class StreamFailure(Exception):
    """An attempt broke in a way the wire client detected (cut, silence, in-stream error)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


def retry_after_from_message(message: str) -> float | None:
    """Seconds from a message like "Please try again in 1.5s" (rate-limit errors mid-stream)."""
    found = _TRY_AGAIN_RE.search(message)
    if not found:
        return None
    value = float(found.group(1))
    return value / 1000 if found.group(2).lower() == "ms" else value


def classify(exc: Exception) -> StreamFailure:
    """Turn any failure of an attempt into a StreamFailure saying whether to retry."""
    if isinstance(exc, StreamFailure):
        return exc
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        return StreamFailure(
            server_message(exc),
            retryable=retryable,
            status_code=status,
            retry_after_s=retry_after_from_headers(exc.response.headers),
        )
    if isinstance(exc, openai.APITimeoutError):
        return StreamFailure("the model server did not answer in time (request timed out)")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {cause}" if cause and str(cause) else ""
        return StreamFailure(f"connection to the model server failed{detail}")
    if isinstance(exc, openai.APIError):
        message = server_message(exc)
        return StreamFailure(message, retry_after_s=retry_after_from_message(message))
    if isinstance(exc, ValueError):
        return StreamFailure(f"the model server sent a malformed stream: {exc}")
    return StreamFailure(f"model call failed: {type(exc).__name__}: {exc}", retryable=False)


def server_message(exc: openai.APIError) -> str:
    """The server's own error message (not the SDK's "Error code: …" wrapper)."""
    body = exc.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str) and inner["message"]:
            return str(inner["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


async def with_idle_timeout(awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await with the idle timeout; silence becomes a retryable StreamFailure.

    `asyncio.timeout` awaits in the caller's task: a cancellation (an interrupt) always reaches the
    stream, where `wait_for` on 3.11 could swallow it when the next event arrived at the same moment.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError:
        raise StreamFailure(f"no {what} from the model server for {timeout_s:g}s (idle timeout)") from None


async def iterate_with_idle_timeout(stream: AsyncIterator[T], timeout_s: float) -> AsyncGenerator[T, None]:
    """Iterate a stream, failing when no item arrives within `timeout_s`; close it with `aclosing`."""
    iterator = stream if isinstance(stream, AsyncIterator) else aiter(stream)
    while True:
        try:
            item = await with_idle_timeout(anext(iterator), timeout_s, "stream event")
        except StopAsyncIteration:
            return
        yield item


async def stream_with_retries(
    attempt: Callable[[], AsyncGenerator[ModelEvent, None]], policy: RetryPolicy
) -> AsyncGenerator[ModelEvent, None]:
    """Run `attempt` until it yields `Completed`, retrying per `policy`; raises ModelError."""
    retries = 0
    while True:
        streamed = False
        try:
            async with contextlib.aclosing(attempt()) as events:
                async for event in events:
                    if isinstance(event, TextDelta | ReasoningDelta | ToolCall):
                        streamed = True
                    yield event
                    if isinstance(event, Completed):
                        return
            raise StreamFailure("the stream ended before the response was complete")
        except ModelError:
            raise
        except Exception as exc:
            failure = classify(exc)
        if not failure.retryable:
            raise ModelError(failure.message, status_code=failure.status_code)
        if retries >= policy.max_retries:
            note = f" (gave up after {retries} retries)" if retries else ""
            raise ModelError(f"{failure.message}{note}", status_code=failure.status_code)
        retries += 1
        delay = failure.retry_after_s
        delay = policy.backoff(retries) if delay is None else min(delay, MAX_RETRY_AFTER_S)
        yield Retrying(attempt=retries, delay_s=delay, reason=_reason(failure), discard_partial=streamed)
        await asyncio.sleep(delay)


def _reason(failure: StreamFailure) -> str:
    status = f"HTTP {failure.status_code}: " if failure.status_code else ""
    return f"{status}{failure.message}"
