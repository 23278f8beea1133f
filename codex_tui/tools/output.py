"""Command output for the model and the UI: head+tail truncation with bounded memory, delta batching.

The model sees at most ``max_bytes`` / ``max_lines`` of a command's output: the first and last lines
with an ``[... omitted N of M lines ...]`` marker between them, as Codex does. A running command's
output is kept in a :class:`HeadTailBuffer` (the first and the last few KiB, never the whole stream)
and streamed to the UI through an :class:`OutputBatcher` that emits at most one event per stream
every ~50 ms or per 16 KiB, never one per line.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Callable
from typing import Final

from codex_tui.sandbox.base import Stream

MODEL_MAX_BYTES: Final = 10 * 1024
MODEL_MAX_LINES: Final = 256
BATCH_INTERVAL_S: Final = 0.05
BATCH_MAX_BYTES: Final = 16 * 1024


def decode_output(data: bytes) -> str:
    """Decode command output: invalid UTF-8 becomes U+FFFD and NUL bytes are dropped."""
    return data.decode("utf-8", errors="replace").replace("\x00", "")


def count_lines(text: str) -> int:
    """Lines as an editor counts them: a last line without a newline still counts."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def truncate_head_tail(text: str, max_bytes: int = MODEL_MAX_BYTES, max_lines: int = MODEL_MAX_LINES) -> str:
    """Keep the first and last lines of `text` within the budgets, with an omission marker between."""
    total_lines = count_lines(text)
    total_bytes = _utf8_len(text)
    if total_bytes <= max_bytes and total_lines <= max_lines:
        return text
    return _join_head_tail(text, text, total_lines, total_bytes, max_bytes, max_lines)


