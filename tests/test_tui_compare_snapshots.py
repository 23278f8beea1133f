"""The compare view stays readable at the sizes people use: 4 attempts with long paths at 120×36.

Update after an intended change: `pytest tests/test_tui_compare_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from codex_tui.tui.screens.compare import CompareScreen, columns_in_view
from codex_tui.tui.state import TaskModel
from codex_tui.tui.widgets.diff_model import parse_patch
from codex_tui.tui.widgets.diff_view import DiffView, file_list_prompt
from codex_tui.tui.widgets.short_path import shorten_path
from tests.test_tui_snapshots import Snap, replay_app, settle

SIZE = (120, 36)
LONG_PATHS = (
    "textkit/analysis/readability/reading_time_estimator.py",
    "tests/integration/analysis/test_reading_time_estimator.py",
    "docs/reference/analysis/readability/reading-time.md",
)


def added_file(path: str, lines: list[str]) -> str:
    """A unified diff that adds `path` with `lines`."""
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def attempts() -> tuple[list[TaskModel], dict[str, str]]:
    """Four finished attempts of one prompt, each adding the same long-named files."""
    tasks: list[TaskModel] = []
    patches: dict[str, str] = {}
    for number in range(1, 5):
        task_id = f"t-attempt-{number}"
        lines = [f"WORDS_PER_MINUTE = {200 + 10 * number}", "", "def minutes(words: int) -> float:"]
        lines.append("    return words / WORDS_PER_MINUTE")
        patches[task_id] = "".join(added_file(path, lines) for path in LONG_PATHS)
        tasks.append(
            TaskModel(
                id=task_id,
                title="Estimate the reading time of a document from its word count, for the stats command",
                status="ready",
                attempt=number,
                attempts=4,
                added=len(lines) * len(LONG_PATHS),
            )
        )
    return tasks, patches


def test_shorten_path_keeps_the_file_name_and_drops_the_middle() -> None:
    assert shorten_path(LONG_PATHS[0], 30) == "…/reading_time_estimator.py"
    assert shorten_path(LONG_PATHS[0], 40) == "textkit/…/reading_time_estimator.py"
    assert shorten_path("textkit/analysis/deep/reading.py", 22) == "textkit/…/reading.py"
    assert shorten_path("README.md", 20) == "README.md"
    assert shorten_path("a/very_long_file_name.py", 10) == "…e_name.py"


def test_file_list_entry_fits_the_width_it_is_given() -> None:
    [file, *_] = parse_patch(attempts()[1]["t-attempt-1"]).files
    assert str(file_list_prompt(file, 40)) == "A …/reading_time_estimator.py  +4 −0"
    assert str(file_list_prompt(file, 0)) == f"A {LONG_PATHS[0]}  +4 −0"


def test_four_attempts_at_120_columns_show_three_and_scroll_to_the_fourth() -> None:
    assert columns_in_view(120, 4) == 3
    assert columns_in_view(160, 4) == 4
    assert columns_in_view(30, 4) == 1


def test_snapshot_compare_view_four_attempts_long_paths_120x36(snap_compare: Snap, tmp_path: Path) -> None:
    tasks, patches = attempts()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.app.push_screen(CompareScreen(tasks, patches))
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen))
        views = list(pilot.app.screen.query(DiffView))
        await settle(pilot, lambda: all(view.patch.files for view in views))
        await pilot.pause(0.2)

    assert snap_compare(replay_app(tmp_path), terminal_size=SIZE, run_before=run_before)


async def test_moving_to_the_fourth_attempt_scrolls_it_into_view(tmp_path: Path) -> None:
    tasks, patches = attempts()
    app = replay_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = CompareScreen(tasks, patches)
        await app.push_screen(screen)
        await pilot.pause(0.2)
        assert screen.shown == 3
        columns = screen.query_one("#compare-columns")
        assert columns.scroll_x == 0
        for _ in range(3):
            await pilot.press("right")
        await pilot.pause(0.2)
        assert screen.chosen()["task_id"] == "t-attempt-4"
        assert columns.scroll_x > 0
        fourth = screen.query_one("#col-t-attempt-4")
        assert fourth.region.right <= app.size.width
