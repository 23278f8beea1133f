"""Drive the real app on the demo (headless) and write SVG + PNG screenshots into screenshots/.

    python scripts/screenshots.py [--out screenshots] [--size 160x45] [--sandbox-backend auto|docker|local]
    python scripts/screenshots.py --record-session tests/data/demo_session.json

Shots: three tasks running (the panes layout), mission control and its attention inbox, the
approval dialog, the panes of a finished task, the diff, then in the tabs layout the chat, the
sandbox log and the to-do list,
the compare view of two attempts, the main view in two more themes, then (scripted reviewer and
Ask answer of the demo) the Review pane, the compare view with verdicts, an Ask answer and the
read-only file viewer at a cited line; last, on a replay whose task kept the chat screenshot as an
artifact, the Artifacts pane, its preview and the composer with an attached image (pictures drawn
with half-blocks, which an SVG can hold; `--artifacts-only` takes just these). PNGs need rsvg-convert.

--record-session runs the demo through the task manager alone (approvals granted) and saves its
events and final patches, with ids, times and temporary paths made stable: the snapshot tests
replay that file so their screens never depend on timing or on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from codex_tui.config import Config  # noqa: E402
from codex_tui.demo import prepare_demo  # noqa: E402
from codex_tui.protocol import (  # noqa: E402
    APPROVAL_REQUESTED,
    ITEM_ARTIFACT,
    ITEM_COMPLETED,
    OP_APPROVE,
    OP_GET_DIFF,
    OP_SUBMIT,
    TASK_CREATED,
    TASK_STATUS,
    TERMINAL_STATUSES,
    Event,
    Op,
)
from codex_tui.tasks.manager import TaskManager  # noqa: E402
from codex_tui.tui.app import CodexApp  # noqa: E402
from codex_tui.tui.images import RENDERER_ENV  # noqa: E402
from codex_tui.tui.screens.approval import ApprovalScreen  # noqa: E402
from codex_tui.tui.screens.compare import CompareScreen  # noqa: E402
from codex_tui.tui.screens.file_viewer import FileViewerScreen  # noqa: E402
from codex_tui.tui.screens.mission import MissionScreen  # noqa: E402
from codex_tui.tui.screens.preview import PreviewScreen  # noqa: E402
from codex_tui.tui.source import RolloutReplay  # noqa: E402
from codex_tui.tui.widgets.artifact_list import ArtifactList  # noqa: E402
from codex_tui.tui.widgets.composer import Composer  # noqa: E402
from codex_tui.tui.widgets.file_viewer import FileView  # noqa: E402
from codex_tui.tui.widgets.review_pane import ReviewPane  # noqa: E402


class Shooter:
    """Saves the current screen as SVG (and PNG when rsvg-convert is installed)."""

    def __init__(self, app: CodexApp, out: Path) -> None:
        self.app = app
        self.out = out
        self.rsvg = shutil.which("rsvg-convert")
        self.written: list[Path] = []

    def shoot(self, name: str) -> None:
        """Write `<name>.svg` and `<name>.png`."""
        svg = self.out / f"{name}.svg"
        self.app.save_screenshot(svg.name, str(self.out))
        self.written.append(svg)
        if self.rsvg:
            png = svg.with_suffix(".png")
            # rsvg-convert drops the leading spaces of a text run (indentation) unless told to keep it.
            text = svg.read_text(encoding="utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
            subprocess.run([self.rsvg, "-o", str(png)], input=text.encode(), check=True)
            self.written.append(png)


async def wait_for(pilot: Pilot[int], condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Let the app run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def run(out: Path, size: tuple[int, int], backend: str = "auto") -> list[Path]:
    """Run the demo and take every screenshot (Docker sandboxes when the engine answers, as the demo)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="codex-tui-shots-"))
    demo = prepare_demo(Config(home=work / "home"), root=work / "demo")
    try:
        manager = TaskManager(demo.config, repo=demo.repo, sandbox_backend=backend)
        ops = [Op(OP_SUBMIT, "", dict(data)) for data in demo.submissions]
        app = CodexApp(demo.config, manager, repo=demo.repo, initial_ops=ops, state_home=work / "home")
        shots = Shooter(app, out)
        async with app.run_test(size=size) as pilot:
            await take_all(app, pilot, shots)
        return shots.written
    finally:
        demo.close()
        shutil.rmtree(work, ignore_errors=True)


