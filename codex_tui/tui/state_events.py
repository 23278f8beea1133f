"""How each event changes a task's model: one handler per event type (a pure reducer).

Handlers see events whose strings were stripped of terminal control sequences (`clean_event`).
"""

from __future__ import annotations

from typing import Any

from codex_tui import protocol as p
from codex_tui.boundary.terminal import strip_controls
from codex_tui.tui.artifacts import ARTIFACT_ICON, artifact_chat_text, parse_artifact
from codex_tui.tui.chat_lines import CommandInfo, as_int, command_line, command_note, file_change_line
from codex_tui.tui.network import network_log_line
from codex_tui.tui.review import parse_review, summary_text
from codex_tui.tui.task_model import (
    MAX_BLOCKS,
    MAX_LOG_CHARS,
    MAX_MESSAGE_CHARS,
    Approval,
    BlockKind,
    ChatBlock,
    LogOp,
    TaskModel,
    TodoItem,
    TurnMark,
)
from codex_tui.tui.tool_lines import tool_line


def clean_event(event: p.Event) -> p.Event:
    """A copy of `event` whose strings carry no terminal control sequences (task text is untrusted)."""
    return p.Event(event.type, event.task_id, event.seq, _clean(event.data), event.ts)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


# --- handlers ------------------------------------------------------------------------------------


def _created(task: TaskModel, event: p.Event) -> None:
    d = event.data
    task.title = str(d.get("title") or d.get("prompt") or task.id).splitlines()[0][:120]
    task.prompt = str(d.get("prompt") or "")
    task.attempt = as_int(d.get("attempt"), 1)
    task.attempts = as_int(d.get("attempts"), 1)
    task.group_id = str(d.get("group_id") or "")
    task.mode = str(d.get("mode") or "")
    task.model = str(d.get("model") or "")
    task.repo = str(d.get("repo") or "")
    task.kind = str(d.get("kind") or "code") if d.get("kind") in p.TASK_KINDS else "code"
    target = d.get("review_target")
    task.review_target = dict(target) if isinstance(target, dict) else {}
    task.created = event.ts
    if task.prompt:
        block = ChatBlock("prompt", "user", task.prompt, _names(d.get("images")), done=True)
        block.preview = _first_path(d.get("images"))
        block.turn = task.turn_serial + 1  # the prompt opens the first turn
        _add_block(task, block)


def _status(task: TaskModel, event: p.Event) -> None:
    status = str(event.data.get("status") or task.status)
    task.status = status
    task.message = str(event.data.get("message") or "")
    if status in ("starting", "running") and task.started is None:
        task.started = event.ts
    if status in p.TERMINAL_STATUSES:
        task.usage = None
        if task.finished is None or status != "applied":
            task.finished = event.ts
        for block in task.blocks:
            block.done = True
        if status in ("failed", "cancelled") and task.message:
            _note(task, f"status-{event.seq}", "error" if status == "failed" else "warning", task.message)
    else:
        task.finished = None
    if status != "waiting_approval" and status in p.TERMINAL_STATUSES:
        task.approvals.clear()


def _user_message(task: TaskModel, event: p.Event) -> None:
    d = event.data
    text = str(d.get("text") or "")
    kind = str(d.get("kind") or "prompt")
    if kind == "prompt" and task.blocks and task.blocks[0].id == "prompt" and task.blocks[0].text == text:
        return
    block = ChatBlock(f"user-{event.seq}", "user", text, _names(d.get("images")), level=kind, done=True)
    block.preview = _first_path(d.get("images"))
    if kind != "steer":
        block.turn = task.turn_serial + 1  # a prompt or follow-up arrives just before its turn.started
    _add_block(task, block)


