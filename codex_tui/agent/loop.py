"""One task's conversation with the model and its tools: the turn loop.

A turn sends the full history (an exact prefix of the next request, never rewritten), streams the
answer into agent_message / reasoning items with batched deltas, runs the tool calls, appends their
results in call order and repeats until the model answers without tool calls. Failures of the
model, of a tool or of the user's patience (interrupt) end the turn with a consistent history.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from codex_tui.agent.answers import Answer, assistant_text, collect_answer, model_events, retry_note
from codex_tui.agent.context import (
    INTERRUPTED_OUTPUT,
    ContextTracker,
    answer_dangling_calls,
    compacted_history,
    compaction_request_history,
    estimate_tokens,
    is_real_user_message,
    recent_budget,
    text_message,
    tool_images_message,
    tool_result,
    user_message,
)
from codex_tui.agent.instructions import build_instructions, load_project_docs
from codex_tui.agent.items import CallItems, ItemStream
from codex_tui.agent.tool_calls import READ_ONLY_TOOLS, call_batches
from codex_tui.agent.user_images import check_image_paths, image_names, load_images
from codex_tui.agent.web_search import WebSearchItems
from codex_tui.models.base import (
    Completed,
    HistoryItem,
    ModelClient,
    ModelError,
    ModelRequest,
    OutputSchema,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    WebSearchCall,
)
from codex_tui.protocol import (
    COMPACTED,
    CONTEXT_UPDATED,
    ITEM_AGENT_MESSAGE,
    ITEM_REASONING,
    NOTE,
    TURN_COMPLETED,
    TURN_FAILED,
    TURN_STARTED,
    USER_MESSAGE,
    SandboxMode,
    usage_dict,
)
from codex_tui.sandbox.base import Sandbox
from codex_tui.tools import default_tools
from codex_tui.tools.base import ApprovalFn, EmitFn, Tool, ToolContext, ToolResult
from codex_tui.tools.plan import finish_plan

INTERRUPTED: Final = "interrupted"

T = TypeVar("T")
TurnStatus = Literal["completed", "interrupted", "failed"]


@dataclass(slots=True)
class AgentSettings:
    """Per-task knobs of the agent loop."""

    model: str
    reasoning_effort: str | None = None
    context_window: int = 272_000
    mode: SandboxMode = "auto"
    shell_timeout_ms: int = 10_000
    max_model_calls_per_turn: int = 100
    home: Path | None = None
    """Config home, where the global AGENTS.md lives."""
    kind: str = "code"
    """code | ask | review: picks the system prompt (see agent/instructions.py)."""
    output_schema: OutputSchema | None = None
    """The final answer's JSON schema (a review's), sent as structured output on every request."""
    web_search: bool = False
    """Offer the hosted web search (Responses API; the task leaves it off on the Chat API)."""


@dataclass(slots=True)
class TurnResult:
    """How a turn ended, its final message and the tokens it used."""

    status: TurnStatus
    final_message: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class _TurnState:
    """What an interrupt needs to know to leave the history consistent."""

    turn: int
    instructions: str
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    stream: ItemStream | None = None
    calls: list[HistoryItem] = field(default_factory=list)
    results: list[ToolResult | None] = field(default_factory=list)


class Agent:
    """One task's agent: runs turns against a model client, a sandbox and a set of tools."""

    def __init__(
        self,
        *,
        task_id: str,
        client: ModelClient,
        sandbox: Sandbox,
        workspace: Path,
        settings: AgentSettings,
        emit: EmitFn,
        request_approval: ApprovalFn,
        cwd: Path | None = None,
        tools: list[Tool] | None = None,
        history: list[HistoryItem] | None = None,
        on_files_changed: Callable[[], Awaitable[None]] | None = None,
        extra_tools: Callable[[], Awaitable[list[Tool]]] | None = None,
    ) -> None:
        self.task_id = task_id
        self.settings = settings
        self.total_usage = Usage()
        """Tokens used by every model call of this agent (turns and compactions)."""
        self._client = client
        self._sandbox = sandbox
        self._workspace = workspace
        self._cwd = cwd or workspace
        self._emit = emit
        self._request_approval = request_approval
        self._on_files_changed = on_files_changed
        self._tools = {
            tool.spec.name: tool
            for tool in (
                tools if tools is not None else default_tools(settings.mode, settings.shell_timeout_ms)
            )
        }
        self._specs: list[ToolSpec] = [tool.spec for tool in self._tools.values()]
        self._extra_tools = extra_tools
        """Tools asked for before each model request (MCP servers' tools; they may come and go)."""
        self._extra: dict[str, Tool] = {}
        self._tracker = ContextTracker(settings.context_window)
        self._history: list[HistoryItem] = list(history or [])
        self.turns = sum(1 for item in self._history if is_real_user_message(item))
        """Turns started so far (turn.started numbers them from 1); restored from the history."""
        self._id_prefix = secrets.token_hex(3)
        self._next_id = 0
        self._steers: list[tuple[str, list[Path]]] = []
        self._tool_state: dict[str, Any] = {}
        self._inner: asyncio.Task[Any] | None = None
        self._running = False
        self._compact_requested = False
        self._instructions = ""
        self._warned: set[str] = set()

    # --- public API ------------------------------------------------------------------------------

    @property
    def history(self) -> list[HistoryItem]:
        """The conversation as plain JSON items; the manager persists it for undo and resume."""
        return self._history

    @history.setter
    def history(self, items: list[HistoryItem]) -> None:
        self._history = items
        self._tracker.reset()

    @property
    def running(self) -> bool:
        """True while a turn (or a manual compaction) is in progress."""
        return self._running

    async def run_turn(self, text: str, images: list[Path] | None = None) -> TurnResult:
        """Run one turn for a prompt or follow-up; never raises for model, tool or input failures."""
        if self._running:
            return TurnResult("failed", error="a turn is already running: steer it or wait for it to end")
        self._running = True
        try:
            try:
                parts = await load_images(list(images or []))
            except ValueError as exc:
                return TurnResult("failed", error=str(exc))
            return await self._run_turn(text, parts)
        finally:
            self._running = False

    def steer(self, text: str, images: list[Path] | None = None) -> None:
        """Queue a message that joins the next model request of the running turn.

        Raises ValueError with a clear message when an image path is missing or not an image.
        """
        paths = list(images or [])
        check_image_paths(paths)
        self._steers.append((text, paths))

    def interrupt(self) -> None:
        """Cancel the model stream or the running tool call; run_turn then returns "interrupted"."""
        if self._inner is not None and not self._inner.done():
            self._inner.cancel()

    async def compact(self) -> tuple[bool, str]:
        """Summarise the conversation now (or before the next model request when a turn is running).

        Returns (done or scheduled, what happened) — the same words the user sees as a note.
        """
        if self._running:
            self._compact_requested = True
            message = "the conversation will be compacted before the next model request"
            self._note("info", message)
            return True, message
        if not self._history:
            message = "nothing to compact: the conversation is empty"
            self._note("info", message)
            return False, message
        self._running = True
        try:
            if not self._instructions:
                self._instructions = await self._build_instructions()
            state = _TurnState(turn=self.turns, instructions=self._instructions)
            problem = await self._run_inner(self._compact(state, automatic=False))
        except asyncio.CancelledError:
            if _cancelling():
                raise
            problem = "compaction interrupted; the conversation is unchanged"
            self._note("warning", problem)
        finally:
            self._running = False
        return (False, problem) if problem else (True, "compacted")

    # --- the turn --------------------------------------------------------------------------------

    async def _run_turn(self, text: str, parts: list[dict[str, Any]]) -> TurnResult:
        kind = "follow_up" if self._history else "prompt"
        self.turns += 1
        state = _TurnState(turn=self.turns, instructions="")
        answer_dangling_calls(self._history)
        self._history.append(user_message(text, parts))
        self._emit(USER_MESSAGE, {"text": text, "images": image_names(parts), "kind": kind})
        self._emit(TURN_STARTED, {"turn": state.turn})
        try:
            return await self._run_inner(self._turn_loop(state))
        except asyncio.CancelledError:
            result = await self._finish_interrupted(state, notify_files=not _cancelling())
            if _cancelling():
                raise
            return result
        except ModelError as exc:
            return self._finish_failed(state, str(exc))
        except Exception as exc:  # a bug of ours must still end the turn cleanly
            self._note("error", f"the agent loop failed: {type(exc).__name__}: {exc}")
            return self._finish_failed(state, f"internal error: {type(exc).__name__}: {exc}")

    async def _run_inner(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` as a task that interrupt() can cancel without cancelling our caller."""
        task = asyncio.create_task(work)
        self._inner = task
        try:
            return await task
        finally:
            self._inner = None

    async def _turn_loop(self, state: _TurnState) -> TurnResult:
        state.instructions = self._instructions = await self._build_instructions()
        limit = self.settings.max_model_calls_per_turn
        while True:
            await self._drain_steers()
            if self._compact_requested or self._should_auto_compact():
                self._compact_requested = False
                await self._compact(state, automatic=True)
            answer = await self._sample(state)
            if not answer.calls:
                if self._steers and state.model_calls < limit:
                    continue
                finish_plan(self._tool_context(self._emit))
                self._emit(TURN_COMPLETED, {"turn": state.turn, "usage": _usage_data(state.usage)})
                return TurnResult("completed", answer.text, None, state.usage)
            if state.model_calls >= limit:
                message = f"stopped after {limit} model calls in one turn without a final answer"
                self._history.extend(tool_result(call, f"not run: {message}") for call in answer.calls)
                return self._finish_failed(state, message)
            await self._run_calls(state, answer.calls)

    async def _sample(self, state: _TurnState) -> Answer:
        await self._refresh_extra_tools()
        request = ModelRequest(
            model=self.settings.model,
            instructions=state.instructions,
            history=list(self._history),
            tools=self._specs + [tool.spec for tool in self._extra.values()],
            reasoning_effort=self.settings.reasoning_effort,
            conversation_id=self.task_id,
            output_schema=self.settings.output_schema,
            web_search=self.settings.web_search,
        )
        answer = await self._stream(request, state)
        state.model_calls += 1
        self._history.extend(answer.items)
        self._record_usage(state, answer.usage)
        return answer

    async def _refresh_extra_tools(self) -> None:
        """Ask for the extra tools now; a failure leaves them out of this request (with a note)."""
        if self._extra_tools is None:
            return
        try:
            extra = await self._extra_tools()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._note("warning", f"extra tools unavailable: {type(exc).__name__}: {exc}")
            extra = []
        self._extra = {tool.spec.name: tool for tool in extra if tool.spec.name not in self._tools}

    async def _stream(self, request: ModelRequest, state: _TurnState) -> Answer:
        stream = state.stream = ItemStream(self._emit, self._new_id)
        searches = WebSearchItems(self._emit, self._new_id)
        completed: Completed | None = None
        loose_calls: list[ToolCall] = []
        try:
            async with aclosing(model_events(self._client, request)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        stream.delta(ITEM_AGENT_MESSAGE, event.text)
                    elif isinstance(event, ReasoningDelta):
                        stream.delta(ITEM_REASONING, event.text)
                    elif isinstance(event, ToolCall):
                        loose_calls.append(event)
                    elif isinstance(event, WebSearchCall):
                        searches.update(event)
                    elif isinstance(event, Retrying):
                        self._note("warning", retry_note(event))
                        if event.discard_partial:
                            searches.close("the model call was retried")
                            stream.close(discarded=True)
                            loose_calls.clear()
                            stream = state.stream = ItemStream(self._emit, self._new_id)
                    elif isinstance(event, Completed):
                        completed = event
        except asyncio.CancelledError:
            searches.close(INTERRUPTED)
            raise
        except Exception:
            searches.close("the model call did not complete")
            stream.close(discarded=True)
            state.stream = None
            raise
        searches.close("the model call ended before the search finished")
        if completed is None:
            stream.close(discarded=True)
            state.stream = None
            raise ModelError("the model stream ended without a complete response")
        answer = collect_answer(completed, loose_calls)
        reasoning = "\n\n".join(
            str(i.get("text") or "") for i in answer.items if i.get("type") == "reasoning" and i.get("text")
        )
        stream.close({ITEM_REASONING: reasoning, ITEM_AGENT_MESSAGE: answer.text})
        state.stream = None
        return answer

    def _add_usage(self, state: _TurnState, usage: Usage) -> None:
        state.usage = state.usage + usage
        self.total_usage = self.total_usage + usage

    def _record_usage(self, state: _TurnState, usage: Usage) -> None:
        self._add_usage(state, usage)
        self._tracker.record(usage, self._history)
        used = usage.input_tokens + usage.output_tokens or self._tracker.used_tokens(self._history)
        self._emit_context(used)

    def _emit_context(self, used: int) -> None:
        self._emit(
            CONTEXT_UPDATED,
            {
                "used_tokens": used,
                "window_tokens": self.settings.context_window,
                "total": _usage_data(self.total_usage),
            },
        )

    # --- tools -----------------------------------------------------------------------------------

    async def _run_calls(self, state: _TurnState, calls: list[HistoryItem]) -> None:
        state.calls = calls
        state.results = [None] * len(calls)
        for batch in call_batches(calls):
            if len(batch) == 1:
                results = [await self._run_call(calls[batch[0]])]
            else:
                results = list(await asyncio.gather(*(self._run_call(calls[i]) for i in batch)))
            for index, result in zip(batch, results, strict=True):
                state.results[index] = result
                if result.may_change_files:
                    await self._files_changed()
        outputs = [r.output if r is not None else "" for r in state.results]
        self._history.extend(tool_result(call, out) for call, out in zip(calls, outputs, strict=True))
        images = [part for r in state.results if r is not None for part in r.images]
        if images:
            self._history.append(tool_images_message(images))
        state.calls, state.results = [], []

    async def _run_call(self, call: HistoryItem) -> ToolResult:
        name = str(call.get("name", ""))
        tool = self._tools.get(name) or self._extra.get(name)
        if tool is None:
            known = ", ".join([*self._tools, *self._extra]) or "none"
            return ToolResult(f"unsupported call: {name} (available tools: {known})", success=False)
        items = CallItems(self._emit)
        try:
            return await tool.run(str(call.get("arguments", "")), self._tool_context(items.emit))
        except asyncio.CancelledError:
            items.fail_open_items(INTERRUPTED)
            raise
        except Exception as exc:  # handlers should not raise; if one does, the model and user hear of it
            items.fail_open_items(f"the {name} tool failed")
            self._note("error", f"tool {name} failed unexpectedly: {type(exc).__name__}: {exc}")
            return ToolResult(
                f"error: the {name} tool failed unexpectedly ({type(exc).__name__}: {exc})", success=False
            )

    def _tool_context(self, emit: EmitFn) -> ToolContext:
        """A context for one call; the tools' scratch state is shared by every call of the task."""
        return ToolContext(
            sandbox=self._sandbox,
            workspace=self._workspace,
            mode=self.settings.mode,
            emit=emit,
            new_item_id=self._new_id,
            request_approval=self._request_approval,
            default_timeout_ms=self.settings.shell_timeout_ms,
            tool_state=self._tool_state,
        )

    async def _files_changed(self) -> None:
        if self._on_files_changed is None:
            return
        try:
            await self._on_files_changed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._note("warning", f"could not refresh the diff: {type(exc).__name__}: {exc}")

    async def _drain_steers(self) -> None:
        while self._steers:
            text, paths = self._steers[0]
            try:
                parts = await load_images(paths)
            except ValueError as exc:
                self._note("warning", f"steering message sent without its images: {exc}")
                parts = []
            self._steers.pop(0)
            self._history.append(user_message(text, parts))
            self._emit(USER_MESSAGE, {"text": text, "images": image_names(parts), "kind": "steer"})

    # --- compaction ------------------------------------------------------------------------------

    async def _compact(self, state: _TurnState, *, automatic: bool) -> str | None:
        """Replace the history by a summary + recent user messages; returns why not, if it did not."""
        before = self._tracker.used_tokens(self._history)
        request = ModelRequest(
            model=self.settings.model,
            instructions=state.instructions,
            history=compaction_request_history(self._history),
            tools=[],
            reasoning_effort=self.settings.reasoning_effort,
            conversation_id=self.task_id,
        )
        try:
            summary, usage = await self._summary(request)
        except ModelError as exc:
            what = "automatic compaction" if automatic else "compaction"
            problem = f"{what} failed: {exc}"
            self._note("warning" if automatic else "error", problem)
            return problem
        self._add_usage(state, usage)
        if not summary.strip():
            problem = "compaction skipped: the model returned an empty summary"
            self._note("warning", problem)
            return problem
        budget = recent_budget(self.settings.context_window)
        self.history = compacted_history(summary, self._history, budget)
        after = estimate_tokens(self._history)
        self._emit(COMPACTED, {"before_tokens": before, "after_tokens": after, "summary": summary})
        self._emit_context(after)
        return None

    def _should_auto_compact(self) -> bool:
        """Near the window, and there is more than a summary and user messages to compact."""
        return self._tracker.needs_compaction(self._history) and not all(
            item.get("type") == "message" and item.get("role") == "user" for item in self._history
        )

    async def _summary(self, request: ModelRequest) -> tuple[str, Usage]:
        parts: list[str] = []
        async with aclosing(model_events(self._client, request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Retrying):
                    self._note("warning", retry_note(event))
                    if event.discard_partial:
                        parts.clear()
                elif isinstance(event, Completed):
                    return assistant_text(event.items) or "".join(parts), event.usage
        raise ModelError("the model stream ended without a complete response")

    # --- endings ---------------------------------------------------------------------------------

    async def _finish_interrupted(self, state: _TurnState, *, notify_files: bool) -> TurnResult:
        partial = ""
        if state.stream is not None:
            partial = state.stream.text(ITEM_AGENT_MESSAGE)
            state.stream.close()
            state.stream = None
            if partial:
                self._history.append(text_message("assistant", partial))
        touched = False
        for call, result in zip(state.calls, state.results, strict=False):
            output = result.output if result is not None else INTERRUPTED_OUTPUT
            touched = touched or (result is None and call.get("name") not in READ_ONLY_TOOLS)
            self._history.append(tool_result(call, output))
        state.calls, state.results = [], []
        answer_dangling_calls(self._history)
        finish_plan(self._tool_context(self._emit))
        self._emit(TURN_FAILED, {"turn": state.turn, "error": {"message": INTERRUPTED}})
        if touched and notify_files:
            await self._files_changed()
        return TurnResult("interrupted", partial, INTERRUPTED, state.usage)

    def _finish_failed(self, state: _TurnState, message: str) -> TurnResult:
        if state.stream is not None:
            state.stream.close(discarded=True)
            state.stream = None
        answer_dangling_calls(self._history, f"not run: {message}")
        finish_plan(self._tool_context(self._emit))
        self._emit(TURN_FAILED, {"turn": state.turn, "error": {"message": message}})
        return TurnResult("failed", "", message, state.usage)

    # --- helpers ---------------------------------------------------------------------------------

    async def _build_instructions(self) -> str:
        docs = await asyncio.to_thread(load_project_docs, self._cwd, self.settings.home, root=self._workspace)
        for warning in docs.warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                self._note("warning", warning)
        return build_instructions(
            docs=docs,
            workdir=self._sandbox.workdir,
            mode=self.settings.mode,
            sandbox_description=self._sandbox.describe(),
            kind=self.settings.kind,
        )

    def _new_id(self) -> str:
        self._next_id += 1
        return f"{self._id_prefix}_{self._next_id}"

    def _note(self, level: str, message: str) -> None:
        self._emit(NOTE, {"level": level, "message": message})


def _usage_data(usage: Usage) -> dict[str, int]:
    return usage_dict(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens)


def _cancelling() -> bool:
    """True when the current task itself is being cancelled (not just our inner task)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
