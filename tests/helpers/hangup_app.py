"""A Textual app that keeps drawing for a while after SIGHUP, then exits: run in tmux, it shows
whether the terminal driver lets an app finish its stop once the terminal is gone.

Usage: python hangup_app.py MARKER_FILE [stock]   ("stock": Textual's own driver, for comparison)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.widgets import Static

from codex_tui.tui.driver import safe_driver_class

FRAMES_AFTER_HANGUP = 200
"""Far more writes than Textual's output queue holds (30)."""


class DrawsAfterHangup(App[int]):
    def __init__(self, marker: Path, stock: bool) -> None:
        self.marker = marker
        self.stock = stock
        super().__init__()

    def get_driver_class(self) -> type[Driver]:
        chosen = super().get_driver_class()
        return chosen if self.stock else safe_driver_class(chosen)

    def compose(self) -> ComposeResult:
        yield Static("ready", id="frame")

    def on_mount(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.run_worker, self.draw_then_exit())
        self.marker.write_text(f"mounted {os.getpid()}")

    async def draw_then_exit(self) -> None:
        frame = self.query_one("#frame", Static)
        for n in range(FRAMES_AFTER_HANGUP):
            frame.update(f"stopping {n} " + "#" * (n % 50))
            await asyncio.sleep(0.005)
        self.marker.write_text("stopped")
        self.exit(129)


if __name__ == "__main__":
    DrawsAfterHangup(Path(sys.argv[1]), stock=sys.argv[2:] == ["stock"]).run()
