"""How the selected task's panes are laid out: together (chat | to-do over log) or as tabs.

The panes stay one set of widgets inside Textual's TabbedContent, so the tab bar, its keys and
the hidden Review/Artifacts tabs work the same in both layouts. In the panes layout the content
switcher becomes a 2×2 grid: the *primary* pane (chat, or the diff, review or artifacts when asked)
fills the left column, the to-do list sits above the live log on the right. Below a size threshold
(`auto`) or by choice (`tabs`) only the active pane shows, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.css.query import NoMatches
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import ContentSwitcher, TabbedContent, TabPane, Tabs

from codex_tui.tui.palette import PANES

LAYOUTS = ("auto", "panes", "tabs")
"""`layout` in config.toml and in the remembered UI state."""
PRIMARY_PANES = ("chat", "diff", "review", "artifacts")
"""Panes that take the left column of the panes layout, one at a time."""
SIDE_PANES = ("todo", "log")
"""Panes always shown on the right in the panes layout, the to-do list above the log."""
PANES_MIN_SIZE = Size(140, 34)
"""`auto` shows the panes together from this terminal size up (the task list takes 46 columns)."""
SPLIT_RANGE = (30, 75)
"""The primary column's share of the panes' width, in percent."""
SPLIT_DEFAULT = 60
SPLIT_STEP = 5


class Pane(TabPane):
    """One pane of the selected task: a tab in the tabs layout, a box in the panes layout."""

    ALLOW_MAXIMIZE = True

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(title, id=id)
        self.border_title = title


@dataclass
class LayoutChoice:
    """What the user chose: the layout (auto | panes | tabs) and the primary column's width (%)."""

    layout: str = "auto"
    split: int = SPLIT_DEFAULT

    @classmethod
    def from_values(cls, layout: object, split: object, fallback: str = "auto") -> LayoutChoice:
        """From remembered or configured values; anything unknown falls back to the defaults."""
        chosen = layout if isinstance(layout, str) and layout in LAYOUTS else fallback
        width = split if isinstance(split, int) and not isinstance(split, bool) else SPLIT_DEFAULT
        return cls(chosen, clamp_split(width))

    def mode(self, size: Size) -> str:
        """'panes' or 'tabs' for a screen of this size."""
        if self.layout != "auto":
            return self.layout
        fits = size.width >= PANES_MIN_SIZE.width and size.height >= PANES_MIN_SIZE.height
        return "panes" if fits else "tabs"

    def next_layout(self) -> str:
        """auto → panes → tabs → auto."""
        return LAYOUTS[(LAYOUTS.index(self.layout) + 1) % len(LAYOUTS)]


def clamp_split(split: int) -> int:
    """A split within SPLIT_RANGE."""
    return max(SPLIT_RANGE[0], min(SPLIT_RANGE[1], int(split)))


class PaneLayout:
    """Keeps the TabbedContent `#panes` in the chosen layout as tabs are activated and sizes change.

    `tabs()` returns the TabbedContent of the main screen (raises NoMatches while the app closes).
    """

    def __init__(self, tabs: Callable[[], TabbedContent], choice: LayoutChoice) -> None:
        self._tabs = tabs
        self.choice = choice
        self.primary = "chat"
        self.mode = "tabs"

    def apply(self, size: Size) -> None:
        """Lay the panes out for the current layout, active tab and screen size."""
        try:
            tabs = self._tabs()
            switcher = tabs.query_one(ContentSwitcher)
        except NoMatches:
            return
        self.mode = self.choice.mode(size)
        active = tabs.active or "chat"
        if active in PRIMARY_PANES:
            self.primary = active
        if not self._shown(tabs, self.primary):
            self.primary = "chat"
        tabs.set_class(self.mode == "panes", "-panes")
        panes = {pane.id: pane for pane in switcher.query_children(TabPane) if pane.id}
        visible = self.visible_panes(active)
        for pane_id, pane in panes.items():
            pane.display = pane_id in visible
            pane.set_class(self.mode == "panes" and pane_id == self.primary, "-primary")
        if self.mode == "panes":
            for index, pane_id in enumerate((self.primary, *SIDE_PANES)):
                if pane_id in panes and switcher.children.index(panes[pane_id]) != index:
                    switcher.move_child(panes[pane_id], before=index)
            split = self.choice.split
            switcher.styles.grid_columns = f"{split}fr {100 - split}fr"

    def visible_panes(self, active: str) -> tuple[str, ...]:
        """The panes on screen: the active one alone, or the primary and the side panes."""
        if self.mode == "panes":
            return (self.primary, *SIDE_PANES)
        return (active,)

    def pane_for_focus(self, focused: Widget | None) -> str | None:
        """The id of the pane holding the focused widget, if one does."""
        node = focused
        while node is not None:
            if isinstance(node, TabPane) and node.id:
                return node.id
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        return None

    def cycle(self, current: str | None, step: int, shown: list[str]) -> str:
        """The pane after (or before) `current`: among the panes on screen in the panes layout,
        among the shown tabs in the tabs layout (`shown`: the tabs not hidden, in order)."""
        if self.mode == "panes":
            order = [p for p in self.visible_panes(self.primary) if p in shown]
        else:
            order = list(shown)
        if not order:
            return "chat"
        if current not in order:
            return order[0]
        return order[(order.index(current) + step) % len(order)]

    def shown_tabs(self) -> list[str]:
        """The ids of the tabs not hidden, in order."""
        try:
            tabs = self._tabs()
        except NoMatches:
            return []
        return [pane_id for pane_id in PANES if self._shown(tabs, pane_id)]

    @staticmethod
    def _shown(tabs: TabbedContent, pane_id: str) -> bool:
        try:
            return not tabs.get_tab(pane_id).has_class("-hidden")
        except (NoMatches, ValueError, Tabs.TabError):
            return False


def focus_target(pane: Widget) -> Widget:
    """What gets the focus when a pane is focused: its first focusable widget, else the pane."""
    for widget in pane.query("*"):
        if widget.focusable:
            return widget
    return pane