async def take_all(app: CodexApp, pilot: Pilot[int], shots: Shooter) -> None:
    """The scripted walk through the demo."""
    state = app.state
    await wait_for(
        pilot, lambda: sum(t.active for t in state.visible_tasks()) >= 3, 30, "three running tasks"
    )
    await wait_for(
        pilot,
        lambda: (
            any(t.todos for t in state.visible_tasks()) and bool(state.tasks[app.selected_id or ""].commands)
        ),
        30,
        "plans and commands",
    )
    await pilot.pause(0.3)
    shots.shoot("main-running")  # the panes layout: chat | to-do over the live log

    await wait_for(
        pilot, lambda: any(t.approvals for t in state.visible_tasks()), 60, "a task waiting for approval"
    )
    await pilot.press("f11")
    await wait_for(pilot, lambda: isinstance(app.screen, MissionScreen), 20, "mission control")
    await pilot.pause(0.5)
    shots.shoot("mission")
    await pilot.press("i")
    await pilot.pause(0.3)
    shots.shoot("attention-inbox")
    await pilot.press("escape")
    await pilot.press("ctrl+f")  # jump to the task that waits: its approval opens
    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), 20, "the approval dialog")
    await pilot.pause(0.3)
    shots.shoot("approval")
    await pilot.press("y")

    tasks = state.visible_tasks()
    await wait_for(
        pilot, lambda: all(t.status == "ready" for t in state.visible_tasks()), 90, "all tasks ready"
    )
    first = tasks[0]
    app.goto_task(first.id)
    await pilot.pause(0.3)
    shots.shoot("panes")
    await pilot.press("f4")
    await wait_for(pilot, lambda: app.shown_diff == (first.id, first.diff_rev), 20, "the diff")
    await pilot.pause(0.5)
    shots.shoot("diff")
    await pilot.press("f12", "f12")  # auto → panes → tabs: one pane at a time for the next shots
    await pilot.press("f2")
    await pilot.pause(0.3)
    shots.shoot("chat")
    await pilot.press("f5")
    await pilot.pause(0.5)
    shots.shoot("log")
    await pilot.press("f3")
    await pilot.pause(0.3)
    shots.shoot("todo")
    await pilot.press("f12")  # tabs → auto again

    attempt = next(t for t in tasks if t.attempts > 1)
    app.goto_task(attempt.id)
    await pilot.press("f4")
    await pilot.pause(0.3)
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 20, "the compare view")
    await pilot.pause(1.0)
    shots.shoot("compare")
    await pilot.press("escape")

    await pilot.press("f2")
    for theme in ("codex-light", "ember"):
        app.theme = theme
        await pilot.pause(0.5)
        shots.shoot(f"main-{theme}")
    app.theme = "codex-dark"
    await review_shots(app, pilot, shots, attempt.id)
    await ask_shots(app, pilot, shots)