def _item(task: TaskModel, event: p.Event) -> None:
    item = event.data.get("item")
    if not isinstance(item, dict):
        return
    kind = item.get("type")
    item_id = str(item.get("id") or f"item-{event.seq}")
    completed = event.type == p.ITEM_COMPLETED
    if kind in (p.ITEM_AGENT_MESSAGE, p.ITEM_REASONING):
        block_kind: BlockKind = "agent" if kind == p.ITEM_AGENT_MESSAGE else "reasoning"
        block = _block(task, item_id, block_kind)
        text = item.get("text")
        if isinstance(text, str) and text:
            text = _shown_message(task, text)
        if isinstance(text, str) and text and text != block.text:
            if not text.startswith(block.text):
                block.rev += 1
            block.text = text
        block.done = block.done or completed
    elif kind == p.ITEM_COMMAND:
        _command_item(task, item_id, item, completed)
    elif kind == p.ITEM_FILE_CHANGE:
        block = _block(task, item_id, "tool")
        block.text = file_change_line(item)
        block.level = "error" if item.get("status") == "failed" else ""
        block.rev += 1
        block.done = completed
    elif kind in (p.ITEM_MCP_TOOL_CALL, p.ITEM_WEB_SEARCH):
        line, block = tool_line(item), _block(task, item_id, "tool")
        block.icon, block.text, block.detail = line.icon, line.text, line.detail
        block.level, block.done = "error" if line.error else "", completed
        block.rev += 1
    elif kind == p.ITEM_TODO_LIST:
        raw = item.get("items") or []
        task.todos = [TodoItem(str(t.get("text", "")), _todo_status(t)) for t in raw if isinstance(t, dict)]
        task.todo_explanation = str(item.get("explanation") or "")
    elif kind == p.ITEM_ERROR:
        _note(task, item_id, "error", str(item.get("message") or "error"))
    elif kind == p.ITEM_IMAGE and item.get("preview_path"):
        # A host copy of the image (never the checkout's file): a click on the line previews it.
        block = _block(task, item_id, "tool")
        block.icon, block.text = "🖼", f"Viewed image {item.get('path', '')}"
        block.preview, block.done = str(item["preview_path"]), True
    elif kind == p.ITEM_IMAGE:
        _note(task, item_id, "info", f"Viewed image {item.get('path', '')}")
    elif kind == p.ITEM_ARTIFACT and completed:
        _artifact(task, item_id, item)
    elif kind == p.ITEM_REVIEW and completed:
        task.review = parse_review(item)
        task.review_rev += 1
        level = "error" if task.review.failed else "info"
        _note(task, f"review-{item_id}", level, f"Review: {summary_text(task.review)} (see the Review pane)")


def _command_item(task: TaskModel, item_id: str, item: dict[str, Any], completed: bool) -> None:
    command = str(item.get("command") or "")
    info = task.commands.get(item_id)
    if info is None:
        info = CommandInfo(item_id, command)
        task.commands[item_id] = info
        _log(task, ("begin", item_id, command))
    if command and not info.command:
        info.command = command
    status = str(item.get("status") or "")
    if (completed or status in ("completed", "failed", "declined")) and not info.done:
        info.exit_code = item.get("exit_code") if isinstance(item.get("exit_code"), int) else None
        info.duration_ms = as_int(item.get("duration_ms"), 0) if "duration_ms" in item else None
        info.note = command_note(item)
        info.done = True
        _log(task, ("end", item_id, info.exit_code, info.duration_ms, info.note))
    block = _block(task, item_id, "tool")
    block.text = command_line(info.command, info, status)
    block.level = "error" if status in ("failed", "declined") or (info.exit_code or 0) != 0 else ""
    block.rev += 1
    block.done = info.done


def _artifact(task: TaskModel, item_id: str, item: dict[str, Any]) -> None:
    artifact = parse_artifact(item_id, item)
    if artifact is None or any(a.id == item_id for a in task.artifacts):
        return
    task.artifacts.append(artifact)
    block = _block(task, item_id, "tool")
    block.icon, block.text = ARTIFACT_ICON, artifact_chat_text(artifact)
    block.preview, block.done = artifact.path, True


def _network_request(task: TaskModel, event: p.Event) -> None:
    text, allowed = network_log_line(event.data)
    _log(task, ("net", f"net-{event.seq}", text, allowed))


