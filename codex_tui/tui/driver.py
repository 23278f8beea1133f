"""The terminal driver: Textual's own, made safe for a terminal that hangs up.

When the terminal closes (tmux kills the pane, ssh drops, the window is closed) the app gets
SIGHUP and starts to stop its tasks, but every write to the gone terminal fails with EIO. Textual
writes from a thread fed by a bounded queue: the first failed write ends that thread, and once the
queue fills the app's own loop blocks on it for good, so the tasks are never stopped and the
containers stay. Here the output drops what it cannot write instead, so the stop runs to its end.
"""

from __future__ import annotations

import sys
from typing import IO

from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver


class HangupSafeOutput:
    """A text stream that stops writing, silently, once the terminal behind it is gone."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.gone = False
        """True after a write or flush failed: nothing is written from then on."""

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except (OSError, ValueError):  # EIO after a hangup; ValueError when already closed
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return not self.gone and self._stream.isatty()


class TerminalDriver(LinuxDriver):
    """Textual's Linux driver whose output survives a hangup (see the module's note)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._file = HangupSafeOutput(sys.__stderr__)  # type: ignore[arg-type,assignment]


def safe_driver_class(chosen: type[Driver]) -> type[Driver]:
    """The driver to run with: ours in place of Textual's plain Linux one, any other left alone
    (the headless one of tests, the web one of `textual-serve`, one named by TEXTUAL_DRIVER)."""
    return TerminalDriver if chosen is LinuxDriver else chosen
