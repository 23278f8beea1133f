"""Cost where people see it: `exec` turn lines, `tasks list` (text and JSON), task cards, status bar."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui import protocol as p
from codex_tui.config import Config
from codex_tui.demo import PRICED_AS, demo_config
from codex_tui.models.base import Usage
from codex_tui.pricing import DEFAULT_PRICES, Price, estimate
from codex_tui.scripted import ScriptedServer
from codex_tui.tui.cost import cost_label, cost_total
from codex_tui.tui.state import AppState, TaskModel
from codex_tui.tui.widgets.status_bar import StatusInfo, status_content
from codex_tui.tui.widgets.task_list import TaskRow, render_row
from tests.test_exec import provider_flags, run_cli
from tests.test_tasks_support import scenario

USAGE = {"input_tokens": 100_000, "cached_input_tokens": 40_000, "output_tokens": 10_000}
PRICED = '[pricing."scripted:priced"]\ninput = 2.0\ncached_input = 0.5\noutput = 8.0\n'
"""60k fresh × $2 + 40k cached × $0.5 + 10k out × $8 per 1M = $0.22."""


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """Answers with a fixed usage, under a priced and an unpriced model name."""
    turn = {"text": "Done.", "usage": USAGE}
    srv = ScriptedServer([scenario("priced", turn, turn), scenario("unpriced", turn)]).start_in_thread()
    yield srv
    srv.stop()


def _exec(server: ScriptedServer, repo: Path, home: Path, model: str) -> str:
    result = run_cli(
        "exec", f"run {model}", "-C", str(repo), *provider_flags(server.base_url, model), home=home
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_exec_and_tasks_list_show_tokens_and_cost(
    server: ScriptedServer, git_repo: Path, isolated_home: Path
) -> None:
    (isolated_home / "config.toml").write_text(PRICED, encoding="utf-8")
    progress = _exec(server, git_repo, isolated_home, "scripted:priced")
    assert "tokens: 100000 in (40000 cached) · 10000 out · ~$0.22" in progress
    progress = _exec(server, git_repo, isolated_home, "scripted:unpriced")
    assert "tokens: 100000 in (40000 cached) · 10000 out\n" in progress

    priced, unpriced = run_cli("tasks", "list", home=isolated_home).stdout.splitlines()
    assert "110.0k   $0.22  " in priced and "run scripted:priced" in priced
    assert "110.0k       ?  " in unpriced and "run scripted:unpriced" in unpriced

    listing = run_cli("tasks", "list", "--json", home=isolated_home)
    assert listing.returncode == 0, listing.stderr
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [r["usage"] for r in rows] == [USAGE, USAGE]
    assert rows[0]["cost_usd"] == pytest.approx(0.22) and rows[0]["priced_as"] == "scripted:priced"
    assert rows[1]["cost_usd"] is None and rows[1]["priced_as"] is None


def test_usage_totals_go_on_when_a_task_is_resumed_by_another_process(
    server: ScriptedServer, git_repo: Path, isolated_home: Path
) -> None:
    (isolated_home / "config.toml").write_text(PRICED, encoding="utf-8")
    _exec(server, git_repo, isolated_home, "scripted:priced")
    [row] = [
        json.loads(line)
        for line in run_cli("tasks", "list", "--json", home=isolated_home).stdout.splitlines()
    ]
    flags = provider_flags(server.base_url, "scripted:priced")
    resumed = run_cli("tasks", "resume", row["id"], "once more", *flags, home=isolated_home)
    assert resumed.returncode == 0, resumed.stderr
    [row] = [
        json.loads(line)
        for line in run_cli("tasks", "list", "--json", home=isolated_home).stdout.splitlines()
    ]
    assert row["usage"] == {key: 2 * value for key, value in USAGE.items()}
    assert row["cost_usd"] == pytest.approx(0.44) and row["tokens"] == 220_000


def test_tasks_list_json_with_no_tasks_prints_nothing(isolated_home: Path) -> None:
    listing = run_cli("tasks", "list", "--json", home=isolated_home)
    assert listing.returncode == 0 and listing.stdout == ""


def test_cached_tokens_reach_the_tui_task_model() -> None:
    state = AppState()
    state.apply(p.Event(p.TASK_CREATED, "t-1", 0, data={"title": "x", "model": "gpt-5"}))
    total = p.usage_dict(1_000_000, 400_000, 100_000)
    task = state.apply(p.Event(p.CONTEXT_UPDATED, "t-1", 1, data={"used_tokens": 1, "total": total}))
    assert task is not None
    assert (task.input_tokens, task.cached_input_tokens, task.output_tokens) == (1_000_000, 400_000, 100_000)
    assert cost_label(task, {}, "gpt-5") == "$1.80"  # 0.6 × 1.25 + 0.4 × 0.125 + 0.1 × 10


def _task(task_id: str, model: str, usage: Usage) -> TaskModel:
    return TaskModel(
        id=task_id,
        model=model,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
    )


def test_task_card_cost_is_blank_before_any_token_and_a_question_mark_without_a_price() -> None:
    assert cost_label(_task("t-1", "gpt-5", Usage()), {}, "gpt-5") == ""
    assert cost_label(_task("t-1", "local-llm", Usage(10, 0, 5)), {}, "gpt-5") == "?"
    assert (
        cost_label(_task("t-1", "", Usage(1_000_000, 0, 0)), {}, "gpt-4.1") == "$2.00"
    )  # the config's model
    prices = {"local-llm": Price(1.0, 1.0, 1.0)}
    assert cost_label(_task("t-1", "local-llm", Usage(1_000_000, 0, 0)), prices, "gpt-5") == "$1.00"


def test_total_of_all_tasks_says_when_some_could_not_be_priced() -> None:
    tasks = [
        _task("t-1", "gpt-5", Usage(1_000_000, 0, 0)),
        _task("t-2", "gpt-4.1", Usage(1_000_000, 0, 0)),
        _task("t-3", "local-llm", Usage(500, 0, 0)),
        _task("t-4", "gpt-5", Usage()),
    ]
    total = cost_total(tasks, {}, "gpt-5")
    assert (total.tokens, total.unpriced) == (2_000_500, 1) and total.usd == pytest.approx(3.25)
    assert total.label() == "2.0M tok · $3.25+?"
    assert cost_total(tasks[:2], {}, "gpt-5").label() == "2.0M tok · $3.25"
    assert cost_total(tasks[2:], {}, "gpt-5").label() == "500 tok · ?"


def test_task_card_shows_the_cost_after_the_tokens() -> None:
    row = TaskRow("t-1", "●", "running", "Fix it", "1m 05s", 12, 3, "4.2k", "", cost="$0.42")
    assert "4.2k tok $0.42" in render_row(row, 60).plain
    without = TaskRow("t-1", "●", "running", "Fix it", "1m 05s", 12, 3, "4.2k", "")
    assert "4.2k tok  running" in render_row(without, 60).plain


def test_status_bar_shows_the_task_cost_and_the_total_of_all_tasks() -> None:
    info = StatusInfo("gpt-5", "auto", 87, 12_300, 2, 1, task_cost="$0.42", total="48.1k tok · $1.20")
    text = status_content(info).plain
    assert "12.3k tokens · $0.42 │ all 48.1k tok · $1.20 │ 2 running" in text


def test_usage_of_two_calls_adds_up() -> None:
    assert Usage(10, 4, 2) + Usage(5, 1, 3) == Usage(15, 5, 5)


def test_demo_tasks_are_priced_like_the_model_they_stand_for(tmp_path: Path) -> None:
    config = demo_config(Config(home=tmp_path), "http://127.0.0.1:9", tmp_path / "home")
    usage = Usage(1_000_000, 0, 0)
    for model in ("scripted", "scripted:fix-median", "scripted:demo-review"):
        cost = estimate(model, usage, config.pricing)
        assert cost is not None and cost.usd == pytest.approx(DEFAULT_PRICES[PRICED_AS].input)


def test_a_narrow_task_list_drops_the_cost_then_the_tokens_so_a_card_keeps_two_lines() -> None:
    row = TaskRow("t-1", "✔", "ready", "Add reading_time()", "8.2 s", 21, 1, "9.6k", "1/2", cost="$0.01")
    assert render_row(row, 60).plain.splitlines()[1] == "  8.2 s  +21 −1  9.6k tok $0.01  1/2  ready"
    assert render_row(row, 42).plain.splitlines()[1] == "  8.2 s  +21 −1  9.6k tok  1/2  ready"
    assert render_row(row, 30).plain.splitlines()[1] == "  8.2 s  +21 −1  1/2  ready"
    assert len(render_row(row, 20).plain.splitlines()) == 2
