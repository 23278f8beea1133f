"""The scripted model server: a real HTTP server that speaks both OpenAI wire APIs with canned answers.

Used by ``--demo`` and by every test. It serves ``POST /v1/responses`` and
``POST /v1/chat/completions`` (streamed as server-sent events exactly as the real API sends them,
or as one JSON body) and ``GET /v1/models``. Run it in-process::

    async with ScriptedServer(scenarios) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="anything")

or in a background thread (``srv = ScriptedServer(s).start_in_thread(); …; srv.stop()``), or
standalone: ``python -m codex_tui.scripted --scenario FILE --port N``.

Scenario format (JSON; a file holds one scenario, a list, or ``{"scenarios": [...]}``; a folder
holds ``*.json`` files)::

    {"name": "fix-bug",
     "match": "regex searched in the user's messages (optional)",
     "turns": [
       {"reasoning": "summary text", "text": "visible answer",
        "tool_calls": [
          {"name": "shell", "arguments": {"command": ["pytest", "-q"]}},
          {"name": "apply_patch", "input": "*** Begin Patch\\n...", "kind": "custom"}],
        "chunk_chars": 8, "chunk_delay_ms": 5, "delay_ms": 0,
        "errors": [{"status": 429, "retry_after": 0.05, "message": "Rate limited"}],
        "cut_after_events": 3, "cut_cleanly": false,
        "stall_after_events": 2, "stall_ms": 60000,
        "usage": {"input_tokens": 1200, "cached_input_tokens": 0, "output_tokens": 80},
        "finish_reason": "length"},
       {"json": {"verdict": "approve", "findings": []}, "requires_schema": true,
        "text_without_schema": "Looks fine to me."}]}

Fields of a turn:
  ``text`` / ``reasoning``: the answer and its reasoning summary, streamed ``chunk_chars`` at a
  time with ``chunk_delay_ms`` between events, after ``delay_ms``.
  ``tool_calls``: in order, all in one answer (parallel calls). ``arguments`` is JSON or a raw
  string (to script malformed JSON); ``input`` is freeform text (``kind`` defaults to
  ``custom`` then). A call takes the kind the request offered its tool as: a Responses request
  offering a custom tool gets ``custom_tool_call`` with ``input``; a function-offered tool (and
  every Chat call) gets a function call, with ``{"input": ...}`` arguments for freeform input.
  ``call_id`` may be given; otherwise it is derived from the conversation and turn.
  ``errors``: served one per request before the turn succeeds. ``status``, ``message``,
  ``retry_after`` (seconds; sent as ``retry-after-ms`` and ``retry-after``), ``code``, and
  ``in_stream: true`` for a failure inside a 200 stream (``response.failed`` / an error chunk).
  ``cut_after_events``: after the errors, the next request's stream is dropped after that many
  events (once); with ``cut_cleanly`` the body ends properly instead, so the stream simply stops
  short of its completion event. ``stall_after_events``: the request after that goes silent after that many
  events for ``stall_ms``, then the connection is dropped (once).
  ``reasoning_field``: Chat only, ``reasoning_content`` (default) or ``reasoning``.
  ``web_searches``: ``[{"query", "sources": [url], "status": completed|failed}]``, served as
  ``web_search_call`` output items (before the text) when a Responses request offers the hosted
  ``{"type": "web_search"}`` tool (sources only when it includes ``web_search_call.action.sources``).
  ``usage``: overrides the estimated token counts.
  ``finish_reason``: how the answer ends (Chat's ``finish_reason``, default ``tool_calls`` or
  ``stop``); on Responses ``length`` / ``content_filter`` end it with ``response.incomplete``.
  ``json``: the answer as data (an object, instead of ``text``): the text is that object
  serialised as JSON, streamed like any text. It is served as written even when it does not
  follow the request's schema (real models slip too; the client validates).
  ``requires_schema``: when the request carried no output schema, the answer is plain prose
  instead: ``text_without_schema``, or a fixed sentence that is not JSON.

Structured output: a Responses ``text.format`` (``{"type": "json_schema", "name", "schema",
"strict"}``) or a Chat ``response_format`` (``{"type": "json_schema", "json_schema": {"name",
"schema", "strict"}}``) is checked like the real API does (see ``scripted_format.py``): a
malformed field, a json_schema without ``name`` or ``schema``, or a strict schema the API would
refuse (root not an object; an object without ``additionalProperties: false`` or not requiring
all its properties) is answered with HTTP 400 and an OpenAI-style error whose ``param`` names the
field. ``text`` and ``json_object`` formats are accepted and count as no schema.

Stateless turn choice: the turn index is the number of model responses already in the request's
history (a maximal run of assistant messages, reasoning and tool calls is one response), so
concurrent conversations never interfere. A compaction summary carries a ``[scripted: N
responses]`` marker so the count survives compaction. Scenario choice: model ``scripted:<name>``
picks by name (unknown name: 404); otherwise the first user message matching a scenario's
``match``; otherwise the scenario named ``default`` or the first without ``match``. Past the last
turn the answer is "(scripted scenario finished)". A request that offers no tools is a
compaction request: it is answered with a deterministic summary and consumes no turn. Retries are
told apart by a fingerprint (hash of the first user message + turn index), so the errors, cut
and stall of a turn are served once per conversation.

Every request is recorded in ``srv.requests`` (path, parsed body, headers without
``authorization``, whether that header was present, and the ``OutputSchema`` a well-formed model
request asked for; ``srv.output_schemas()`` lists those per model request); the key itself is
never kept or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tui.models.base import OutputSchema
from codex_tui.scripted.http_io import (
    HttpError,
    HttpRequest,
    SseWriter,
    read_request,
    write_json,
)
from codex_tui.scripted.request_format import FormatError, requested_schema
from codex_tui.scripted.scenario import (
    Conversation,
    Scenario,
    ScenarioError,
    ScriptedError,
    Turn,
    load_scenarios,
    pick_scenario,
    read_conversation,
    summary_text,
)
from codex_tui.scripted.wire import (
    Answer,
    chat_body,
    chat_chunks,
    chat_error_chunk,
    error_body,
    responses_error_events,
    responses_events,
    responses_object,
)

__all__ = ["RecordedRequest", "Scenario", "ScenarioError", "ScriptedServer", "load_scenarios"]

log = logging.getLogger(__name__)
FINISHED_TEXT = "(scripted scenario finished)"


@dataclass(slots=True)
class RecordedRequest:
    """One request as the server received it (never the API key)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    """All headers except `authorization`."""
    authorized: bool
    """True when an `authorization` header was present."""
    output_schema: OutputSchema | None = None
    """The structured-output schema a well-formed model request asked for (None: plain text)."""


