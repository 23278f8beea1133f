"""History bookkeeping: building items, estimating tokens, keeping calls answered, compaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from codex_tui.models.base import HistoryItem, Usage

CHARS_PER_TOKEN: Final = 4
IMAGE_TOKENS: Final = 800
"""A rough cost of one attached image; data URLs are not text the model reads."""
ITEM_OVERHEAD_TOKENS: Final = 4
AUTO_COMPACT_RATIO: Final = 0.9
RECENT_USER_TOKENS: Final = 20_000
INTERRUPTED_OUTPUT: Final = "aborted: interrupted by the user"

SUMMARY_PREFIX: Final = "Summary of earlier conversation:\n"
TOOL_IMAGES_PREFIX: Final = "Images attached by view_image:"
COMPACT_REQUEST: Final = (
    "Write a handoff summary of the conversation so far for the agent that continues this task. "
    "Include: the goal and the developer's requirements; what has been done; the files created, "
    "changed or deleted; commands and tests run with their outcome; open problems and what is left "
    "to do. Be concise and concrete (paths, names, errors)."
)


def text_message(role: str, text: str) -> HistoryItem:
    """A history message with one text part."""
    return {"type": "message", "role": role, "content": [{"type": "text", "text": text}]}


def user_message(text: str, images: list[dict[str, Any]] | None = None) -> HistoryItem:
    """A user message: the text (when not empty) followed by image parts."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.extend(images or [])
    return {"type": "message", "role": "user", "content": content}


def tool_images_message(images: list[dict[str, Any]]) -> HistoryItem:
    """The user message that carries images a tool (view_image) attached."""
    names = ", ".join(str(part.get("name", "image")) for part in images)
    return user_message(f"{TOOL_IMAGES_PREFIX} {names}", images)


def tool_result(call: HistoryItem, output: str) -> HistoryItem:
    """The result item answering a tool_call item."""
    return {
        "type": "tool_result",
        "call_id": call["call_id"],
        "output": output,
        "kind": call.get("kind", "function"),
    }


def message_text(item: HistoryItem) -> str:
    """The concatenated text parts of a message item."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", "")) for part in content or () if isinstance(part, dict) and "text" in part
    )


def estimate_item_tokens(item: HistoryItem) -> int:
    """Rough token count of one history item (~4 characters a token, a fixed cost per image)."""
    kind = item.get("type")
    if kind == "message":
        content = item.get("content")
        if isinstance(content, str):
            chars, images = len(content), 0
        else:
            parts = [p for p in content or () if isinstance(p, dict)]
            chars = sum(len(str(p.get("text", ""))) for p in parts)
            images = sum(1 for p in parts if p.get("type") == "image")
        return ITEM_OVERHEAD_TOKENS + chars // CHARS_PER_TOKEN + images * IMAGE_TOKENS
    if kind == "tool_call":
        chars = len(str(item.get("name", ""))) + len(str(item.get("arguments", "")))
    elif kind == "tool_result":
        chars = len(str(item.get("output", "")))
    elif kind == "reasoning":
        chars = len(str(item.get("text") or "")) + len(str(item.get("encrypted_content") or ""))
    else:
        chars = sum(len(str(v)) for v in item.values())
    return ITEM_OVERHEAD_TOKENS + chars // CHARS_PER_TOKEN


def estimate_tokens(items: list[HistoryItem]) -> int:
    """Rough token count of a list of history items."""
    return sum(estimate_item_tokens(item) for item in items)


@dataclass(slots=True)
class ContextTracker:
    """How full the context window is: the last response's usage plus an estimate of what followed."""

    window: int
    last_usage: Usage | None = None
    history_len_at_usage: int = 0
    last_item: HistoryItem | None = None
    """The item the usage ended at: if it is no longer there, the history was rewritten."""

    def record(self, usage: Usage, history: list[HistoryItem]) -> None:
        """Remember a response's usage, measured once its items were appended to `history`."""
        if (usage.input_tokens or usage.output_tokens) and history:
            self.last_usage = usage
            self.history_len_at_usage = len(history)
            self.last_item = history[-1]
        else:
            self.reset()

    def reset(self) -> None:
        """Forget the usage (the history was replaced); estimates come from the text again."""
        self.last_usage = None
        self.history_len_at_usage = 0
        self.last_item = None

    def used_tokens(self, history: list[HistoryItem]) -> int:
        """Tokens the next request would use, as well as we know."""
        last, mark = self.last_usage, self.history_len_at_usage
        if last is None or mark > len(history) or history[mark - 1] is not self.last_item:
            return estimate_tokens(history)
        return last.input_tokens + last.output_tokens + estimate_tokens(history[mark:])

    def needs_compaction(self, history: list[HistoryItem]) -> bool:
        """True when the next request would fill more than 90 % of the window."""
        return self.used_tokens(history) > self.window * AUTO_COMPACT_RATIO