async def review_shots(app: CodexApp, pilot: Pilot[int], shots: Shooter, attempt_id: str) -> None:
    """Review both attempts from the compare view, then show a review and the verdicts."""
    state = app.state
    app.goto_task(attempt_id)
    await pilot.pause(0.3)
    await pilot.press("f7")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 20, "the compare view")
    before = set(state.tasks)
    await pilot.press("v")

    def reviews() -> list[Any]:
        return [t for t in state.visible_tasks() if t.id not in before and t.kind == "review"]

    await wait_for(pilot, lambda: len(reviews()) >= 2, 30, "the review tasks")
    await wait_for(pilot, lambda: all(t.review is not None for t in reviews()), 120, "the reviews")
    await pilot.pause(1.0)
    shots.shoot("compare-reviews")
    await pilot.press("escape")
    app.goto_task(reviews()[0].id)
    await pilot.pause(0.3)
    await pilot.press("f8")
    pane = app.main_widget(ReviewPane)
    await wait_for(pilot, lambda: pane.review is not None, 20, "the Review pane")
    pane.findings_list.focus()
    await pilot.pause(0.5)
    shots.shoot("review")


async def ask_shots(app: CodexApp, pilot: Pilot[int], shots: Shooter) -> None:
    """Ask a question, then open the file it cites."""
    state = app.state
    before = set(state.tasks)
    app.action_new_task()
    app.review_ui.set_kind("ask")
    composer = app.main_widget(Composer)
    composer.area.insert("Where are words counted, and what counts as a word?")
    await pilot.press("enter")
    await wait_for(pilot, lambda: bool(set(state.tasks) - before), 20, "the Ask task")
    (task_id,) = set(state.tasks) - before
    await wait_for(pilot, lambda: state.tasks[task_id].status == "ready", 60, "the answer")
    app.goto_task(task_id)
    await pilot.press("f2")
    await pilot.pause(1.0)
    shots.shoot("ask")
    app.action_open_citation("cite:textkit/stats.py:13-15")
    await wait_for(pilot, lambda: isinstance(app.screen, FileViewerScreen), 20, "the file viewer")
    view = app.screen.query_one(FileView)
    await wait_for(pilot, lambda: bool(view.spans), 20, "the highlighted file")
    await pilot.pause(0.3)
    shots.shoot("file-viewer")
    await pilot.press("escape")


