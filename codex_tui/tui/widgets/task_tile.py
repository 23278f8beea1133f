"""One task as a live tile of mission control: status, plan step, attention, conflicts, log tail.

`tile_info` (pure) turns a task model into the few values a tile shows; the tile redraws only when
they change. Log text comes from the task model, whose reducer already removed control sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, get_character_cell_size
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from codex_tui.tui.attention import ATTENTION_MARKS
from codex_tui.tui.state import STATUS_ICONS, TaskModel, format_duration, format_tokens
from codex_tui.tui.usage_meter import usage_text
from codex_tui.tui.widgets.plan_view import MARKS
from codex_tui.tui.widgets.task_list import STATUS_LABELS, STATUS_STYLES

LOG_TAIL_LINES = 12
"""Log lines a tile keeps (it shows as many as fit)."""
LOG_SCAN_OPS = 200
LOG_SCAN_CHARS = 8_000
"""Bounds of the backwards scan of the log: a tile never reads more than this per refresh."""
MAX_LINE_CHARS = 300
CONFLICT_MARK = "⚠"
ATTENTION_STYLES = {"approval": "$warning", "failed": "$error", "finished": "$success"}


@dataclass(frozen=True, slots=True)
class TileInfo:
    """What one tile shows; equal infos draw the same tile."""

    id: str
    title: str
    status: str
    elapsed: str = ""
    step: str = ""
    step_status: str = ""
    done: int = 0
    total: int = 0
    added: int = 0
    removed: int = 0
    tokens: str = "0"
    attention: str = ""
    """approval | failed | finished, or empty."""
    attention_detail: str = ""
    conflict: str = ""
    """`calc.py also changed by …`, or empty."""
    log: tuple[str, ...] = ()
    meters: str = ""
    """CPU, memory and disk of the task's sandbox while it runs (`cpu 42% · mem 140M/2.0G …`)."""


def tile_info(
    task: TaskModel,
    now: float | None,
    *,
    attention: str = "",
    attention_detail: str = "",
    conflict: str = "",
) -> TileInfo:
    """The tile of one task (`now` None: no elapsed time, for stable snapshots)."""
    done, total = task.progress()
    step = current_step(task)
    return TileInfo(
        id=task.id,
        title=task.title or task.id,
        status=task.status,
        elapsed=format_duration(task.elapsed(now)) if now is not None else "",
        step=step[0],
        step_status=step[1],
        done=done,
        total=total,
        added=task.added,
        removed=task.removed,
        tokens=format_tokens(task.tokens),
        attention=attention,
        attention_detail=attention_detail,
        conflict=conflict,
        log=log_tail(task),
        meters=usage_text(task.usage) if task.usage is not None and task.active else "",
    )


def current_step(task: TaskModel) -> tuple[str, str]:
    """(text, status) of the step in progress, else the next pending one, else the last one."""
    for wanted in ("in_progress", "pending"):
        for item in task.todos:
            if item.status == wanted:
                return item.text, item.status
    return (task.todos[-1].text, task.todos[-1].status) if task.todos else ("", "")


def log_tail(task: TaskModel, count: int = LOG_TAIL_LINES) -> tuple[str, ...]:
    """The last `count` lines of the task's sandbox log (commands as `$ cmd`), read backwards, bounded."""
    ops = []
    chars = 0
    for index in range(len(task.log) - 1, max(-1, len(task.log) - 1 - LOG_SCAN_OPS), -1):
        op = task.log[index]
        ops.append(op)
        chars += len(op[3]) if op[0] == "out" else 0
        if chars >= LOG_SCAN_CHARS:
            break
    text: list[str] = []
    for op in reversed(ops):
        if op[0] == "out":
            text.append(op[3][-LOG_SCAN_CHARS:])
        elif op[0] == "begin" and op[2]:
            text.append(f"\n$ {op[2]}\n")
        elif op[0] == "end" and op[2]:
            text.append(f"\n(exit {op[2]})\n")
        elif op[0] == "net":
            text.append(f"\n{op[2]}\n")
    lines = [line.replace("\t", "    ")[:MAX_LINE_CHARS] for line in "".join(text).splitlines()]
    return tuple(line for line in lines if line.strip())[-count:]