@dataclass(slots=True)
class _Plan:
    """How the server answers one model request."""

    status: int = 200
    answer: Answer | None = None
    turn: Turn = field(default_factory=Turn)
    error: ScriptedError | None = None
    cut_after: int | None = None
    stall_after: int | None = None


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that answers model calls from scenarios."""

    def __init__(
        self,
        scenarios: Iterable[Scenario | dict[str, Any]] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        self.scenarios = [s if isinstance(s, Scenario) else Scenario.from_dict(s) for s in scenarios]
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.active_streams = 0
        """Streamed answers being sent right now (drops to 0 when clients hang up)."""
        self._api_key = api_key
        self._attempts: dict[tuple[str, str], int] = {}
        self._last_input: dict[str, tuple[str, list[str]]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ScriptedServer({self.base_url!r}, scenarios={[s.name for s in self.scenarios]})"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends with /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    def model_requests(self) -> list[RecordedRequest]:
        """Recorded requests to the two model endpoints, in arrival order."""
        return [r for r in self.requests if r.path.endswith(("/responses", "/chat/completions"))]

    def output_schemas(self) -> list[OutputSchema | None]:
        """The output schema each model request carried, in arrival order (None: none asked for)."""
        return [r.output_schema for r in self.model_requests()]

    # --- lifecycle --------------------------------------------------------------------------

    async def astart(self) -> None:
        """Start listening on the running loop."""
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.debug("scripted model server listening on %s", self.base_url)

    async def aclose(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> ScriptedServer:
        await self.astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start_in_thread(self) -> ScriptedServer:
        """Serve from a background thread (for sync callers); returns self once listening."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.astart())
            except OSError as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="scripted-model-server", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start_in_thread`; safe to call twice."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None
        self._thread = None

    # --- connections ------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve_connection(reader, writer)
        except HttpError as exc:
            with contextlib.suppress(ConnectionError):
                await write_json(writer, exc.status, error_body(exc.status, str(exc)), keep_alive=False)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is shutting down
        except Exception as exc:  # a request the script cannot handle: answer like a real server would
            log.exception("scripted server failed on a request")
            with contextlib.suppress(ConnectionError):
                message = f"scripted server error: {type(exc).__name__}: {exc}"
                await write_json(writer, 500, error_body(500, message), keep_alive=False)
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if request is None:
                return
            keep = await self._dispatch(request, writer)
            if not keep or not request.keep_alive:
                return

    async def _dispatch(self, request: HttpRequest, writer: asyncio.StreamWriter) -> bool:
        path = request.path.split("?", 1)[0].rstrip("/")
        route = path.removeprefix("/v1")
        body: Any = None
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            body = request.body.decode("utf-8", "replace")
        record = self._record(request, path, body)
        if self._api_key is not None and request.headers.get("authorization") != f"Bearer {self._api_key}":
            message = "Incorrect API key provided. Check the key the client sends."
            await write_json(writer, 401, error_body(401, message, "invalid_api_key"))
            return True
        if request.method == "GET" and route == "/models":
            await write_json(writer, 200, self._models())
            return True
        if request.method == "POST" and route in ("/responses", "/chat/completions"):
            if not isinstance(body, dict):
                msg = "We could not parse the JSON body of your request: expected a JSON object."
                await write_json(writer, 400, error_body(400, msg))
                return True
            api = "responses" if route == "/responses" else "chat"
            return await self._model_call(api, body, record, writer)
        await write_json(writer, 404, error_body(404, f"Unknown endpoint: {request.method} {path}"))
        return True

    def _record(self, request: HttpRequest, path: str, body: Any) -> RecordedRequest:
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        record = RecordedRequest(request.method, path, body, headers, "authorization" in request.headers)
        self.requests.append(record)
        log.debug("scripted server: %s %s", request.method, path)
        return record

    def _models(self) -> dict[str, Any]:
        names = ["scripted", *(f"scripted:{s.name}" for s in self.scenarios)]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "codex-tui"} for n in names]
        return {"object": "list", "data": data}

    # --- model calls ------------------------------------------------------------------------

    async def _model_call(
        self, api: str, body: dict[str, Any], record: RecordedRequest, writer: asyncio.StreamWriter
    ) -> bool:
        items = _request_items(api, body)
        if items is None:
            field_name = "input" if api == "responses" else "messages"
            await write_json(writer, 400, error_body(400, f"Missing required parameter: '{field_name}'."))
            return True
        try:
            record.output_schema = requested_schema(api, body)
        except FormatError as exc:
            await write_json(writer, 400, error_body(400, str(exc), exc.code, exc.param))
            return True
        conversation = read_conversation(items)
        plan = self._plan(api, body, conversation, items, record.output_schema is not None)
        if plan.status == 404:
            model = body.get("model")
            message = f"The model `{model}` does not exist or you do not have access to it."
            await write_json(writer, 404, error_body(404, message, "model_not_found"))
            return True
        if plan.turn.delay_ms:
            await asyncio.sleep(plan.turn.delay_ms / 1000)
        stream = bool(body.get("stream"))
        if plan.error is not None and not (plan.error.in_stream and stream):
            await write_json(
                writer,
                plan.error.status,
                error_body(plan.error.status, plan.error.message, plan.error.code),
                extra_headers=_retry_headers(plan.error),
            )
            return True
        if not stream:
            assert plan.answer is not None
            await write_json(writer, 200, _full_body(api, plan.answer, body, plan.turn))
            return True
        return await self._stream(api, body, plan, writer)

    def _plan(
        self, api: str, body: dict[str, Any], conv: Conversation, items: list[Any], schema_sent: bool
    ) -> _Plan:
        model = str(body.get("model", ""))
        if not body.get("tools"):
            summary = Turn(text=summary_text(conv))
            return _Plan(answer=self._answer(api, body, conv, items, summary, "summary", schema_sent))
        scenario = pick_scenario(self.scenarios, model, conv)
        if scenario is None:
            return _Plan(status=404)
        index = conv.turn_index
        turn = scenario.turns[index] if index < len(scenario.turns) else Turn(text=FINISHED_TEXT)
        key = (scenario.name, conv.fingerprint())
        seen = self._attempts.get(key, 0)
        self._attempts[key] = seen + 1
        answer = self._answer(api, body, conv, items, turn, scenario.name, schema_sent)
        plan = _Plan(answer=answer, turn=turn)
        if seen < len(turn.errors):
            plan.error = turn.errors[seen]
            return plan
        step = seen - len(turn.errors)
        if turn.cut_after_events is not None:
            if step == 0:
                plan.cut_after = turn.cut_after_events
            step -= 1
        if turn.stall_after_events is not None and step == 0:
            plan.stall_after = turn.stall_after_events
        return plan

    def _answer(
        self,
        api: str,
        body: dict[str, Any],
        conv: Conversation,
        items: list[Any],
        turn: Turn,
        scenario: str,
        schema_sent: bool,
    ) -> Answer:
        ident = hashlib.sha256(f"{scenario}\x00{conv.fingerprint()}".encode()).hexdigest()[:12]
        text = turn.answer_text(schema_sent)
        answer = Answer(
            ident, str(body.get("model", "scripted")), text, turn.reasoning, list(turn.tool_calls)
        )
        answer.web_searches = list(turn.web_searches)
        produced = len(text) + len(turn.reasoning) + sum(len(c.argument_text()) for c in turn.tool_calls)
        answer.input_tokens = turn.usage.get("input_tokens", len(json.dumps(body)) // 4)
        answer.cached_tokens = turn.usage.get(
            "cached_input_tokens", self._cached_tokens(f"{api}\x00{conv.first_user_text}", body, items)
        )
        answer.output_tokens = turn.usage.get("output_tokens", produced // 4 + 1)
        answer.finish_reason = turn.finish_reason
        return answer

    def _cached_tokens(self, key: str, body: dict[str, Any], items: list[Any]) -> int:
        """Estimate cache hits: the leading items shared with this conversation's previous request."""
        head = json.dumps([body.get("instructions"), body.get("tools")], sort_keys=True)
        encoded = [json.dumps(item, sort_keys=True) for item in items]
        previous = self._last_input.get(key)
        self._last_input[key] = (head, encoded)
        if previous is None or previous[0] != head:
            return 0
        shared = 0
        for old, new in zip(previous[1], encoded, strict=False):
            if old != new:
                break
            shared += len(new)
        return (len(head) + shared) // 4 if shared else 0

    async def _stream(
        self, api: str, body: dict[str, Any], plan: _Plan, writer: asyncio.StreamWriter
    ) -> bool:
        self.active_streams += 1
        try:
            return await self._send_stream(_stream_events(api, plan, body), plan, SseWriter(writer))
        finally:
            self.active_streams -= 1

    async def _send_stream(self, events: list[tuple[str | None, Any]], plan: _Plan, sse: SseWriter) -> bool:
        await sse.start()
        delay = plan.turn.chunk_delay_ms / 1000
        for name, data in events:
            if plan.cut_after is not None and sse.sent >= plan.cut_after:
                if plan.turn.cut_cleanly:
                    await sse.finish()
                    return True
                sse.abort()
                return False
            if plan.stall_after is not None and sse.sent >= plan.stall_after:
                await asyncio.sleep(plan.turn.stall_ms / 1000)
                sse.abort()
                return False
            await sse.send(data, name)
            if delay:
                await asyncio.sleep(delay)
        await sse.finish()
        return True


def _request_items(api: str, body: dict[str, Any]) -> list[Any] | None:
    raw = body.get("input") if api == "responses" else body.get("messages")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return raw if isinstance(raw, list) else None


def _stream_events(api: str, plan: _Plan, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    assert plan.answer is not None
    answer, turn, error = plan.answer, plan.turn, plan.error
    if api == "responses":
        if error is not None:
            raw = responses_error_events(answer, body, error.code or "server_error", error.message)
        else:
            raw = responses_events(answer, body, turn.chunk_chars)
        return [(event["type"], event) for event in raw]
    if error is not None:
        return [(None, chat_error_chunk(error.message, error.code or "server_error"))]
    return [(None, chunk) for chunk in chat_chunks(answer, body, turn.chunk_chars, turn.reasoning_field)]


def _full_body(api: str, answer: Answer, body: dict[str, Any], turn: Turn) -> dict[str, Any]:
    if api == "responses":
        return responses_object(
            answer, body, status="incomplete" if answer.incomplete_reason() else "completed"
        )
    return chat_body(answer, body, turn.reasoning_field)


def _retry_headers(error: ScriptedError) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"retry-after-ms": str(round(error.retry_after * 1000)), "retry-after": f"{error.retry_after:g}"}


def main(argv: list[str] | None = None) -> int:
    """Run the server standalone until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m codex_tui.scripted", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="scenario JSON file or folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: accept any)")
    args = parser.parse_args(argv)
    try:
        scenarios = [s for path in args.scenario for s in load_scenarios(Path(path))]
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(
            _serve_forever(ScriptedServer(scenarios, host=args.host, port=args.port, api_key=args.api_key))
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


async def _serve_forever(server: ScriptedServer) -> None:
    async with server:
        print(f"scripted model server on {server.base_url} ({len(server.scenarios)} scenarios)", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