def unanswered_calls(history: list[HistoryItem]) -> list[HistoryItem]:
    """Tool calls without a result, in call order."""
    answered = {item.get("call_id") for item in history if item.get("type") == "tool_result"}
    return [
        item for item in history if item.get("type") == "tool_call" and item.get("call_id") not in answered
    ]


def answer_dangling_calls(history: list[HistoryItem], output: str = INTERRUPTED_OUTPUT) -> int:
    """Append a result for every unanswered tool call so the history is valid to resend."""
    missing = unanswered_calls(history)
    history.extend(tool_result(call, output) for call in missing)
    return len(missing)


def truncate_middle(text: str, max_tokens: int) -> str:
    """Keep the head and the tail of `text` within about `max_tokens`, with a marker in between."""
    max_chars = max(0, max_tokens) * CHARS_PER_TOKEN
    if len(text) <= max_chars:
        return text
    room = max(0, max_chars - len(f"\n…[{len(text)} characters omitted]…\n"))
    head = room // 2
    tail = room - head
    marker = f"\n…[{len(text) - head - tail} characters omitted]…\n"
    return text[:head] + marker + (text[-tail:] if tail else "")


def is_real_user_message(item: HistoryItem) -> bool:
    """A message the developer wrote (not a summary, not images a tool attached)."""
    if item.get("type") != "message" or item.get("role") != "user":
        return False
    text = message_text(item)
    return not (text.startswith(SUMMARY_PREFIX) or text.startswith(TOOL_IMAGES_PREFIX))


def recent_user_messages(history: list[HistoryItem], max_tokens: int) -> list[HistoryItem]:
    """The developer's most recent messages as text, newest kept first, within `max_tokens`."""
    kept: list[HistoryItem] = []
    budget = max_tokens
    for item in reversed(history):
        if budget <= 0:
            break
        if not is_real_user_message(item):
            continue
        text = message_text(item)
        if not text:
            continue
        cost = estimate_item_tokens(text_message("user", text))
        if cost > budget:
            text = truncate_middle(text, budget - ITEM_OVERHEAD_TOKENS)
            cost = budget
        kept.append(text_message("user", text))
        budget -= cost
    kept.reverse()
    return kept


def compaction_request_history(history: list[HistoryItem]) -> list[HistoryItem]:
    """The history sent with the summary request: everything so far plus the request itself."""
    return [*history, text_message("user", COMPACT_REQUEST)]


def compacted_history(summary: str, history: list[HistoryItem], max_recent_tokens: int) -> list[HistoryItem]:
    """The new history after compaction: the summary, then the most recent user messages."""
    summary_item = text_message("user", SUMMARY_PREFIX + summary.strip())
    return [summary_item, *recent_user_messages(history, max_recent_tokens)]


def recent_budget(window: int) -> int:
    """How many tokens of recent user messages survive a compaction for this window."""
    return min(RECENT_USER_TOKENS, window // 4)
