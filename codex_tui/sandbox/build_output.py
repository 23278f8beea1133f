"""Streaming build output from worker threads to the event loop, keeping a tail for error messages."""

from __future__ import annotations

import asyncio
import collections

from codex_tui.sandbox.base import OutputCallback, Stream
from codex_tui.sandbox.environment import SecretMasker

LOG_TAIL_LINES = 30


class BuildOutput:
    """Hands output produced in worker threads to `on_output` on the event loop, line by line."""

    def __init__(
        self,
        on_output: OutputCallback | None,
        tail_lines: int = LOG_TAIL_LINES,
        masker: SecretMasker | None = None,
    ) -> None:
        self._on_output = on_output
        self._loop = asyncio.get_running_loop()
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.masker = masker
        """Secrets of the setup run: masked before anything is kept or forwarded."""

    def __call__(self, stream: Stream, data: bytes) -> None:
        """Thread-safe: mask secrets, remember the tail and forward the chunk to the loop."""
        if self.masker is not None:
            data = self.masker.feed(stream, data)
        self._forward(stream, data)

    def flush(self) -> None:
        """Release what the masker held back (the output ended)."""
        if self.masker is not None:
            for stream in ("stdout", "stderr"):
                self._forward(stream, self.masker.flush(stream))  # type: ignore[arg-type]

    def _forward(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        text = data.decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.tail.append(line.rstrip())
        if self._on_output is not None:
            self._loop.call_soon_threadsafe(self._on_output, stream, data)

    def tail_text(self) -> str:
        """The last lines seen, for error messages."""
        return "\n".join(self.tail)
