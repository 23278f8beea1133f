"""Mission control: every task as a live tile in a grid that fits the terminal, and the attention inbox.

Arrow keys move the current tile, Enter opens its task (the screen dismisses with its id), y/a/n
answer its waiting approval through the `on_decide` callback. The App calls
`refresh_from(state, changed)` after each flush; only tiles whose values changed are redrawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from codex_tui.tui.attention import (
    ATTENTION_LABELS,
    ATTENTION_MARKS,
    AttentionItem,
    SeenTracker,
    attention_items,
    first_approval,
)
from codex_tui.tui.bindings import MISSION_BINDINGS, MISSION_GRID_BINDINGS
from codex_tui.tui.conflicts import ConflictFinder, Conflicts, conflict_summary
from codex_tui.tui.state import Approval, AppState
from codex_tui.tui.widgets.task_tile import ATTENTION_STYLES, TaskTile, TileInfo, cut_text, tile_info

MIN_TILE_WIDTH = 34
MIN_TILE_HEIGHT = 8
TILE_FRAME_S = 0.2
"""Tiles whose task only progressed (log lines, tokens) redraw about this often: 16 streaming tasks
cost 5 redraws a second each, not 30; status, attention and conflict changes redraw at once."""
TILE_TICKS = 3
"""Each TILE_FRAME_S is split in this many ticks, each redrawing a share of the pending tiles in
turn, so that no single frame repaints every tile (a key pressed meanwhile waits less)."""
INBOX_TEXT_WIDTH = 30
"""Text width of an inbox entry (the panel is 36 wide with border and padding)."""
Decide = Callable[[Approval, str], None]
"""Called with the approval and "approve", "approve_task" or "deny"."""


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, tile height) for `count` tiles in `width` × `height`: 2×2, 3×3 …; rows scroll past it."""
    if count <= 0:
        return 1, max(MIN_TILE_HEIGHT, height)
    columns = max(1, min(count, math.ceil(math.sqrt(count)), width // MIN_TILE_WIDTH))
    rows = math.ceil(count / columns)
    return columns, max(MIN_TILE_HEIGHT, height // rows)


@dataclass(slots=True)
class Marks:
    """Why each task needs the user, and the files it shares with other unapplied tasks."""

    items: list[AttentionItem] = field(default_factory=list)
    conflicts: Conflicts = field(default_factory=dict)

    @property
    def by_task(self) -> dict[str, AttentionItem]:
        """Attention items by task id."""
        return {item.task_id: item for item in self.items}


_conflicts = ConflictFinder()


def compute_marks(state: AppState, seen: SeenTracker) -> Marks:
    """The attention items and conflicts of the visible tasks."""
    return Marks(attention_items(state, seen), _conflicts(state.visible_tasks()))


def inbox_option(item: AttentionItem, width: int = INBOX_TEXT_WIDTH) -> Option:
    """`? Title`, then `  waiting for approval` and `  pytest -q` (each cut to `width`)."""
    style = ATTENTION_STYLES[item.kind]
    lines = [
        Content.assemble(
            (ATTENTION_MARKS[item.kind] + " ", f"bold {style}"), (cut_text(item.title, width - 2), "bold")
        ),
        Content.styled("  " + ATTENTION_LABELS[item.kind], style),
    ]
    if item.detail:
        lines.append(Content.styled("  " + cut_text(item.detail, width - 2), "$foreground-muted"))
    return Option(Content("\n").join(lines), id=item.task_id)


class TileGrid(ScrollableContainer):
    """The grid of tiles; it holds the focus while the user moves between tiles with the arrows."""

    BINDINGS = MISSION_GRID_BINDINGS


class MissionScreen(Screen[str | None]):
    """Dismisses with the id of the task to open, or None."""

    CSS_PATH = "mission.tcss"
    BINDINGS = MISSION_BINDINGS

    def __init__(
        self,
        state: AppState,
        seen: SeenTracker,
        *,
        on_decide: Decide | None = None,
        clock: Callable[[], float] | None = None,
        focus_task: str | None = None,
        focus_inbox: bool = False,
    ) -> None:
        super().__init__()
        self.state = state
        self.seen = seen
        self.on_decide = on_decide
        self.clock = clock
        """None: no elapsed times (stable snapshots)."""
        self.current: str | None = focus_task
        """The task of the current tile (the one keys act on while the grid has focus)."""
        self.focus_inbox = focus_inbox
        self.marks = compute_marks(state, seen)
        self.answered: set[tuple[str, str]] = set()
        self._tiles: dict[str, TaskTile] = {}
        self._order: list[str] = []
        self._inbox_key: tuple[AttentionItem, ...] = ()
        self._columns = 1
        self._dirty: set[str] = set()
        self._turn = 0
        self._title_key = ""
        self._ready = False
        self._inbox_title = ""
        self.redraws = 0
        """How many tile redraws refreshes caused (tests check refreshes stay cheap)."""

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Title; tile grid | inbox; footer."""
        yield Static("", id="mission-title")
        with Horizontal(id="mission-body"):
            yield TileGrid(id="mission-grid")
            with Vertical(id="inbox-panel"):
                yield Static("", id="inbox-title")
                yield OptionList(id="inbox")
        yield Footer()

    async def on_mount(self) -> None:
        """Build the tiles and the inbox, then make the chosen tile current (or focus the inbox)."""
        await self._rebuild()
        self._sync_inbox()
        self.set_interval(TILE_FRAME_S / TILE_TICKS, self._tile_tick, name="mission-tiles")
        if self.clock is not None:
            self.set_interval(1.0, self._tick, name="mission-elapsed")
        self.select_tile(self.current if self.current in self._tiles else None)
        if self.focus_inbox and self.marks.items:
            self.action_inbox()
        self._ready = True
        self._dirty.update(self._order)  # events folded in while the tiles were being built

    def on_resize(self) -> None:
        """The grid fits the terminal: recompute columns and tile height."""
        self._fit()

    def _fit(self) -> None:
        grid = self.query_one(TileGrid)
        size = grid.content_region.size
        if not size.width or not size.height:
            return
        columns, tile_height = grid_shape(len(self._order), size.width, size.height)
        self._columns = columns
        grid.styles.grid_size_columns = columns
        grid.styles.grid_rows = str(tile_height)

    async def _rebuild(self) -> None:
        grid = self.query_one(TileGrid)
        await grid.remove_children()
        tasks = self.state.visible_tasks()
        self._order = [t.id for t in tasks]
        self._tiles = {t.id: TaskTile(self._info(t.id)) for t in tasks}
        await grid.mount_all(self._tiles[i] for i in self._order)
        if not self._order:
            await grid.mount(Static("No tasks yet — start one with Ctrl+N.", id="mission-empty"))
        self._fit()

    # --- live updates --------------------------------------------------------------------------

    def refresh_from(self, state: AppState, changed: set[str] | None = None) -> None:
        """Bring the tiles and the inbox in line with the model (`changed`: ids the flush touched)."""
        self.state = state
        if not self._ready:
            return  # on_mount builds from `state`
        old = self.marks
        self.marks = compute_marks(state, self.seen)
        if [t.id for t in state.visible_tasks()] != self._order:
            self.run_worker(self._rebuild_and_select(self.current), group="mission-rebuild", exclusive=True)
        else:
            old_by_task, new_by_task = old.by_task, self.marks.by_task
            for task_id in self._order:
                marked = old_by_task.get(task_id) != new_by_task.get(task_id)
                if marked or old.conflicts.get(task_id) != self.marks.conflicts.get(task_id):
                    self._redraw(task_id)  # news for the user: now
                elif changed is None or task_id in changed:
                    self._dirty.add(task_id)  # progress and log lines: with the next tile frame
        self._sync_inbox()
        self._update_title()

    async def _rebuild_and_select(self, current: str | None) -> None:
        await self._rebuild()
        self.select_tile(current if current in self._tiles else None)

    def _tick(self) -> None:
        for task_id in self._order:
            task = self.state.tasks.get(task_id)
            if task is not None and task.active:
                self._dirty.add(task_id)

    def redraw_pending(self, limit: int | None = None) -> None:
        """Redraw the tiles whose task progressed (at most `limit`, taking turns; None: all of them)."""
        if not self._dirty:
            return
        count = len(self._order)
        start = self._turn % count if count else 0
        turn = [*self._order[start:], *self._order[:start]]
        picked = [task_id for task_id in turn if task_id in self._dirty][:limit]
        for task_id in picked:
            self._redraw(task_id)
        if picked and count:
            self._turn = self._order.index(picked[-1]) + 1
        self._dirty &= set(self._order)

    def _tile_tick(self) -> None:
        self.redraw_pending(limit=max(1, math.ceil(len(self._order) / TILE_TICKS)))

    def _redraw(self, task_id: str) -> None:
        self._dirty.discard(task_id)
        tile = self._tiles.get(task_id)
        if tile is not None and task_id in self.state.tasks and tile.show(self._info(task_id)):
            self.redraws += 1

    def _info(self, task_id: str) -> TileInfo:
        task = self.state.tasks[task_id]
        item = self.marks.by_task.get(task_id)
        titles = {t.id: t.title or t.id for t in self.state.tasks.values()}
        return tile_info(
            task,
            self.clock() if self.clock is not None else None,
            attention=item.kind if item else "",
            attention_detail=item.detail if item else "",
            conflict=conflict_summary(self.marks.conflicts.get(task_id, []), titles),
        )

    def _sync_inbox(self) -> None:
        key = tuple(self.marks.items)
        inbox = self.query_one("#inbox", OptionList)
        count = len(key)
        title = f"Needs you ({count})" if count else "Nothing needs you"
        if key == self._inbox_key and self._inbox_title == title:
            return
        if title != self._inbox_title:
            self._inbox_title = title
            self.query_one("#inbox-title", Static).update(Content.styled(title, "bold"), layout=False)
        if key == self._inbox_key:
            return
        highlighted = inbox.highlighted_option.id if inbox.highlighted_option else None
        self._inbox_key = key
        inbox.set_options([inbox_option(item) for item in key])
        ids = [item.task_id for item in key]
        if highlighted in ids:
            inbox.highlighted = ids.index(highlighted)

    def _update_title(self) -> None:
        position = ""
        shown = self.focused_task_id
        if shown in self._order:
            position = f" · {self._order.index(shown) + 1}/{len(self._order)}"
        key = f"{len(self._order)} tasks{position}"
        if key == self._title_key:
            return
        self._title_key = key
        self.query_one("#mission-title", Static).update(
            Content.assemble(
                ("Mission control ", "bold $primary"),
                (key, "bold"),
                (
                    " · arrows move · Enter opens · y/a/n answer an approval · i inbox · Esc back",
                    "$text-muted",
                ),
            ),
            layout=False,  # one fixed line: no layout pass while tiles stream
        )

    # --- queries for the App and tests ---------------------------------------------------------

    @property
    def focused_task_id(self) -> str | None:
        """The task keys act on: the highlighted inbox entry if the inbox has focus, else the current tile."""
        focused = self.focused
        if isinstance(focused, OptionList):
            return focused.highlighted_option.id if focused.highlighted_option is not None else None
        return self.current

    def tile(self, task_id: str) -> TaskTile:
        """The tile of one task (KeyError when it has none)."""
        return self._tiles[task_id]

    @property
    def columns(self) -> int:
        """Tiles per row."""
        return self._columns

    # --- actions -------------------------------------------------------------------------------

    def select_tile(self, task_id: str | None) -> None:
        """Make this task's tile (default: the first) current and in view; the keys go to the grid."""
        if task_id not in self._tiles:
            task_id = self._order[0] if self._order else None
        for tile_id in {self.current, task_id}:
            if tile_id in self._tiles:
                self._tiles[tile_id].set_class(tile_id == task_id, "current")
        self.current = task_id
        grid = self.query_one(TileGrid)
        if not grid.has_focus:
            grid.focus()
        if task_id is not None:
            self._tiles[task_id].scroll_visible(animate=False)
        self._update_title()

    def action_move(self, dx: int, dy: int) -> None:
        """Make the tile left/right (dx) or above/below (dy) the current one."""
        if not self._order:
            return
        index = self._order.index(self.current) if self.current in self._order else 0
        target = index + dx + dy * self._columns
        if 0 <= target < len(self._order):
            self.select_tile(self._order[target])

    def action_open(self) -> None:
        """Open the focused task in the main view."""
        task_id = self.focused_task_id
        if task_id:
            self.dismiss(task_id)

    def action_inbox(self) -> None:
        """Move between the tiles and the attention inbox."""
        inbox = self.query_one("#inbox", OptionList)
        if inbox.has_focus:
            self.select_tile(self.current)
        elif inbox.option_count:
            inbox.focus()
            if inbox.highlighted is None:
                inbox.highlighted = 0
        else:
            self.notify("Nothing needs you", timeout=3)

    def action_decide(self, decision: str) -> None:
        """Answer the waiting approval of the focused task (y approve, a for the task, n deny)."""
        task = self.state.tasks.get(self.focused_task_id or "")
        approval = first_approval(task, self.answered) if task is not None else None
        if approval is None or self.on_decide is None:
            self.notify("This task is not waiting for an approval", severity="warning", timeout=3)
            return
        self.answered.add((approval.task_id, approval.request_id))
        self.on_decide(approval, decision)

    def action_close(self) -> None:
        """Back to the main view."""
        self.dismiss(None)

    def on_descendant_focus(self) -> None:
        """Keep the position in the title in step with the focus."""
        self._update_title()

    @on(TaskTile.Clicked)
    def _tile_clicked(self, event: TaskTile.Clicked) -> None:
        event.stop()
        self.select_tile(event.task_id)

    @on(OptionList.OptionHighlighted, "#inbox")
    def _inbox_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._update_title()

    @on(OptionList.OptionSelected, "#inbox")
    def _inbox_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.dismiss(event.option.id)
