"""The TUI's event-derived task model: what each pane would show after a stream of events."""

from __future__ import annotations

from typing import Any

from codex_tui import protocol as p
from codex_tui.tui.state import MAX_BLOCKS, MAX_LOG_CHARS, AppState, format_duration, format_tokens
from codex_tui.tui.task_model import MAX_MESSAGE_CHARS


class Feed:
    """Stamps seq numbers per task like the manager does."""

    def __init__(self) -> None:
        self.state = AppState()
        self.seqs: dict[str, int] = {}
        self.lines: list[str] = []
        """Every event as a rollout line, for replaying."""

    def __call__(self, type_: str, task_id: str = "t1", ts: float = 100.0, **data: Any) -> None:
        seq = self.seqs.get(task_id, 0) + 1
        self.seqs[task_id] = seq
        event = p.Event(type_, task_id, seq, data, ts)
        self.lines.append(event.to_json())
        self.state.apply(event)


def created(feed: Feed, task_id: str = "t1", **extra: Any) -> None:
    data = {"title": "Fix the median", "prompt": "Fix the median", "images": [], "attempt": 1, "attempts": 1}
    data.update(extra)
    feed(p.TASK_CREATED, task_id, **data)


def test_a_flood_of_model_text_is_cut_in_the_chat_with_a_note_and_the_same_when_completed() -> None:
    feed = Feed()
    created(feed)
    feed(p.ITEM_STARTED, item={"id": "m1", "type": "agent_message", "text": ""})
    chunk = "0123456789" * 3000
    for _ in range(5):  # 150,000 characters, 50,000 past the limit
        feed(p.MESSAGE_DELTA, item_id="m1", kind="agent_message", delta=chunk)
    [block] = [b for b in feed.state.tasks["t1"].blocks if b.id == "m1"]
    assert block.text.startswith(chunk * 3) and len(block.text) < MAX_MESSAGE_CHARS + 200
    assert block.text.endswith("(`codex-tui tasks show t1` has it all)")
    rev = block.rev
    feed(p.ITEM_COMPLETED, item={"id": "m1", "type": "agent_message", "text": chunk * 5})
    assert block.text.endswith("has it all)") and block.rev == rev, "completion shows the same cut text"


def test_streamed_message_deltas_build_one_agent_block() -> None:
    feed = Feed()
    created(feed)
    feed(p.ITEM_STARTED, item={"id": "m1", "type": "agent_message", "text": ""})
    feed(p.MESSAGE_DELTA, item_id="m1", kind="agent_message", delta="Hello ")
    feed(p.MESSAGE_DELTA, item_id="m1", kind="agent_message", delta="**world**")
    task = feed.state.tasks["t1"]
    agent = [b for b in task.blocks if b.kind == "agent"]
    assert [b.text for b in agent] == ["Hello **world**"]
    assert agent[0].rev == 0 and not agent[0].done
    feed(p.ITEM_COMPLETED, item={"id": "m1", "type": "agent_message", "text": "Hello **world**!"})
    assert agent[0].text == "Hello **world**!" and agent[0].rev == 0 and agent[0].done


def test_completed_text_that_is_not_an_extension_rerenders_the_block() -> None:
    feed = Feed()
    created(feed)
    feed(p.MESSAGE_DELTA, item_id="m1", kind="agent_message", delta="draft")
    feed(p.ITEM_COMPLETED, item={"id": "m1", "type": "agent_message", "text": "final answer"})
    block = feed.state.tasks["t1"].blocks[-1]
    assert block.text == "final answer" and block.rev == 1


def test_prompt_shows_once_even_when_echoed_as_user_message() -> None:
    feed = Feed()
    created(feed, images=["shot.png"])
    feed(p.USER_MESSAGE, text="Fix the median", images=["shot.png"], kind="prompt")
    feed(p.USER_MESSAGE, text="also update the docs", images=[], kind="steer")
    users = [b for b in feed.state.tasks["t1"].blocks if b.kind == "user"]
    assert [(b.text, b.images, b.level) for b in users] == [
        ("Fix the median", ["shot.png"], ""),
        ("also update the docs", [], "steer"),
    ]


def test_command_becomes_compact_line_and_log_section() -> None:
    feed = Feed()
    created(feed)
    item = {"id": "c1", "type": "command_execution", "command": "pytest -q", "status": "in_progress"}
    feed(p.ITEM_STARTED, item=item)
    feed(p.OUTPUT_DELTA, item_id="c1", stream="stdout", text="F.\n")
    feed(p.OUTPUT_DELTA, item_id="c1", stream="stderr", text="boom\n")
    task = feed.state.tasks["t1"]
    assert task.blocks[-1].text == "Running pytest -q"
    done = dict(item, status="completed", exit_code=1, duration_ms=2300)
    feed(p.ITEM_COMPLETED, item=done)
    assert task.blocks[-1].text == "Ran pytest -q · exit 1 · 2.3 s"
    assert task.blocks[-1].level == "error"
    assert list(task.log) == [
        ("begin", "c1", "pytest -q"),
        ("out", "c1", "stdout", "F.\n"),
        ("out", "c1", "stderr", "boom\n"),
        ("end", "c1", 1, 2300, ""),
    ]


