"""A command's output on its way to the rollout: its head passes, its tail is held, its middle counted.

200 MB of output makes a rollout of about 128 KiB, and a replay still shows the start and the end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from codex_tui.protocol import OUTPUT_DELTA, Event

OUTPUT_HEAD_BYTES: Final = 64 * 1024
"""Output of one command written to the rollout as it streams."""
OUTPUT_TAIL_BYTES: Final = 64 * 1024
"""Output of one command kept from its end (held in memory until the command completes)."""


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _utf8_head(text: str, limit: int) -> str:
    """The longest prefix of `text` that fits in `limit` UTF-8 bytes."""
    return text.encode("utf-8", errors="surrogatepass")[: max(limit, 0)].decode("utf-8", errors="ignore")


def _utf8_tail(text: str, limit: int) -> str:
    """The longest suffix of `text` that fits in `limit` UTF-8 bytes."""
    data = text.encode("utf-8", errors="surrogatepass")
    return data[max(len(data) - limit, 0) :].decode("utf-8", errors="ignore") if limit > 0 else ""


def omitted_marker(omitted_bytes: int) -> str:
    """The line that stands for the middle of a long output in a rollout."""
    return f"… {omitted_bytes} bytes omitted …\n"


@dataclass(slots=True)
class _Piece:
    """Part of a held output tail: the seq and stream of the delta it came from."""

    seq: int
    stream: str
    text: str
    size: int


class CommandOutput:
    """One command's output on its way to the rollout: the head passes, the tail is held, the middle counted.

    The delta that crosses the head budget is held whole (its head part too), so every seq is
    written once: the tail is written as one delta per run of one stream, each with the seq of
    the last delta in it, prefixed with the omission marker.
    """

    def __init__(self, head_bytes: int = OUTPUT_HEAD_BYTES, tail_bytes: int = OUTPUT_TAIL_BYTES) -> None:
        self.head_room = head_bytes
        self.tail_bytes = tail_bytes
        self.total_bytes = 0
        self.omitted_bytes = 0
        self.head_ends_newline = True
        self._pivot: Event | None = None
        self._pivot_head = ""
        self._tail: deque[_Piece] = deque()
        self._tail_size = 0

    def take(self, event: Event) -> Event | None:
        """The delta to write now (the head), or None when it is held for the tail."""
        text = str(event.data.get("text") or "")
        size = _utf8_len(text)
        self.total_bytes += size
        if self._pivot is None and size <= self.head_room:
            self.head_room -= size
            if text:
                self.head_ends_newline = text.endswith("\n")
            return event
        stream = str(event.data.get("stream") or "stdout")
        if self._pivot is None:
            self._pivot = event
            self._pivot_head = _utf8_head(text, self.head_room)
            text = text[len(self._pivot_head) :]
            size = _utf8_len(text)
        self._hold(_Piece(event.seq, stream, text, size))
        return None

    def _hold(self, piece: _Piece) -> None:
        self._tail.append(piece)
        self._tail_size += piece.size
        while self._tail_size - self._tail[0].size >= self.tail_bytes:
            dropped = self._tail.popleft()
            self._tail_size -= dropped.size
            self.omitted_bytes += dropped.size
        excess = self._tail_size - self.tail_bytes
        if excess > 0:
            first = self._tail[0]
            first.text = _utf8_tail(first.text, first.size - excess)
            kept = _utf8_len(first.text)
            self.omitted_bytes += first.size - kept
            self._tail_size -= first.size - kept
            first.size = kept

    def tail_events(self) -> list[Event]:
        """What is held, as deltas to write after the head: marker and tail (empty when nothing is held)."""
        pivot = self._pivot
        if pivot is None:
            return []
        marker = ""
        if self.omitted_bytes:
            ends_newline = self.head_ends_newline if not self._pivot_head else self._pivot_head.endswith("\n")
            marker = ("" if ends_newline else "\n") + omitted_marker(self.omitted_bytes)
        stream = str(pivot.data.get("stream") or "stdout")
        runs: list[_Piece] = [_Piece(pivot.seq, stream, self._pivot_head + marker, 0)]
        for piece in self._tail:
            last = runs[-1]
            if piece.stream == last.stream:
                last.seq, last.text = piece.seq, last.text + piece.text
            else:
                runs.append(_Piece(piece.seq, piece.stream, piece.text, 0))
        base = {k: v for k, v in pivot.data.items() if k not in ("text", "stream")}
        events = [
            Event(OUTPUT_DELTA, pivot.task_id, r.seq, {**base, "stream": r.stream, "text": r.text}, pivot.ts)
            for r in runs
            if r.text
        ]
        if events and self.omitted_bytes:
            events[-1].data["total_bytes"] = self.total_bytes
            events[-1].data["omitted_bytes"] = self.omitted_bytes
        return events
