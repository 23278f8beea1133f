"""A SandboxLog with a few finished and running commands, for SVG snapshot tests."""

from __future__ import annotations

from textual.app import App, ComposeResult

from codex_tui.tui.widgets.sandbox_log import SandboxLog


class SandboxLogApp(App[None]):
    """One SandboxLog fed with fixed output."""

    def compose(self) -> ComposeResult:
        yield SandboxLog()

    def on_mount(self) -> None:
        log = self.query_one(SandboxLog)
        log.begin_command("c1", "python -m pytest -q")
        log.append_output("c1", "stdout", "..F.\n")
        log.append_output("c1", "stderr", "FAILED test_calc.py::test_sub - assert 1 == -1\n")
        log.append_output("c1", "stdout", "1 failed, 3 passed in 0.12s\n")
        log.end_command("c1", 1, 1430)
        log.begin_command("c2", "pip install -e .")
        log.append_output("c2", "stderr", "\x1b[32mDownloading\x1b[0m 10%\rDownloading 100%\n")
        log.append_output("c2", "stdout", "Successfully installed calc-0.1\n")
        log.end_command("c2", 0, 8200)
        log.begin_command("c3", "sleep 100")
        log.end_command("c3", 124, 10_000, "timed out")
        log.begin_command("c4", "git status --short")
        log.append_output("c4", "stdout", " M calc.py\n?? notes.md\n")


if __name__ == "__main__":
    SandboxLogApp().run()