def test_file_change_line_counts_lines() -> None:
    feed = Feed()
    created(feed)
    change = {"path": "src/a.py", "kind": "update"}
    feed(
        p.ITEM_COMPLETED,
        item={
            "id": "f1",
            "type": "file_change",
            "changes": [change],
            "status": "completed",
            "added": 3,
            "removed": 1,
        },
    )
    assert feed.state.tasks["t1"].blocks[-1].text == "Edited src/a.py +3 −1"


def test_plan_progress_follows_todo_list_updates() -> None:
    feed = Feed()
    created(feed)
    items = [
        {"text": "read code", "status": "completed"},
        {"text": "fix bug", "status": "in_progress"},
        {"text": "run tests", "completed": False},
    ]
    feed(p.ITEM_UPDATED, item={"id": "p1", "type": "todo_list", "items": items, "explanation": "plan"})
    task = feed.state.tasks["t1"]
    assert [t.status for t in task.todos] == ["completed", "in_progress", "pending"]
    assert task.progress() == (1, 3)
    assert task.todo_explanation == "plan"


def test_status_times_tokens_and_context() -> None:
    feed = Feed()
    created(feed)
    feed(p.TASK_STATUS, status="running", ts=110.0)
    feed(
        p.CONTEXT_UPDATED,
        used_tokens=27_200,
        window_tokens=272_000,
        total={"input_tokens": 12_000, "cached_input_tokens": 0, "output_tokens": 345},
    )
    task = feed.state.tasks["t1"]
    assert task.active and task.elapsed(now=125.0) == 15.0
    assert task.context_left_pct == 90 and task.tokens == 12_345
    feed(p.TASK_STATUS, status="ready", ts=130.0)
    assert not task.active and task.elapsed(now=999.0) == 20.0
    assert feed.state.counts() == {"running": 0, "queued": 0}


def test_approval_is_pending_until_resolved() -> None:
    feed = Feed()
    created(feed)
    feed(p.APPROVAL_REQUESTED, request_id="r1", kind="command", command=["curl", "x"], reason="needs network")
    pending = feed.state.pending_approvals()
    assert [(a.request_id, a.command, a.reason) for a in pending] == [("r1", "curl x", "needs network")]
    feed(p.APPROVAL_RESOLVED, request_id="r1", decision="deny")
    assert feed.state.pending_approvals() == []
    assert feed.state.tasks["t1"].blocks[-1].text == "Denied: curl x"


def test_replayed_events_are_not_applied_twice() -> None:
    state = AppState()
    event = p.Event(p.MESSAGE_DELTA, "t1", 1, {"item_id": "m", "kind": "agent_message", "delta": "x"})
    state.apply(event)
    assert state.apply(event) is None
    assert state.tasks["t1"].blocks[-1].text == "x"


def test_attempts_of_one_group_are_compared_in_attempt_order() -> None:
    feed = Feed()
    created(feed, "t2", attempt=2, attempts=2, group_id="g1")
    created(feed, "t1", attempt=1, attempts=2, group_id="g1")
    created(feed, "t3", group_id="g2")
    assert [t.id for t in feed.state.group("t2")] == ["t1", "t2"]
    assert [t.id for t in feed.state.group("t3")] == ["t3"]