async def record_session(path: Path) -> None:
    """Run the demo headless, approve what it asks, and save a stable replay of its events."""
    work = Path(tempfile.mkdtemp(prefix="codex-tui-session-"))
    demo = prepare_demo(Config(home=work / "home"), root=work / "demo")
    events: list[Event] = []
    try:
        manager = TaskManager(demo.config, repo=demo.repo, sandbox_backend="local")
        await manager.start()

        def collect(event: Event) -> None:
            events.append(event)
            if event.type == APPROVAL_REQUESTED:
                data = {"request_id": event.data["request_id"], "decision": "approve"}
                asyncio.get_running_loop().create_task(manager.submit(Op(OP_APPROVE, event.task_id, data)))

        manager.subscribe(collect, replay=False)
        ids: list[str] = []
        for data in demo.submissions:
            result = await manager.submit(Op(OP_SUBMIT, "", dict(data)))
            ids += result.data.get("task_ids", [])
        for task_id in ids:
            await manager.wait_for(task_id, TERMINAL_STATUSES, timeout=120)
        patches = {t: str((await manager.submit(Op(OP_GET_DIFF, t))).data.get("patch", "")) for t in ids}
        await manager.close()
        session = stable_session(events, patches, str(demo.root))
    finally:
        demo.close()
        shutil.rmtree(work, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def stable_session(events: list[Event], patches: dict[str, str], root: str) -> dict[str, Any]:
    """Events and patches with task/group/request ids numbered, times fixed, temp paths hidden."""
    names: dict[str, str] = {}

    def rename(value: str, prefix: str) -> str:
        if value not in names:
            count = sum(1 for v in names.values() if v.startswith(prefix)) + 1
            names[value] = f"{prefix}-{count}"
        return names[value]

    for event in events:
        rename(event.task_id, "task")
        if isinstance(event.data.get("group_id"), str):
            rename(event.data["group_id"], "group")
        if isinstance(event.data.get("request_id"), str):
            rename(event.data["request_id"], "req")

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
                value = value.replace(old, new)
            return value.replace(root, "/tmp/codex-tui-demo")
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    out = [
        {
            "type": e.type,
            "task_id": names[e.task_id],
            "seq": e.seq,
            "data": clean(e.data),
            "ts": 1_750_000_000 + i / 20,
        }
        for i, e in enumerate(events)
    ]
    return {"events": out, "patches": {names[k]: clean(v) for k, v in patches.items()}}


def artifact_events(shot: Path, report: Path) -> list[Event]:
    """A finished task that kept a screenshot and a test report as artifacts."""

    def item(seq: int, path: Path, mime: str, caption: str) -> Event:
        data: dict[str, Any] = {
            "id": f"a-{seq}",
            "type": ITEM_ARTIFACT,
            "name": path.name,
            "caption": caption,
        }
        data |= {"mime_type": mime, "size": path.stat().st_size, "sha256": "", "path": str(path)}
        return Event(ITEM_COMPLETED, "t-1", seq, {"item": data | {"source": f"out/{path.name}"}}, 1.0 + seq)

    prompt = "Fix the word counter and attach a screenshot of the app"
    return [
        Event(TASK_CREATED, "t-1", 0, {"title": "Screenshot the app", "prompt": prompt}, 1.0),
        Event(TASK_STATUS, "t-1", 1, {"status": "running"}, 1.1),
        item(2, shot, "image/png", "The chat pane after the fix"),
        item(3, report, "text/plain", "pytest output"),
        Event(TASK_STATUS, "t-1", 4, {"status": "ready"}, 5.0),
    ]


async def artifact_shots(out: Path, size: tuple[int, int]) -> list[Path]:
    """The Artifacts pane, a picture preview and the composer with an attached image (on a replay)."""
    picture = out / "chat.png"
    if not picture.is_file():
        raise SystemExit(f"{picture} is missing: take the demo shots first (it is the artifact shown)")
    os.environ[RENDERER_ENV] = "halfcell"
    work = Path(tempfile.mkdtemp(prefix="codex-tui-shots-"))
    try:
        report = work / "report.txt"
        report.write_text("============ 12 passed in 0.41s ============\n", encoding="utf-8")
        config = Config(home=work / "home")
        app = CodexApp(config, RolloutReplay(artifact_events(picture, report)), repo=work, show_elapsed=False)
        shots = Shooter(app, out)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.selected_id == "t-1" and not app._inbox, 20, "the task")
            await pilot.press("f10")
            listing = app.main_widget(ArtifactList)
            await wait_for(pilot, lambda: bool(listing.artifacts), 20, "the Artifacts pane")
            listing.focus()
            await pilot.pause(0.3)
            shots.shoot("artifacts")
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, PreviewScreen) and app.screen.preview is not None,
                20,
                "the preview",
            )
            await pilot.pause(0.5)
            shots.shoot("artifact-preview")
            await pilot.press("escape")
            composer = app.main_widget(Composer)
            app.action_new_task()
            composer.attach(picture)
            composer.area.insert("Make the status bar look like this")
            await wait_for(pilot, lambda: bool(composer.previews_shown), 20, "the attachment preview")
            await pilot.pause(0.3)
            shots.shoot("composer-image")
        return shots.written
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="160x45", help="terminal size, COLSxROWS")
    parser.add_argument("--record-session", type=Path, help="save a stable replay of the demo here")
    parser.add_argument("--artifacts-only", action="store_true", help="only the artifact and image shots")
    parser.add_argument(
        "--sandbox-backend", default="auto", choices=("auto", "docker", "local"), help="for the live shots"
    )
    args = parser.parse_args(argv)
    if args.record_session:
        asyncio.run(record_session(args.record_session))
        print(args.record_session)
        return 0
    cols, _, rows = args.size.partition("x")
    size = (int(cols), int(rows))
    written = [] if args.artifacts_only else asyncio.run(run(args.out, size, args.sandbox_backend))
    written += asyncio.run(artifact_shots(args.out, size))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
