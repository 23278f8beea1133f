"""Retries, backoff, Retry-After, cut and silent streams, and errors that must fail at once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import httpx2
import pytest

from codex_tui.models.base import Completed, ModelError, ModelRequest, Retrying, TextDelta, ToolCall, ToolSpec
from codex_tui.models.retry import (
    RetryPolicy,
    retry_after_from_headers,
    retry_after_from_message,
    with_idle_timeout,
)
from codex_tui.models.scripted_testing import collect_events, scripted_client
from codex_tui.scripted import ScriptedServer

WIRES = ["responses", "chat"]
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"command": {"type": "array"}}})


def request(model: str = "scripted:s") -> ModelRequest:
    history = [{"type": "message", "role": "user", "content": [{"type": "text", "text": "fix it"}]}]
    return ModelRequest(model=model, instructions="Be brief.", history=history, tools=[SHELL])


def server(turn: dict[str, Any], **kw: Any) -> ScriptedServer:
    return ScriptedServer([{"name": "s", "turns": [turn]}], **kw)


@pytest.mark.parametrize("wire", WIRES)
async def test_429_with_retry_after_is_retried_after_the_servers_delay(wire: str) -> None:
    turn = {
        "text": "ok",
        "errors": [{"status": 429, "retry_after": 0.05, "message": "Rate limited, slow down"}],
    }
    async with server(turn) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire, base_delay_s=5.0), request())
        attempts = len(srv.model_requests())
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert len(retrying) == 1
    assert retrying[0].delay_s == pytest.approx(0.05)
    assert "429" in retrying[0].reason and "Rate limited, slow down" in retrying[0].reason
    assert retrying[0].discard_partial is False
    assert isinstance(events[-1], Completed) and attempts == 2


@pytest.mark.parametrize("wire", WIRES)
async def test_500_until_retries_run_out_raises_the_servers_message(wire: str) -> None:
    errors = [{"status": 500, "message": "The engine is overheating"}] * 5
    async with server({"text": "never", "errors": errors}) as srv:
        client = scripted_client(srv.base_url, wire, max_retries=2)
        seen: list[Any] = []
        with pytest.raises(ModelError) as info:
            async for event in client.stream(request()):
                seen.append(event)
        attempts = len(srv.model_requests())
    assert "The engine is overheating" in str(info.value)
    assert info.value.status_code == 500
    assert [e.attempt for e in seen if isinstance(e, Retrying)] == [1, 2]
    assert attempts == 3


@pytest.mark.parametrize("wire", WIRES)
async def test_stream_cut_in_the_middle_of_a_tool_call_is_retried_whole(wire: str) -> None:
    calls = [{"name": "shell", "arguments": {"command": ["pytest", "-q", "tests/test_parser.py"]}}]
    turn = {"text": "Running the tests.", "tool_calls": calls, "chunk_chars": 4, "cut_after_events": 15}
    async with server(turn) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request())
        attempts = len(srv.model_requests())
    cut_at = next(i for i, e in enumerate(events) if isinstance(e, Retrying))
    before, retry, after = events[:cut_at], events[cut_at], events[cut_at + 1 :]
    assert isinstance(retry, Retrying) and retry.discard_partial is True
    assert any(isinstance(e, TextDelta) for e in before)
    assert not any(isinstance(e, ToolCall) for e in before)
    assert "".join(e.text for e in after if isinstance(e, TextDelta)) == "Running the tests."
    (call,) = [e for e in after if isinstance(e, ToolCall)]
    assert json.loads(call.arguments) == {"command": ["pytest", "-q", "tests/test_parser.py"]}
    assert isinstance(events[-1], Completed) and attempts == 2


@pytest.mark.parametrize("wire", WIRES)
async def test_silent_stream_hits_the_idle_timeout_and_is_retried(wire: str) -> None:
    turn = {"text": "finally here", "stall_after_events": 2, "stall_ms": 30_000}
    async with server(turn) as srv:
        started = time.monotonic()
        events = await collect_events(scripted_client(srv.base_url, wire, idle_timeout_s=0.3), request())
        elapsed = time.monotonic() - started
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert "idle timeout" in retry.reason
    assert isinstance(events[-1], Completed)
    assert elapsed < 5


@pytest.mark.parametrize("wire", WIRES)
async def test_wrong_api_key_fails_at_once_with_401(wire: str) -> None:
    async with server({"text": "never"}, api_key="sk-right") as srv:
        client = scripted_client(srv.base_url, wire, api_key="sk-wrong", max_retries=4)
        with pytest.raises(ModelError) as info:
            await collect_events(client, request())
        attempts = len(srv.model_requests())
    assert info.value.status_code == 401
    assert "Incorrect API key provided" in str(info.value)
    assert attempts == 1


@pytest.mark.parametrize("wire", WIRES)
async def test_unknown_model_fails_at_once_with_404(wire: str) -> None:
    async with server({"text": "never"}) as srv:
        with pytest.raises(ModelError) as info:
            await collect_events(scripted_client(srv.base_url, wire), request("scripted:nope"))
        attempts = len(srv.model_requests())
    assert info.value.status_code == 404
    assert "scripted:nope" in str(info.value) and attempts == 1


@pytest.mark.parametrize("wire", WIRES)
async def test_error_inside_a_stream_is_retried(wire: str) -> None:
    errors = [{"in_stream": True, "code": "server_error", "message": "upstream hiccup"}]
    async with server({"text": "recovered", "errors": errors}) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request())
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert "upstream hiccup" in retry.reason
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "recovered"


async def test_failed_response_with_a_non_retryable_code_fails_at_once() -> None:
    errors = [{"in_stream": True, "code": "invalid_prompt", "message": "Your prompt was flagged"}] * 3
    async with server({"text": "never", "errors": errors}) as srv:
        with pytest.raises(ModelError, match="Your prompt was flagged"):
            await collect_events(scripted_client(srv.base_url, "responses"), request())
        assert len(srv.model_requests()) == 1


async def test_connection_refused_is_retried_then_reported() -> None:
    async with server({"text": "x"}) as srv:
        url = srv.base_url
    client = scripted_client(url, "responses", max_retries=1)
    events: list[Any] = []
    with pytest.raises(ModelError, match="connection"):
        async for event in client.stream(request()):
            events.append(event)
    assert [type(e) for e in events] == [Retrying]


def test_retry_after_headers_prefer_milliseconds_then_seconds_then_dates() -> None:
    assert retry_after_from_headers(httpx2.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after_from_headers(httpx2.Headers({"retry-after": "2"})) == 2.0
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 < (retry_after_from_headers(httpx2.Headers({"retry-after": in_a_minute})) or 0) <= 60
    assert retry_after_from_headers(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_from_headers(None) is None


def test_try_again_hint_in_a_message_gives_the_delay() -> None:
    assert retry_after_from_message("Rate limit reached. Please try again in 1.5s.") == 1.5
    assert retry_after_from_message("Please try again in 300ms") == 0.3
    assert retry_after_from_message("something else") is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=1.0)
    assert 0.18 <= policy.backoff(1) <= 0.22
    assert 0.72 <= policy.backoff(3) <= 0.88
    assert policy.backoff(10) <= 1.1


@pytest.mark.parametrize("wire", WIRES)
async def test_stream_that_ends_before_completion_is_retried(wire: str) -> None:
    turn = {"text": "a complete answer", "chunk_chars": 2, "cut_after_events": 6, "cut_cleanly": True}
    async with server(turn) as srv:
        events = await collect_events(scripted_client(srv.base_url, wire), request())
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert "ended before" in retry.reason and retry.discard_partial is True
    after = events[events.index(retry) + 1 :]
    assert "".join(e.text for e in after if isinstance(e, TextDelta)) == "a complete answer"


@pytest.mark.parametrize("wire", WIRES)
async def test_interrupting_a_call_hangs_up_on_the_server(wire: str) -> None:
    turn = {"text": "word " * 400, "chunk_chars": 5, "chunk_delay_ms": 5}
    async with server(turn) as srv:
        stream = scripted_client(srv.base_url, wire).stream(request())
        first = await anext(aiter(stream))
        assert isinstance(first, TextDelta) and srv.active_streams == 1
        await stream.aclose()  # type: ignore[attr-defined]
        for _ in range(200):
            if srv.active_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert srv.active_streams == 0


async def test_idle_timeout_never_swallows_an_interrupt_that_meets_the_next_event() -> None:
    next_event: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    reader = asyncio.create_task(with_idle_timeout(next_event, 10.0, "stream event"))
    await asyncio.sleep(0)  # the reader is now waiting for the event
    next_event.set_result("delta")
    reader.cancel()  # the user interrupts in the same instant
    with pytest.raises(asyncio.CancelledError):
        await reader


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    "message",
    [
        "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        'think value "medium" is not supported for this model',
        "Your organization must be verified to generate reasoning summaries.",
    ],
    ids=["openai", "ollama", "unverified-summaries"],
)
async def test_model_that_refuses_a_reasoning_effort_is_asked_again_without_one(
    wire: str, message: str
) -> None:
    turn = {"text": "a plain answer", "errors": [{"status": 400, "message": message}]}
    effort = dataclasses.replace(request(), reasoning_effort="medium")
    async with server(turn) as srv:
        client = scripted_client(srv.base_url, wire)
        events = await collect_events(client, effort)
        later = await collect_events(client, effort)
        bodies = [r.body for r in srv.model_requests()]
    [retry] = [e for e in events if isinstance(e, Retrying)]
    assert message in retry.reason and "without a reasoning effort" in retry.reason
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "a plain answer"
    assert isinstance(later[-1], Completed) and not any(isinstance(e, Retrying) for e in later)
    key = "reasoning" if wire == "responses" else "reasoning_effort"
    assert [key in body for body in bodies] == [True, False, False]


async def test_other_bad_requests_still_fail_at_once_with_a_reasoning_effort() -> None:
    message = "Item 'rs_1' of type 'reasoning' was provided without its required following item: bad item"
    turn = {"text": "never", "errors": [{"status": 400, "message": message}]}
    async with server(turn) as srv:
        with pytest.raises(ModelError, match="bad item") as info:
            await collect_events(
                scripted_client(srv.base_url), dataclasses.replace(request(), reasoning_effort="high")
            )
        assert len(srv.model_requests()) == 1
    assert info.value.status_code == 400