def _join_head_tail(
    head_src: str, tail_src: str, total_lines: int, total_bytes: int, max_bytes: int, max_lines: int
) -> str:
    head_take = max_lines // 2
    tail_take = max_lines - head_take
    head = _take_bytes("".join(_segments(head_src)[:head_take]), max_bytes // 2)
    shown_head = head.count("\n")
    room_lines = min(tail_take, max(total_lines - shown_head, 0))
    tail_segments = _segments(tail_src)[-room_lines:] if room_lines else []
    widest = max(_marker(total_lines, total_lines, 0), _marker(0, 0, total_bytes), key=_utf8_len)
    budget = max(max_bytes - _utf8_len(head) - _utf8_len(widest), 0)
    tail = _take_last_bytes("".join(tail_segments), budget)
    omitted_lines = max(total_lines - shown_head - count_lines(tail), 0)
    omitted_bytes = max(total_bytes - _utf8_len(head) - _utf8_len(tail), 0)
    return head + _marker(omitted_lines, total_lines, omitted_bytes) + tail


def _marker(omitted_lines: int, total_lines: int, omitted_bytes: int) -> str:
    if omitted_lines:
        return f"\n[... omitted {omitted_lines} of {total_lines} lines ...]\n\n"
    return f"\n[... omitted {omitted_bytes} bytes ...]\n\n"


def _segments(text: str) -> list[str]:
    """Split after each newline (only \\n: other line breaks are content), keeping the newlines."""
    parts = text.split("\n")
    segments = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        segments.append(parts[-1])
    return segments


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _take_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding fits in `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _take_last_bytes(text: str, limit: int) -> str:
    """The longest suffix of `text` whose UTF-8 encoding fits in `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[len(data) - limit :].decode("utf-8", errors="ignore") if limit else ""


class HeadTailBuffer:
    """Collects a command's output keeping only its first and last `keep_bytes` (memory stays bounded)."""

    def __init__(self, keep_bytes: int = MODEL_MAX_BYTES) -> None:
        self.keep_bytes = max(keep_bytes, 1)
        self._head = bytearray()
        self._tail = bytearray()
        self.total_bytes = 0
        self._newlines = 0
        self._ends_with_newline = True

    def feed(self, data: bytes) -> None:
        """Add a chunk of raw output."""
        if not data:
            return
        self.total_bytes += len(data)
        self._newlines += data.count(b"\n")
        self._ends_with_newline = data.endswith(b"\n")
        room = self.keep_bytes - len(self._head)
        if room > 0:
            self._head += data[:room]
        self._tail += data[-self.keep_bytes :]
        if len(self._tail) > 2 * self.keep_bytes:
            del self._tail[: len(self._tail) - self.keep_bytes]

    @property
    def total_lines(self) -> int:
        """How many lines the whole output had (a last line without a newline counts)."""
        if self.total_bytes == 0:
            return 0
        return self._newlines + (0 if self._ends_with_newline else 1)

    @property
    def complete(self) -> bool:
        """True while the buffer still holds every byte of the output."""
        return self.total_bytes <= self.keep_bytes

    def render(self, max_bytes: int = MODEL_MAX_BYTES, max_lines: int = MODEL_MAX_LINES) -> str:
        """The output as text, head+tail truncated to the budgets."""
        if self.complete:
            return truncate_head_tail(decode_output(bytes(self._head)), max_bytes, max_lines)
        tail = bytes(self._tail[-self.keep_bytes :])
        tail = _skip_continuation_bytes(tail)
        return _join_head_tail(
            decode_output(bytes(self._head)),
            decode_output(tail),
            self.total_lines,
            self.total_bytes,
            max_bytes,
            max_lines,
        )


def _skip_continuation_bytes(data: bytes) -> bytes:
    """Drop UTF-8 continuation bytes at the start of a tail cut mid-character."""
    start = 0
    while start < min(len(data), 3) and 0x80 <= data[start] <= 0xBF:
        start += 1
    return data[start:]


DeltaSink = Callable[[Stream, str], None]
"""Receives one batched, decoded piece of output for one stream."""


class OutputBatcher:
    """Buffers output chunks and hands them on in batches: every `interval_s` or `max_bytes`, per stream.

    Call :meth:`feed` from the event loop with each raw chunk and :meth:`close` when the command ends.
    Decoding is incremental, so a character split across two chunks is never garbled.
    """

    def __init__(
        self,
        sink: DeltaSink,
        *,
        interval_s: float = BATCH_INTERVAL_S,
        max_bytes: int = BATCH_MAX_BYTES,
    ) -> None:
        self._sink = sink
        self._interval_s = interval_s
        self._max_bytes = max_bytes
        self._pending: dict[Stream, list[str]] = {"stdout": [], "stderr": []}
        self._pending_bytes = 0
        self._decoders: dict[Stream, codecs.IncrementalDecoder] = {
            "stdout": codecs.getincrementaldecoder("utf-8")(errors="replace"),
            "stderr": codecs.getincrementaldecoder("utf-8")(errors="replace"),
        }
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def feed(self, stream: Stream, data: bytes) -> None:
        """Take one raw chunk; flushes at once when the batch is full, else schedules a flush."""
        if self._closed:
            return
        text = self._decoders[stream].decode(data).replace("\x00", "")
        if not text:
            return
        self._pending[stream].append(text)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval_s, self.flush)

    def flush(self) -> None:
        """Hand on everything pending now (one call per stream that has output)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for stream, parts in self._pending.items():
            if parts:
                text = "".join(parts)
                parts.clear()
                self._sink(stream, text)
        self._pending_bytes = 0

    def close(self) -> None:
        """Flush what is left (a character cut off at the very end too); later chunks are dropped."""
        if self._closed:
            return
        self._closed = True
        for stream, decoder in self._decoders.items():
            rest = decoder.decode(b"", final=True).replace("\x00", "")
            if rest:
                self._pending[stream].append(rest)
        self.flush()


def format_exec_output(
    exit_code: int,
    duration_s: float,
    output: str,
    *,
    total_lines: int | None = None,
    notes: list[str] | None = None,
) -> str:
    """What the model reads after a command, in Codex's shape (Exit code / Wall time / Output)."""
    lines = [f"Exit code: {exit_code}", f"Wall time: {duration_s:.1f} seconds"]
    if total_lines is not None and total_lines != count_lines(output):
        lines.append(f"Total output lines: {total_lines}")
    body = "".join(f"{note}\n" for note in notes or []) + output
    lines.append("Output:")
    lines.append(body)
    return "\n".join(lines)
