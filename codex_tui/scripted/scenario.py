"""Scenarios for the scripted model server: the data, loading from JSON, and stateless turn choice.

See the module docstring of :mod:`codex_tui.scripted` for the JSON format.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROSE_WITHOUT_SCHEMA = "This answer is plain prose, not JSON: the request asked for no output schema."
"""The answer of a `requires_schema` turn to a request that asked for no output schema."""
SUMMARY_MARKER = "[scripted: {n} responses]"
"""Written into compaction summaries so turn counting survives a compacted history."""
_MARKER_RE = re.compile(r"\[scripted: (\d+) responses\]")
_ASSISTANT_ITEM_TYPES = ("reasoning", "function_call", "custom_tool_call", "web_search_call")


class ScenarioError(ValueError):
    """A scenario file or dict is malformed; the message names the scenario and the field."""


@dataclass(slots=True)
class ScriptedError:
    """One failure served before a turn succeeds: an HTTP status, or an error inside the stream."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    retry_after: float | None = None
    code: str | None = None
    in_stream: bool = False
    """True: HTTP 200, then response.failed (Responses) or an error chunk (Chat)."""


@dataclass(slots=True)
class ScriptedToolCall:
    """A tool call the scripted model makes; `arguments` may be a raw (even malformed) string."""

    name: str
    arguments: Any = None
    input: str | None = None
    kind: str = "function"
    call_id: str | None = None

    def argument_text(self) -> str:
        """The function-call argument string as the model would send it."""
        if self.input is not None:
            return json.dumps({"input": self.input}, ensure_ascii=False)
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments if self.arguments is not None else {}, ensure_ascii=False)

    def custom_input(self) -> str:
        """The freeform input as a custom tool call carries it."""
        if self.input is not None:
            return self.input
        return self.arguments if isinstance(self.arguments, str) else self.argument_text()


@dataclass(slots=True)
class ScriptedSearch:
    """A hosted web search the scripted model runs (Responses requests offering `web_search`)."""

    query: str
    sources: list[str] = field(default_factory=list)
    status: str = "completed"


@dataclass(slots=True)
class Turn:
    """One scripted model response."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    web_searches: list[ScriptedSearch] = field(default_factory=list)
    chunk_chars: int = 8
    chunk_delay_ms: float = 0.0
    delay_ms: float = 0.0
    errors: list[ScriptedError] = field(default_factory=list)
    cut_after_events: int | None = None
    cut_cleanly: bool = False
    """End the cut stream's HTTP body properly (the stream just stops) instead of dropping it."""
    stall_after_events: int | None = None
    stall_ms: float = 60_000.0
    reasoning_field: str = "reasoning_content"
    """Chat only: the delta field carrying reasoning (`reasoning_content` or `reasoning`)."""
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    """How the answer ends: Chat's `finish_reason`; on Responses `length` / `content_filter` end
    the stream with `response.incomplete` (reason `max_output_tokens` / `content_filter`)."""
    json: dict[str, Any] | None = None
    """The answer as data: the text is this object serialised as JSON."""
    requires_schema: bool = False
    """Without an output schema in the request, answer `text_without_schema` (prose) instead."""
    text_without_schema: str = ""

    def answer_text(self, schema_sent: bool) -> str:
        """The text this turn answers with, given whether the request carried an output schema."""
        if self.requires_schema and not schema_sent:
            return self.text_without_schema or PROSE_WITHOUT_SCHEMA
        if self.json is not None:
            return json.dumps(self.json, ensure_ascii=False)
        return self.text


