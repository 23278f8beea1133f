"""Helpers for the TUI tests: the real app on the real task manager and scripted model server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot

from codex_tui.scripted import ScriptedServer
from codex_tui.tasks.manager import TaskManager
from codex_tui.tui.app import CodexApp
from codex_tui.tui.widgets.composer import Composer
from tests.test_tasks_support import scripted_config

SIZE = (160, 45)


@dataclass(slots=True)
class Harness:
    """A running app and the real parts behind it."""

    app: CodexApp
    pilot: Pilot[int]
    manager: TaskManager
    server: ScriptedServer
    repo: Path
    home: Path

    async def wait(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
        """Let the app run until `condition()` is true (fails the test after `timeout`)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}\n{screen_text(self.app)}")
            await self.pilot.pause(0.05)

    async def type(self, text: str) -> None:
        """Put text into the composer as a user typing it would, then settle."""
        composer = self.app.main_widget(Composer)
        composer.area.focus()
        composer.area.insert(text)
        await self.pilot.pause()

    async def send(self, text: str) -> None:
        """Type text and press Enter."""
        await self.type(text)
        await self.pilot.press("enter")
        await self.pilot.pause()

    def task(self, task_id: str) -> dict[str, Any]:
        """The manager's summary of one task."""
        return next(t for t in self.manager.tasks() if t["id"] == task_id)

    def statuses(self) -> list[str]:
        """The manager's status of every task, oldest first."""
        return [str(t["status"]) for t in self.manager.tasks()]

    async def wait_status(self, task_id: str, *statuses: str, timeout: float = 20.0) -> None:
        """Wait until the manager reports one of `statuses` and the app has caught up."""
        await self.wait(
            lambda: (
                self.task(task_id)["status"] in statuses and self.app.state.tasks[task_id].status in statuses
            ),
            timeout,
            f"task {task_id} to reach {statuses}",
        )

    def text(self) -> str:
        """What the terminal shows now."""
        return screen_text(self.app)


def screen_text(app: CodexApp) -> str:
    """The current screen as plain text (what a user would read in the terminal)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text(styles=False)


@asynccontextmanager
async def running_app(
    repo: Path,
    home: Path,
    scenarios: list[dict[str, Any]],
    *,
    size: tuple[int, int] = SIZE,
    **config: Any,
) -> AsyncIterator[Harness]:
    """The app on a real TaskManager (local sandbox) talking to a scripted model server.

    In the tabs layout unless `layout=` says otherwise (tests of the panes layout say so)."""
    async with ScriptedServer(scenarios) as server:
        settings: dict[str, Any] = {"model": "scripted", "request_max_retries": 0, "layout": "tabs"}
        settings.update(config)
        cfg = scripted_config(home, server.base_url, **settings)
        manager = TaskManager(cfg, repo=repo)
        app = CodexApp(cfg, manager, repo=repo, show_elapsed=False)
        async with app.run_test(size=size, notifications=True) as pilot:
            await asyncio.wait_for(app.source_ready.wait(), 20)
            harness = Harness(app, pilot, manager, server, repo, home)
            yield harness


def only_new_task(harness: Harness, before: set[str]) -> str:
    """The id of the one task created since `before`."""
    new = [t["id"] for t in harness.manager.tasks() if t["id"] not in before]
    assert len(new) == 1, new
    return str(new[0])
