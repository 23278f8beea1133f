"""History bookkeeping: token estimates, the context tracker, dangling calls and compaction."""

from __future__ import annotations

from codex_tui.agent.context import (
    IMAGE_TOKENS,
    SUMMARY_PREFIX,
    ContextTracker,
    answer_dangling_calls,
    compacted_history,
    estimate_tokens,
    message_text,
    recent_user_messages,
    text_message,
    tool_images_message,
    truncate_middle,
    unanswered_calls,
    user_message,
)
from codex_tui.models.base import Usage


def _call(call_id: str) -> dict[str, str]:
    return {"type": "tool_call", "call_id": call_id, "name": "shell", "arguments": "{}", "kind": "function"}


def test_estimate_is_about_four_characters_a_token_and_images_cost_a_fixed_amount() -> None:
    text_only = estimate_tokens([text_message("user", "x" * 4000)])
    assert 1000 <= text_only <= 1010
    image = {"type": "image", "image_url": "data:image/png;base64," + "A" * 100_000, "name": "a.png"}
    with_image = estimate_tokens([user_message("x" * 4000, [image])])
    assert with_image - text_only == IMAGE_TOKENS


def test_tracker_uses_last_usage_plus_estimate_of_what_followed() -> None:
    history = [text_message("user", "hi"), text_message("assistant", "hello")]
    tracker = ContextTracker(window=10_000)
    tracker.record(Usage(input_tokens=5000, output_tokens=100), history)
    assert tracker.used_tokens(history) == 5100
    history.append(text_message("user", "y" * 400))
    assert tracker.used_tokens(history) == 5100 + estimate_tokens(history[-1:])
    assert not tracker.needs_compaction(history)
    tracker.record(Usage(input_tokens=9000, output_tokens=100), history)
    assert tracker.needs_compaction(history)


def test_tracker_falls_back_to_estimate_when_history_was_rewritten() -> None:
    history = [text_message("user", "a" * 40), text_message("assistant", "b" * 40)]
    tracker = ContextTracker(window=1000)
    tracker.record(Usage(input_tokens=900, output_tokens=50), history)
    del history[1:]
    history.append(text_message("user", "c" * 40))
    assert tracker.used_tokens(history) == estimate_tokens(history)


def test_tracker_without_usage_estimates_from_text() -> None:
    history = [text_message("user", "z" * 400)]
    tracker = ContextTracker(window=1000)
    tracker.record(Usage(), history)
    assert tracker.used_tokens(history) == estimate_tokens(history)


def test_dangling_calls_get_an_aborted_result_in_call_order() -> None:
    history = [_call("a"), _call("b"), {"type": "tool_result", "call_id": "a", "output": "ok"}]
    assert [c["call_id"] for c in unanswered_calls(history)] == ["b"]
    assert answer_dangling_calls(history) == 1
    assert history[-1]["call_id"] == "b" and "interrupted" in history[-1]["output"]
    assert unanswered_calls(history) == []


def test_truncate_middle_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    out = truncate_middle(text, 100)
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "omitted" in out and len(out) < 500
    assert truncate_middle("short", 100) == "short"


def test_compacted_history_is_summary_then_recent_user_messages_newest_kept() -> None:
    history = [
        text_message("user", "old request " + "o" * 4000),
        text_message("assistant", "done"),
        tool_images_message([{"type": "image", "image_url": "data:,", "name": "shot.png"}]),
        text_message("user", SUMMARY_PREFIX + "an older summary"),
        text_message("user", "middle request"),
        text_message("user", "newest request"),
    ]
    out = compacted_history("goal and progress", history, max_recent_tokens=200)
    texts = [message_text(item) for item in out]
    assert texts[0] == SUMMARY_PREFIX + "goal and progress"
    assert texts[-2:] == ["middle request", "newest request"]
    assert all("view_image" not in t and "older summary" not in t for t in texts)
    old = texts[1]
    assert old.startswith("old request") and "omitted" in old


def test_recent_user_messages_respect_the_budget() -> None:
    history = [text_message("user", f"message {i} " + "w" * 400) for i in range(10)]
    kept = recent_user_messages(history, max_tokens=250)
    assert message_text(kept[-1]).startswith("message 9")
    assert estimate_tokens(kept) <= 250