def cut_text(text: str, width: int) -> str:
    """`text` cut to `width` cells, with `…` when it was longer (a wide character counts two cells,
    a combining or zero-width one none: a title in CJK or emoji stays on its line)."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    room, used, kept = width - 1, 0, []
    for char in text:
        used += get_character_cell_size(char)
        if used > room:
            break
        kept.append(char)
    return "".join(kept) + "…"


def tile_content(info: TileInfo, width: int, height: int) -> Content:
    """The tile's lines for a content area of `width` × `height` (the log fills what is left)."""
    width = max(4, width)
    style = STATUS_STYLES.get(info.status, "$foreground")
    lines: list[Content] = []
    icon = STATUS_ICONS.get(info.status, "·")
    mark = ATTENTION_MARKS.get(info.attention, "")
    head = [(icon + " ", f"bold {style}")]
    if mark and mark != icon:
        head.append((mark + " ", f"bold {ATTENTION_STYLES[info.attention]}"))
    if info.conflict:
        head.append((CONFLICT_MARK + " ", "bold $warning"))
    used = sum(len(part[0]) for part in head)
    lines.append(Content.assemble(*head, (cut_text(info.title, width - used), "bold")))
    facts = [STATUS_LABELS.get(info.status, info.status)]
    if info.elapsed:
        facts.append(info.elapsed)
    lines.append(
        Content.assemble(
            (" · ".join(facts), style),
            "  ",
            (f"+{info.added}", "$success"),
            " ",
            (f"−{info.removed}", "$error"),
            "  ",
            (f"{info.tokens} tok", "$foreground-muted"),
        ).truncate(width, ellipsis=True)
    )
    if info.meters:
        lines.append(Content.styled(cut_text(info.meters, width), "$foreground-muted"))
    if info.total:
        box, box_style = MARKS.get(info.step_status, MARKS["pending"])
        count = f"{box} {info.done}/{info.total} "
        lines.append(Content.assemble((count, box_style), cut_text(info.step, width - len(count))))
    else:
        lines.append(Content.styled("no plan yet", "$foreground-muted"))
    if info.attention:
        label = {"approval": "approval:", "failed": "failed:", "finished": "finished:"}[info.attention]
        detail = cut_text(f"{label} {info.attention_detail}", width)
        lines.append(Content.styled(detail, f"bold {ATTENTION_STYLES[info.attention]}"))
    if info.conflict:
        lines.append(Content.styled(cut_text(f"{CONFLICT_MARK} {info.conflict}", width), "$warning"))
    room = max(0, height - len(lines))
    if room and info.log:
        lines.extend(Content.styled(cut_text(line, width), "$foreground-muted") for line in info.log[-room:])
    return Content("\n").join(lines[: max(1, height)])


class TaskTile(Widget):
    """A live tile of one task; `show` redraws it only when what it shows changed.

    Tiles take no focus: mission control marks the current one with a class, so moving between
    tiles restyles two tiles instead of re-laying out the footer's keys.
    """

    DEFAULT_CSS = """
    TaskTile {
        height: 1fr;
        border: round $foreground 25%;
        padding: 0 1;
        &.attention-approval { border: round $warning; }
        &.attention-failed { border: round $error; }
        &.current { border: double $primary; background: $boost; }
    }
    """

    class Clicked(Message):
        """The user clicked this tile."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, info: TileInfo) -> None:
        super().__init__(classes="task-tile")
        self.info = info
        self._apply_classes()

    @property
    def task_id(self) -> str:
        """The id of the task shown."""
        return self.info.id

    def show(self, info: TileInfo) -> bool:
        """Show these values; False (and no redraw) when they are the ones shown."""
        if info == self.info:
            return False
        self.info = info
        self._apply_classes()
        self.refresh()
        return True

    def _apply_classes(self) -> None:
        for kind in ("approval", "failed", "finished"):
            self.set_class(self.info.attention == kind, f"attention-{kind}")
        self.set_class(bool(self.info.conflict), "conflict")

    def on_click(self) -> None:
        """Make this the current tile."""
        self.post_message(self.Clicked(self.task_id))

    def render(self) -> Content:
        """The tile's lines, fitted to its size."""
        size = self.content_size
        return tile_content(self.info, size.width, size.height)
