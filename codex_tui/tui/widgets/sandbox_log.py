"""The sandbox log pane: live command output in per-command sections, virtualised.

Producers call `append_output` as often as they like: it only buffers. A timer (30 Hz by default)
flushes the buffer in one go: split into lines (partial lines joined across chunks, `\\r`
progress lines keep their last segment), appended to a bounded deque, one refresh. Rows are
drawn with the Line API from that deque, so a log of 20,000 lines costs what is on screen.

ANSI escape sequences are stripped rather than converted: colours must come from the theme
(a program's red is not the theme's $error), converting every line with `Text.from_ansi` costs
far more than the ingest budget allows, and sandboxed commands mostly write plain text anyway
(their output is not a terminal).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count, islice, repeat
from typing import Any, ClassVar, Literal, NamedTuple, overload

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.binding import BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer

from codex_tui.tui.bindings import LOG_BINDINGS
from codex_tui.tui.copy_text import CopyItem, copy_selection_or
from codex_tui.tui.widgets.highlight import clean_line
from codex_tui.tui.widgets.line_selection import highlight_span, selected_rows, selection_span

Stream = Literal["stdout", "stderr"]
LineKind = Literal[
    "command", "continued", "stdout", "stderr", "exit-ok", "exit-failed", "network-ok", "network-refused"
]

DEFAULT_MAX_LINES = 20_000
DEFAULT_MAX_LINE_LENGTH = 2_000
FLUSH_HZ = 30.0
MAX_PENDING_CHARS = 4_000_000
"""Buffered text beyond which `append_output` flushes at once, so the buffer stays bounded too."""
MAX_SECTIONS = 2_000
"""Commands remembered (for "(continued)" headers); beyond this, the oldest finished are dropped."""
EMPTY_TEXT = "No commands yet"

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_ANSI_TAIL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")


class LogLine(NamedTuple):
    """One row of the log; `no` numbers rows from the first ever written (stable across drops)."""

    kind: LineKind
    text: str
    section: str
    no: int


_Row = tuple[LineKind, str, str, int]
"""How a line is stored: a plain tuple (kind, text, section, no). Plain tuples of strings and ints
are untracked by the garbage collector, so 20,000 kept lines per log do not slow down every
full collection, and `zip` builds them at C speed."""


class LineView(Sequence[LogLine]):
    """A read-only view of a log's stored rows as LogLine values."""

    def __init__(self, rows: deque[_Row]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> LogLine: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[LogLine]: ...
    def __getitem__(self, index: int | slice) -> LogLine | Sequence[LogLine]:
        if isinstance(index, slice):
            return [LogLine(*row) for row in list(self._rows)[index]]
        return LogLine(*self._rows[index])

    def __iter__(self) -> Iterator[LogLine]:
        return (LogLine(*row) for row in self._rows)


@dataclass(slots=True)
class _StreamState:
    """The unfinished line of one stream of one command."""

    line_no: int | None = None
    """`LogLine.no` of the open line, if any."""
    carry: str = ""
    """An escape sequence cut in half at the end of the last chunk."""
    carriage_return: bool = False
    """A `\\r` was seen: the next text replaces the line."""


@dataclass(slots=True)
class _Section:
    """What the log remembers about one command."""

    command: str
    streams: dict[str, _StreamState] = field(default_factory=dict)
    ended: bool = False


def format_duration(duration_ms: int) -> str:
    """`350 ms`, `1.2 s`, `2 m 05 s`."""
    if duration_ms < 1000:
        return f"{duration_ms} ms"
    if duration_ms < 60_000:
        return f"{duration_ms / 1000:.1f} s"
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    return f"{minutes} m {seconds:02d} s"


def footer_text(exit_code: int | None, duration_ms: int | None, note: str = "") -> str:
    """`exit 0 · 1.2 s`, with a note such as `timed out` when there is one."""
    parts = [f"exit {exit_code}" if exit_code is not None else "no exit code"]
    if duration_ms is not None:
        parts.append(format_duration(duration_ms))
    if note:
        parts.append(note)
    return " · ".join(parts)


def header_text(command: str) -> str:
    """`$ <first line of the command>`, noting how many more lines it has."""
    lines = command.strip("\n").split("\n") or [""]
    extra = f"  (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return f"$ {lines[0]}{extra}"


def apply_carriage_returns(text: str, piece: str, carriage_return: bool) -> tuple[str, bool]:
    """Add `piece` to a line the way a terminal shows progress bars: each `\\r` restarts it."""
    segments = piece.split("\r")
    if carriage_return and segments[0]:
        text, carriage_return = "", False
    text += segments[0]
    for segment in segments[1:]:
        carriage_return = True
        if segment:
            text, carriage_return = segment, False
    return text, carriage_return


class SandboxLog(ScrollView, can_focus=True):
    """Live output of a task's sandbox: one section per command, bounded, follow mode."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "sandbox-log--command",
        "sandbox-log--continued",
        "sandbox-log--stderr",
        "sandbox-log--exit-ok",
        "sandbox-log--exit-failed",
        "sandbox-log--network-ok",
        "sandbox-log--network-refused",
        "sandbox-log--empty",
    }
    DEFAULT_CSS = """
    SandboxLog {
        overflow-y: scroll;
        background: $surface;
        color: $foreground;
        & > .sandbox-log--command { background: $boost; color: $text-primary; text-style: bold; }
        & > .sandbox-log--continued { background: $boost; color: $text-muted; text-style: italic; }
        & > .sandbox-log--stderr { color: $text-warning; }
        & > .sandbox-log--exit-ok { color: $text-success; }
        & > .sandbox-log--exit-failed { color: $text-error; text-style: bold; }
        & > .sandbox-log--network-ok { color: $text-secondary; }
        & > .sandbox-log--network-refused { color: $text-error; }
        & > .sandbox-log--empty { color: $text-muted; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = LOG_BINDINGS

    follow: reactive[bool] = reactive(True)
    """Keep the newest output in view; released when the user scrolls up, back at the bottom/End."""

    def __init__(
        self,
        max_lines: int = DEFAULT_MAX_LINES,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        flush_hz: float = FLUSH_HZ,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max(1, max_lines)
        self.max_line_length = max(1, max_line_length)
        self.flush_hz = max(1.0, flush_hz)
        self.flush_count = 0
        """How many flushes moved buffered output into the log (batching is visible here)."""
        self._lines: deque[_Row] = deque(maxlen=self.max_lines)
        self._pending: list[tuple[Any, ...]] = []
        self._pending_chars = 0
        self._sections: dict[str, _Section] = {}
        self._last_section: str | None = None
        self._written = 0
        self._text_width = 0
        self._strips: LRUCache[tuple[_Row, int, int], Strip] = LRUCache(128)
        """Finished rows keyed by (line, scroll x, width): a line rewritten in place misses."""
        self._base_style: RichStyle | None = None
        self._timer: Timer | None = None

    # --- the API the app calls --------------------------------------------------------------

    def begin_command(self, item_id: str, command: str) -> None:
        """Open a section for a command (its header shows after the next flush)."""
        self._pending.append(("begin", item_id, command))
        self._wake()

    def append_output(self, item_id: str, stream: Stream, text: str) -> None:
        """Buffer a chunk of output; cheap enough to call thousands of times a second."""
        if not text:
            return
        self._pending.append(("out", item_id, stream, text))
        self._pending_chars += len(text)
        if self._pending_chars > MAX_PENDING_CHARS:
            self.flush()
        else:
            self._wake()

    def end_command(
        self, item_id: str, exit_code: int | None, duration_ms: int | None, note: str = ""
    ) -> None:
        """Close a command's section with `exit N · duration` (and a note: timed out, OOM…)."""
        self._pending.append(("end", item_id, exit_code, duration_ms, note))
        self._wake()

    def append_network(self, text: str, allowed: bool) -> None:
        """One request the egress proxy judged (`⇄ GET host:443 allowed …`); refused ones in red."""
        self._pending.append(("net", text, allowed))
        self._wake()

    def clear(self) -> None:
        """Forget every line, section and buffered chunk."""
        self._pending.clear()
        self._pending_chars = 0
        self._lines.clear()
        self._sections.clear()
        self._last_section = None
        self._text_width = 0
        self._strips.clear()
        self.virtual_size = Size(0, 0)
        self.follow = True
        self.refresh()

    @property
    def lines(self) -> Sequence[LogLine]:
        """The rows currently kept (oldest first); read-only."""
        return LineView(self._lines)

    @property
    def line_count(self) -> int:
        """How many rows are kept."""
        return len(self._lines)

    @property
    def pending_chunks(self) -> int:
        """Buffered operations waiting for the next flush."""
        return len(self._pending)

    # --- flushing ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Start the flush timer (paused while there is nothing to flush)."""
        self._timer = self.set_interval(1 / self.flush_hz, self._tick, pause=not self._pending)

    def _wake(self) -> None:
        if self._timer is not None and len(self._pending) == 1:
            self._timer.resume()

    def _tick(self) -> None:
        self.flush()
        if not self._pending and self._timer is not None:
            self._timer.pause()

    def flush(self) -> None:
        """Move buffered output into the log now: one pass, one refresh, one scroll."""
        if not self._pending:
            return
        operations, self._pending, self._pending_chars = self._pending, [], 0
        written_before, kept_before = self._written, len(self._lines)
        for operation in operations:
            if operation[0] == "out":
                self._output(*operation[1:])
            elif operation[0] == "begin":
                self._begin(*operation[1:])
            elif operation[0] == "net":
                self._add("network-ok" if operation[2] else "network-refused", operation[1], "")
            else:
                self._end(*operation[1:])
        self.flush_count += 1
        dropped = (self._written - written_before) - (len(self._lines) - kept_before)
        self.virtual_size = Size(self._text_width, len(self._lines))
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        elif dropped:
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True, force=True)
        self.refresh()

    def _add(self, kind: LineKind, text: str, section: str) -> int:
        """Append one row; returns its number."""
        if len(text) > self.max_line_length:
            text = text[: self.max_line_length] + "…"
        number = self._written
        self._lines.append((kind, text, section, number))
        self._written += 1
        self._text_width = max(self._text_width, len(text))
        self._last_section = section
        return number

    def _index_of(self, number: int | None) -> int | None:
        """Where row `number` sits in the store, or None once it has been dropped."""
        if number is None:
            return None
        index = number - (self._written - len(self._lines))
        return index if 0 <= index < len(self._lines) else None

    def _begin(self, item_id: str, command: str) -> None:
        self._sections[item_id] = _Section(command)
        self._add("command", header_text(command), item_id)

    def _open_section(self, item_id: str) -> _Section:
        """The live section of a command, opened (with a header) if output came without `begin`."""
        section = self._sections.get(item_id)
        if section is None or section.ended:
            command = section.command if section else ""
            section = self._sections[item_id] = _Section(command)
            self._add("continued", f"{header_text(command or '…')}  (output)", item_id)
        return section

    def _ensure_header(self, item_id: str) -> None:
        """Repeat a command's header when its lines resume after another command's."""
        if self._last_section != item_id:
            section = self._sections.get(item_id)
            command = section.command if section else "…"
            self._add("continued", f"{header_text(command)}  (continued)", item_id)

    def _end(self, item_id: str, exit_code: int | None, duration_ms: int | None, note: str) -> None:
        section = self._sections.get(item_id)
        if section is not None:
            section.streams.clear()
            section.ended = True
            self._ensure_header(item_id)
        kind: LineKind = "exit-ok" if exit_code == 0 else "exit-failed"
        self._add(kind, footer_text(exit_code, duration_ms, note), item_id)
        self._forget_old_sections()

    def _forget_old_sections(self) -> None:
        """Keep the per-command bookkeeping bounded too (finished commands are forgotten first)."""
        if len(self._sections) <= MAX_SECTIONS:
            return
        ended = [key for key, value in self._sections.items() if value.ended]
        for item_id in ended[: len(self._sections) // 2]:
            del self._sections[item_id]

    def _output(self, item_id: str, stream: Stream, text: str) -> None:
        state = self._open_section(item_id).streams.setdefault(stream, _StreamState())
        if state.carry:
            text, state.carry = state.carry + text, ""
        if "\x1b" in text:
            tail = _ANSI_TAIL.search(text)
            if tail is not None:
                text, state.carry = text[: tail.start()], text[tail.start() :]
            text = _ANSI.sub("", text)
        if not text:
            return
        pieces = text.split("\n")
        last = len(pieces) - 1
        self._continue_line(state, item_id, stream, pieces[0], closes=last > 0)
        if last > 1:
            self._complete_lines(pieces[1:last], item_id, stream, "\r" in text)
        if last > 0 and pieces[last]:
            self._continue_line(state, item_id, stream, pieces[last], closes=False)

    def _continue_line(
        self, state: _StreamState, item_id: str, stream: Stream, piece: str, closes: bool
    ) -> None:
        """Add to the stream's open line (or start one); `closes` when a newline followed."""
        index = self._index_of(state.line_no)
        number = state.line_no
        if index is None:
            if not piece and not closes:
                return
            text, state.carriage_return = apply_carriage_returns("", piece, False)
            self._ensure_header(item_id)
            number = self._add(stream, text, item_id)
        elif piece:
            kind, old_text, section, row_no = self._lines[index]
            if len(old_text) <= self.max_line_length:
                text, state.carriage_return = apply_carriage_returns(old_text, piece, state.carriage_return)
                if len(text) > self.max_line_length:
                    text = text[: self.max_line_length] + "…"
                self._lines[index] = (kind, text, section, row_no)
                self._text_width = max(self._text_width, len(text))
        if closes:
            state.line_no, state.carriage_return = None, False
        else:
            state.line_no = number

    def _complete_lines(self, pieces: list[str], item_id: str, stream: Stream, returns: bool) -> None:
        """Append whole lines in bulk (only the newest `max_lines` can survive)."""
        if len(pieces) > self.max_lines:
            self._written += len(pieces) - self.max_lines
            pieces = pieces[-self.max_lines :]
        if returns:
            pieces = [apply_carriage_returns("", piece, False)[0] for piece in pieces]
        cap = self.max_line_length
        longest = max(map(len, pieces))
        if longest > cap:
            pieces = [piece if len(piece) <= cap else piece[:cap] + "…" for piece in pieces]
        self._ensure_header(item_id)
        start = self._written
        self._lines.extend(zip(repeat(stream), pieces, repeat(item_id), count(start)))
        self._written += len(pieces)
        self._text_width = max(self._text_width, min(longest, cap + 1))
        self._last_section = item_id

    # --- follow mode ------------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        """Jump to the newest line when following is switched on."""
        if follow and self.is_mounted and not self.is_vertical_scroll_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Scrolling up releases follow mode; reaching the bottom re-engages it."""
        super().watch_scroll_y(old_value, new_value)
        at_bottom = new_value >= self.max_scroll_y
        if new_value < old_value and not at_bottom:
            self.follow = False
        elif new_value > old_value and at_bottom:
            self.follow = True

    def action_follow(self) -> None:
        """Scroll to the end and follow new output."""
        self.follow = True
        self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    # --- rendering --------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """Restyle every row when CSS or the theme changes."""
        super().notify_style_update()
        self._strips.clear()
        self._base_style = None

    @property
    def _base(self) -> RichStyle:
        """The widget's own style (cached: computing it walks the DOM)."""
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    def render_line(self, y: int) -> Strip:
        """Draw one row of the viewport."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        lines = self._lines
        if index >= len(lines):
            if not lines and y == 0:
                style = self.get_component_rich_style("sandbox-log--empty")
                return Strip([Segment(EMPTY_TEXT, style)]).crop_extend(0, width, self._base)
            return Strip.blank(width, self._base)
        line = lines[index]
        span = selection_span(self.text_selection, line[3])
        if span is not None:
            return self._line_strip(line, scroll_x, width, span)
        key = (line, scroll_x, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line_strip(line, scroll_x, width)
        return strip

    def _line_strip(
        self, line: _Row, scroll_x: int, width: int, selected: tuple[int, int] | None = None
    ) -> Strip:
        """One row, cropped to the view, tagged with its row number for mouse selection."""
        kind = line[0]
        base = self._base
        if kind == "stdout":
            style = fill = base
        else:
            style = self.get_component_rich_style(f"sandbox-log--{kind}")
            fill = style if kind in ("command", "continued") else base
        strip = Strip([Segment(clean_line(line[1]), style)])
        if selected is not None:
            strip = highlight_span(strip, selected, self.screen.get_component_rich_style("screen--selection"))
        return strip.crop_extend(scroll_x, scroll_x + width, fill).apply_offsets(scroll_x, line[3])

    # --- copying ----------------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text (rows are numbered as `LogLine.no`, so dropped lines do not shift it)."""
        first = self._written - len(self._lines)
        text = selected_rows(selection, first, self._written, self._row_text)
        return text, "\n"

    def _row_text(self, number: int) -> str:
        return clean_line(self._lines[number - (self._written - len(self._lines))][1])

    def copy_item(self) -> CopyItem | None:
        """The lines in view, as shown."""
        top = self.scroll_offset.y
        height = max(1, self.scrollable_content_region.height)
        shown = [clean_line(row[1]) for row in islice(self._lines, top, top + height)]
        if not shown:
            return None
        return CopyItem("\n".join(shown), "the log's visible lines")

    def action_copy(self) -> None:
        """Copy the selection, or else the lines in view."""
        copy_selection_or(self)