def test_log_memory_is_bounded_and_a_cut_section_is_reopened() -> None:
    feed = Feed()
    created(feed)
    feed(
        p.ITEM_STARTED,
        item={"id": "c1", "type": "command_execution", "command": "yes", "status": "in_progress"},
    )
    chunk = "y\n" * 5000
    for _ in range(MAX_LOG_CHARS // len(chunk) + 20):
        feed(p.OUTPUT_DELTA, item_id="c1", stream="stdout", text=chunk)
    task = feed.state.tasks["t1"]
    assert task.log_chars <= MAX_LOG_CHARS
    assert task.log_base > 0
    ops = task.log_ops_since(0)
    assert ops[0] == ("begin", "c1", "yes")
    assert all(op[0] == "out" for op in ops[1:])


def test_chat_keeps_only_the_newest_blocks() -> None:
    feed = Feed()
    created(feed)
    for i in range(MAX_BLOCKS + 50):
        feed(p.NOTE, level="info", message=f"note {i}")
    task = feed.state.tasks["t1"]
    assert len(task.blocks) == MAX_BLOCKS
    assert task.blocks[-1].text == f"note {MAX_BLOCKS + 49}"


def test_malformed_event_data_does_not_crash() -> None:
    feed = Feed()
    feed(p.TASK_CREATED, title=None, prompt=None, attempt="x")
    feed(p.ITEM_COMPLETED, item="not a dict")
    feed(p.ITEM_COMPLETED, item={"type": "command_execution", "exit_code": "1"})
    feed(p.DIFF_UPDATED, files="nope", added="3")
    feed(p.CONTEXT_UPDATED, used_tokens=None, total=[])
    task = feed.state.tasks["t1"]
    assert task.title == "t1" and task.added == 0 and task.files == []


def test_formatting_helpers() -> None:
    assert [format_duration(s) for s in (0.42, 65, 7380)] == ["0.4 s", "1m 05s", "2h 03m"]
    assert [format_tokens(n) for n in (950, 12_345, 1_200_000)] == ["950", "12.3k", "1.2M"]


def run_turn(
    feed: Feed, number: int, text: str, answer: str, plan: list[str], kind: str = "follow_up"
) -> None:
    """One turn as the agent emits it: the user message just before turn.started, then its items."""
    feed(p.USER_MESSAGE, text=text, images=[], kind=kind)
    feed(p.TURN_STARTED, turn=number)
    todo = {
        "id": f"plan-{number}",
        "type": "todo_list",
        "items": [{"text": t, "status": "pending"} for t in plan],
    }
    feed(p.ITEM_COMPLETED, item=todo)
    unique = len(feed.lines)  # a redone turn's items get new ids, as the agent's counter goes on
    feed(
        p.ITEM_COMPLETED, item={"id": f"cmd-{unique}", "type": "command_execution", "command": f"ls {number}"}
    )
    feed(p.MESSAGE_DELTA, item_id=f"m{unique}", kind="agent_message", delta=answer)
    feed(p.ITEM_COMPLETED, item={"id": f"m{unique}", "type": "agent_message", "text": answer})
    feed(p.TURN_COMPLETED, turn=number, usage=p.usage_dict())


def chat_texts(feed: Feed) -> list[str]:
    return [b.text for b in feed.state.tasks["t1"].blocks]


def test_undone_turn_and_later_ones_leave_the_chat_and_plan_while_earlier_turns_stay() -> None:
    feed = Feed()
    created(feed)
    run_turn(feed, 1, "Fix the median", "Fixed it.", ["read", "fix"], kind="prompt")
    run_turn(feed, 2, "now the mean", "Mean fixed too.", ["mean"])
    feed(p.USER_MESSAGE, text="and a steer", images=[], kind="steer")
    feed(p.NOTE, level="warning", message="Interrupted. Send a message to continue.")
    run_turn(feed, 3, "and the mode", "Mode done.", ["mode"])
    assert "Mode done." in chat_texts(feed)

    feed(p.TURN_UNDONE, turn=2, conversation=True)
    task = feed.state.tasks["t1"]
    assert chat_texts(feed) == ["Fix the median", "Ran ls 1", "Fixed it."]
    assert [t.text for t in task.todos] == ["read", "fix"]
    assert task.turn == 1

    run_turn(feed, 2, "another try", "Second answer.", ["again"])
    feed(p.TURN_UNDONE, turn=2, conversation=True)
    feed(p.NOTE, level="info", message="Undid turn 2")
    assert chat_texts(feed) == ["Fix the median", "Ran ls 1", "Fixed it.", "Undid turn 2"]
    feed(p.TURN_UNDONE, turn=1, conversation=True)
    assert chat_texts(feed) == [] and task.todos == [] and task.turn == 0


def test_undo_that_kept_the_conversation_or_names_an_unknown_turn_keeps_the_chat() -> None:
    feed = Feed()
    created(feed)
    run_turn(feed, 1, "Fix the median", "Fixed it.", ["read"], kind="prompt")
    before = chat_texts(feed)
    feed(p.TURN_UNDONE, turn=1, conversation=False)
    feed(p.TURN_UNDONE, turn=7, conversation=True)
    feed(p.TURN_UNDONE, turn="bad")
    assert chat_texts(feed) == before


def test_replaying_a_rollout_with_an_undo_gives_the_same_chat() -> None:
    live = Feed()
    created(live)
    run_turn(live, 1, "Fix the median", "Fixed it.", ["read"], kind="prompt")
    run_turn(live, 2, "now the mean", "Mean fixed too.", ["mean"])
    live(p.TURN_UNDONE, turn=2, conversation=True)
    run_turn(live, 2, "the mode instead", "Mode done.", ["mode"])
    replayed = AppState()
    for line in live.lines:
        replayed.apply(p.Event.from_json(line))
    shown = [(b.id, b.text) for b in live.state.tasks["t1"].blocks]
    assert shown == [(b.id, b.text) for b in replayed.tasks["t1"].blocks]
    assert [t.text for t in replayed.tasks["t1"].todos] == ["mode"]
    assert "Mean fixed too." not in chat_texts(live) and "Mode done." in chat_texts(live)