def _message_delta(task: TaskModel, event: p.Event) -> None:
    d = event.data
    kind: BlockKind = "reasoning" if d.get("kind") == "reasoning" else "agent"
    block = _block(task, str(d.get("item_id") or f"msg-{event.seq}"), kind)
    if len(block.text) <= MAX_MESSAGE_CHARS:  # past it, the text was cut and ends with the note
        block.text = _shown_message(task, block.text + str(d.get("delta") or ""))


def _shown_message(task: TaskModel, text: str) -> str:
    """`text`, or its first MAX_MESSAGE_CHARS and a note saying where the rest is."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + (
        f"\n\n… the rest of this message is not shown here (`codex-tui tasks show {task.id}` has it all)"
    )


def _output_delta(task: TaskModel, event: p.Event) -> None:
    d = event.data
    item_id = str(d.get("item_id") or "")
    if item_id not in task.commands:
        task.commands[item_id] = CommandInfo(item_id, "")
        _log(task, ("begin", item_id, ""))
    stream = "stderr" if d.get("stream") == "stderr" else "stdout"
    _log(task, ("out", item_id, stream, str(d.get("text") or "")))


def _approval_requested(task: TaskModel, event: p.Event) -> None:
    d = event.data
    request_id = str(d.get("request_id") or f"req-{event.seq}")
    command = d.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    task.approvals[request_id] = Approval(
        task.id,
        request_id,
        str(d.get("kind") or "command"),
        str(command or ""),
        str(d.get("patch") or ""),
        str(d.get("reason") or ""),
        str(d.get("server") or ""),
        str(d.get("tool") or ""),
        d.get("arguments"),
    )


def _approval_resolved(task: TaskModel, event: p.Event) -> None:
    request_id = str(event.data.get("request_id") or "")
    approval = task.approvals.pop(request_id, None)
    decision = str(event.data.get("decision") or "")
    if approval is not None:
        what = approval.command or approval.kind
        if approval.kind == "mcp":
            what = f"MCP {approval.server}.{approval.tool}"
        verb = {"approve": "Approved", "approve_task": "Approved for this task", "deny": "Denied"}
        _note(task, f"approval-{request_id}", "info", f"{verb.get(decision, decision)}: {what}")


def _diff_updated(task: TaskModel, event: p.Event) -> None:
    d = event.data
    task.added = as_int(d.get("added"), 0)
    task.removed = as_int(d.get("removed"), 0)
    files = d.get("files")
    task.files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    task.diff_rev += 1


def _context_updated(task: TaskModel, event: p.Event) -> None:
    d = event.data
    task.used_tokens = as_int(d.get("used_tokens"), task.used_tokens)
    task.window_tokens = as_int(d.get("window_tokens"), task.window_tokens)
    total = d.get("total")
    if isinstance(total, dict):
        task.input_tokens = as_int(total.get("input_tokens"), task.input_tokens)
        task.cached_input_tokens = as_int(total.get("cached_input_tokens"), task.cached_input_tokens)
        task.output_tokens = as_int(total.get("output_tokens"), task.output_tokens)


def _turn_started(task: TaskModel, event: p.Event) -> None:
    task.turn = as_int(event.data.get("turn"), task.turn + 1)
    task.turn_serial += 1
    plan = [TodoItem(t.text, t.status) for t in task.todos]
    task.turn_marks.append(TurnMark(task.turn, task.turn_serial, plan, task.todo_explanation))


def _turn_undone(task: TaskModel, event: p.Event) -> None:
    """Drop the undone turn (the newest one with that number) and anything after it from the chat."""
    if event.data.get("conversation") is False:
        return  # only the files went back: the conversation (and so the chat) stays
    number = as_int(event.data.get("turn"), -1)
    index = next(
        (i for i in reversed(range(len(task.turn_marks))) if task.turn_marks[i].number == number), -1
    )
    if index < 0:
        return  # that turn never started (or is already gone): nothing of it is on screen
    mark = task.turn_marks[index]
    del task.turn_marks[index:]
    task.blocks = [b for b in task.blocks if b.turn < mark.serial]
    task.todos = mark.todos
    task.todo_explanation = mark.todo_explanation
    task.turn = task.turn_marks[-1].number if task.turn_marks else 0


def _turn_failed(task: TaskModel, event: p.Event) -> None:
    error = event.data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    _note(task, f"turn-failed-{event.seq}", "error", f"Turn failed: {message or 'unknown error'}")


def _compacted(task: TaskModel, event: p.Event) -> None:
    d = event.data
    before, after = as_int(d.get("before_tokens"), 0), as_int(d.get("after_tokens"), 0)
    text = f"Context compacted: {before:,} → {after:,} tokens"
    _note(task, f"compacted-{event.seq}", "info", text)


def _sandbox_info(task: TaskModel, event: p.Event) -> None:
    d = event.data
    text = f"Sandbox: {d.get('backend', '?')}" + (f" — {d['message']}" if d.get("message") else "")
    _note(task, f"sandbox-{event.seq}", "info", text)


def _note_event(task: TaskModel, event: p.Event) -> None:
    level = str(event.data.get("level") or "info")
    _note(task, f"note-{event.seq}", level, str(event.data.get("message") or ""))


def _error_event(task: TaskModel, event: p.Event) -> None:
    _note(task, f"error-{event.seq}", "error", str(event.data.get("message") or "error"))


def _sandbox_usage(task: TaskModel, event: p.Event) -> None:
    task.usage = p.ResourceUsage.from_data(event.data)


HANDLERS = {
    p.TASK_CREATED: _created,
    p.TASK_STATUS: _status,
    p.USER_MESSAGE: _user_message,
    p.ITEM_STARTED: _item,
    p.ITEM_UPDATED: _item,
    p.ITEM_COMPLETED: _item,
    p.MESSAGE_DELTA: _message_delta,
    p.OUTPUT_DELTA: _output_delta,
    p.APPROVAL_REQUESTED: _approval_requested,
    p.APPROVAL_RESOLVED: _approval_resolved,
    p.DIFF_UPDATED: _diff_updated,
    p.CONTEXT_UPDATED: _context_updated,
    p.TURN_STARTED: _turn_started,
    p.TURN_FAILED: _turn_failed,
    p.TURN_UNDONE: _turn_undone,
    p.COMPACTED: _compacted,
    p.SANDBOX_INFO: _sandbox_info,
    p.NETWORK_REQUEST: _network_request,
    p.SANDBOX_USAGE: _sandbox_usage,
    p.NOTE: _note_event,
    p.ERROR: _error_event,
}


# --- helpers -------------------------------------------------------------------------------------


def _block(task: TaskModel, block_id: str, kind: BlockKind) -> ChatBlock:
    for block in reversed(task.blocks[-50:]):
        if block.id == block_id:
            return block
    for block in task.blocks:
        if block.id == block_id:
            return block
    return _add_block(task, ChatBlock(block_id, kind))


def _add_block(task: TaskModel, block: ChatBlock) -> ChatBlock:
    block.turn = block.turn or task.turn_serial
    task.blocks.append(block)
    if len(task.blocks) > MAX_BLOCKS:
        drop = len(task.blocks) - MAX_BLOCKS
        del task.blocks[:drop]
        task.blocks_dropped += drop
    return block


def _note(task: TaskModel, block_id: str, level: str, text: str) -> None:
    kind: BlockKind = "error" if level == "error" else "note"
    _add_block(task, ChatBlock(block_id, kind, text, level=level, done=True))


def _log(task: TaskModel, op: LogOp) -> None:
    task.log.append(op)
    if op[0] == "out":
        task.log_chars += len(op[3])
        while task.log_chars > MAX_LOG_CHARS and len(task.log) > 1:
            old = task.log.popleft()
            task.log_base += 1
            if old[0] == "out":
                task.log_chars -= len(old[3])


def _todo_status(item: dict[str, Any]) -> str:
    status = item.get("status")
    if status in ("pending", "in_progress", "completed"):
        return str(status)
    return "completed" if item.get("completed") else "pending"


def _names(images: Any) -> list[str]:
    if not isinstance(images, list):
        return []
    return [str(i).replace("\\", "/").rsplit("/", 1)[-1] for i in images]


def _first_path(images: Any) -> str:
    return str(images[0]) if isinstance(images, list) and images else ""