@dataclass(slots=True)
class Scenario:
    """A named script of turns, picked by model name or by a regex on the user's request."""

    name: str
    turns: list[Turn] = field(default_factory=list)
    match: str | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> Scenario:
        """Build (and validate) a scenario from its JSON form."""
        if not isinstance(raw, dict):
            raise ScenarioError(f"a scenario must be an object, got {type(raw).__name__}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ScenarioError("a scenario needs a non-empty string 'name'")
        match = raw.get("match")
        if match is not None:
            if not isinstance(match, str):
                raise ScenarioError(f"scenario '{name}': 'match' must be a string")
            try:
                re.compile(match)
            except re.error as exc:
                raise ScenarioError(f"scenario '{name}': 'match' is not a valid regex: {exc}") from None
        turns = raw.get("turns", [])
        if not isinstance(turns, list):
            raise ScenarioError(f"scenario '{name}': 'turns' must be a list")
        return cls(name, [_turn(t, f"scenario '{name}' turn {i + 1}") for i, t in enumerate(turns)], match)


def _turn(raw: Any, where: str) -> Turn:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    known = set(Turn.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    turn = Turn()
    for key in ("text", "reasoning", "reasoning_field", "finish_reason", "text_without_schema"):
        if key in raw:
            setattr(turn, key, _typed(raw[key], str, f"{where}: '{key}'"))
    for key in ("chunk_delay_ms", "delay_ms", "stall_ms"):
        if key in raw:
            setattr(turn, key, float(_typed(raw[key], (int, float), f"{where}: '{key}'")))
    for key in ("chunk_chars", "cut_after_events", "stall_after_events"):
        if raw.get(key) is not None:
            value = _typed(raw[key], int, f"{where}: '{key}'")
            if value < (1 if key == "chunk_chars" else 0):
                raise ScenarioError(f"{where}: '{key}' is too small")
            setattr(turn, key, value)
    turn.cut_cleanly = bool(raw.get("cut_cleanly", False))
    if "json" in raw:
        if "text" in raw:
            raise ScenarioError(f"{where}: give either 'text' or 'json', not both")
        turn.json = _typed(raw["json"], dict, f"{where}: 'json'")
    if "requires_schema" in raw:
        if not isinstance(raw["requires_schema"], bool):
            raise ScenarioError(f"{where}: 'requires_schema' must be true or false")
        turn.requires_schema = raw["requires_schema"]
    calls = _typed(raw.get("tool_calls", []), list, f"{where}: 'tool_calls'")
    turn.tool_calls = [_tool_call(c, f"{where} tool call {i + 1}") for i, c in enumerate(calls)]
    searches = _typed(raw.get("web_searches", []), list, f"{where}: 'web_searches'")
    turn.web_searches = [_search(s, f"{where} web search {i + 1}") for i, s in enumerate(searches)]
    errors = _typed(raw.get("errors", []), list, f"{where}: 'errors'")
    turn.errors = [_error(e, f"{where} error {i + 1}") for i, e in enumerate(errors)]
    usage = raw.get("usage", {})
    if not isinstance(usage, dict) or not all(isinstance(v, int) for v in usage.values()):
        raise ScenarioError(f"{where}: 'usage' must map names to integers")
    turn.usage = dict(usage)
    return turn


def _tool_call(raw: Any, where: str) -> ScriptedToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ScenarioError(f"{where}: needs a string 'name'")
    text_input = raw.get("input")
    if text_input is not None and not isinstance(text_input, str):
        raise ScenarioError(f"{where}: 'input' must be a string")
    kind = raw.get("kind", "custom" if text_input is not None else "function")
    if kind not in ("function", "custom"):
        raise ScenarioError(f"{where}: 'kind' must be function or custom")
    call_id = raw.get("call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise ScenarioError(f"{where}: 'call_id' must be a string")
    return ScriptedToolCall(raw["name"], raw.get("arguments"), text_input, kind, call_id)


def _search(raw: Any, where: str) -> ScriptedSearch:
    if not isinstance(raw, dict) or not isinstance(raw.get("query"), str):
        raise ScenarioError(f"{where}: needs a string 'query'")
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ScenarioError(f"{where}: 'sources' must be a list of URLs")
    status = raw.get("status", "completed")
    if status not in ("completed", "failed"):
        raise ScenarioError(f"{where}: 'status' must be completed or failed")
    return ScriptedSearch(raw["query"], list(sources), status)


def _error(raw: Any, where: str) -> ScriptedError:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    err = ScriptedError()
    if "status" in raw:
        err.status = _typed(raw["status"], int, f"{where}: 'status'")
    if "message" in raw:
        err.message = _typed(raw["message"], str, f"{where}: 'message'")
    if raw.get("retry_after") is not None:
        err.retry_after = float(_typed(raw["retry_after"], (int, float), f"{where}: 'retry_after'"))
    if raw.get("code") is not None:
        err.code = _typed(raw["code"], str, f"{where}: 'code'")
    err.in_stream = bool(raw.get("in_stream", False))
    return err


def _typed(value: Any, expected: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ScenarioError(f"{where} has the wrong type ({value!r})")
    return value


def load_scenarios(path_or_dir: str | Path) -> list[Scenario]:
    """Load scenarios from a JSON file (one object, a list, or {"scenarios": [...]}) or a folder."""
    path = Path(path_or_dir)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ScenarioError(f"{path}: no *.json scenario files")
        return [s for f in files for s in load_scenarios(f)]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(raw, dict) and "scenarios" in raw:
        raw = raw["scenarios"]
    items = raw if isinstance(raw, list) else [raw]
    try:
        return [Scenario.from_dict(item) for item in items]
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


# --- reading a request's conversation (both wire shapes) ---------------------------------------


@dataclass(slots=True)
class Conversation:
    """What the server needs from one request: user texts, turn index, last answer, tools."""

    user_texts: list[str]
    turn_index: int
    last_assistant_text: str
    has_images: bool

    @property
    def first_user_text(self) -> str:
        """The first user message (the prompt, unless context was prepended)."""
        return self.user_texts[0] if self.user_texts else ""

    def fingerprint(self) -> str:
        """Identifies (conversation, turn) across retries of the same request."""
        digest = hashlib.sha256(f"{self.first_user_text}\x00{self.turn_index}".encode())
        return digest.hexdigest()[:16]


def read_conversation(items: list[Any]) -> Conversation:
    """Parse Responses `input` items or Chat `messages` into a :class:`Conversation`."""
    user_texts: list[str] = []
    runs = 0
    in_run = False
    last_text = ""
    has_images = False
    for item in items:
        if not isinstance(item, dict):
            continue
        text, images = _content_text(item.get("content"))
        has_images = has_images or images
        if marker := _MARKER_RE.search(text):
            runs, in_run = int(marker.group(1)), False
        elif _is_assistant_side(item):
            runs += 0 if in_run else 1
            in_run = True
            last_text = text or last_text
            continue
        in_run = False
        if item.get("role") == "user" and item.get("type", "message") == "message":
            user_texts.append(text)
    return Conversation(user_texts, runs, last_text, has_images)


def _is_assistant_side(item: dict[str, Any]) -> bool:
    kind = item.get("type", "message")
    if kind in _ASSISTANT_ITEM_TYPES:
        return True
    return kind == "message" and item.get("role") == "assistant"


def _content_text(content: Any) -> tuple[str, bool]:
    if isinstance(content, str):
        return content, False
    if not isinstance(content, list):
        return "", False
    texts: list[str] = []
    images = False
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("input_image", "image_url"):
            images = True
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts), images


def pick_scenario(scenarios: list[Scenario], model: str, conversation: Conversation) -> Scenario | None:
    """By `scripted:<name>` model name; else the first user message matching a scenario's regex.

    User messages are tried in order, so context prepended before the prompt (environment notes,
    AGENTS.md) does not hide it. None only when a `scripted:<name>` names no scenario.
    """
    if model.startswith("scripted:"):
        wanted = model.partition(":")[2]
        return next((s for s in scenarios if s.name == wanted), None)
    for text in conversation.user_texts:
        for scenario in scenarios:
            if scenario.match and re.search(scenario.match, text):
                return scenario
    return default_scenario(scenarios)


def default_scenario(scenarios: list[Scenario]) -> Scenario:
    """The scenario named "default", else the first without `match`, else an empty one."""
    named = next((s for s in scenarios if s.name == "default"), None)
    unmatched = next((s for s in scenarios if not s.match), None)
    return named or unmatched or Scenario("default")


def summary_text(conversation: Conversation, limit: int = 2000) -> str:
    """The deterministic answer to a tool-less (compaction) request."""
    lines = ["Summary of the work so far:", "User requests:"]
    lines += [f"- {_clip(text, 300)}" for text in conversation.user_texts if not _MARKER_RE.search(text)]
    if conversation.last_assistant_text:
        lines.append(f"Last assistant message: {_clip(conversation.last_assistant_text, 600)}")
    body = _clip("\n".join(lines), limit)
    return f"{body}\n{SUMMARY_MARKER.format(n=conversation.turn_index)}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
