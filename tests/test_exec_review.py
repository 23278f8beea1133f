"""`codex-tui exec review` and `codex-tui review` as a CI job runs them: a real subprocess, the
scripted model, a repository with a planted bug."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_tui.scripted import ScriptedServer
from tests.test_exec import provider_flags, run_cli
from tests.test_review_tasks import finding, review_json
from tests.test_tasks_support import scenario, shell_call

P1 = finding("[P1] add() subtracts", "calc.py", 2, 2, priority=1)
P3 = finding("[P3] Name the parameters", "calc.py", 1, 1, priority=3)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """Reviewers with and without an urgent finding, one that never answers JSON, and an asker."""
    srv = ScriptedServer(
        [
            scenario(
                "review-bug",
                {"tool_calls": [shell_call("git", "diff", "HEAD")]},
                {"json": review_json(P3, P1), "requires_schema": True},
            ),
            scenario("review-nit", {"json": review_json(P3, verdict="patch is correct")}),
            scenario("review-prose", {"text": "Looks fine."}, {"text": "Really fine."}),
            scenario("asker", {"text": "It is in `calc.py:1-2`."}),
        ]
    ).start_in_thread()
    yield srv
    srv.stop()


def planted_bug(repo: Path) -> None:
    """An uncommitted change that breaks add()."""
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")


def test_exec_review_json_prints_the_review_item_and_exits_0_whatever_the_verdict(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    planted_bug(git_repo)
    flags = provider_flags(server.base_url, "scripted:review-bug")
    result = run_cli("exec", "review", "--uncommitted", "--json", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    items = [line["item"] for line in lines if line["type"] == "item.completed"]
    kinds = [item["type"] for item in items]
    assert kinds[-2:] == ["agent_message", "review"]
    review = items[-1]
    assert review["overall_correctness"] == "patch is incorrect"
    assert [f["priority"] for f in review["findings"]] == [1, 3]  # sorted by priority
    assert review["findings"][0]["code_location"]["path"] == "calc.py"
    assert json.loads(items[-2]["text"])["findings"]  # the agent message is the JSON text itself


def test_fail_on_turns_an_urgent_finding_into_exit_1(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    planted_bug(git_repo)
    bug = provider_flags(server.base_url, "scripted:review-bug")
    nit = provider_flags(server.base_url, "scripted:review-nit")
    assert (
        run_cli("exec", "review", "--fail-on", "P1", "-C", str(git_repo), *bug, home=tmp_path).returncode == 1
    )
    assert (
        run_cli("exec", "review", "--fail-on", "P2", "-C", str(git_repo), *nit, home=tmp_path).returncode == 0
    )
    assert (
        run_cli("exec", "review", "--fail-on", "P3", "-C", str(git_repo), *nit, home=tmp_path).returncode == 1
    )


def test_review_command_prints_findings_for_people(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    planted_bug(git_repo)
    flags = provider_flags(server.base_url, "scripted:review-bug")
    result = run_cli("review", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Verdict: patch is incorrect" in result.stdout
    assert "[P1] [P1] add() subtracts — calc.py:2" in result.stdout
    assert result.stdout.index("[P1]") < result.stdout.index("[P3]")


def test_review_that_never_answers_json_fails_with_the_raw_text(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    planted_bug(git_repo)
    flags = provider_flags(server.base_url, "scripted:review-prose")
    result = run_cli("review", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 1
    assert "The review could not be read" in result.stdout and "Really fine." in result.stdout


def test_review_of_a_clean_tree_says_there_is_nothing_to_review(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    flags = provider_flags(server.base_url, "scripted:review-bug")
    result = run_cli("review", "--uncommitted", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 1
    assert "no uncommitted changes" in result.stderr
    assert "Traceback" not in result.stderr


def test_review_against_an_unknown_branch_is_a_clear_error(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    flags = provider_flags(server.base_url, "scripted:review-bug")
    result = run_cli("exec", "review", "--base", "nope", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 1 and "nope" in result.stderr and "Traceback" not in result.stderr


def test_exec_ask_answers_without_changing_files(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    flags = provider_flags(server.base_url, "scripted:asker")
    result = run_cli("exec", "--ask", "where is add?", "-C", str(git_repo), *flags, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "calc.py:1-2" in result.stdout


def test_tasks_list_and_show_tell_a_review_and_its_findings(
    server: ScriptedServer, git_repo: Path, tmp_path: Path
) -> None:
    planted_bug(git_repo)
    flags = provider_flags(server.base_url, "scripted:review-bug")
    assert run_cli("review", "-C", str(git_repo), *flags, home=tmp_path).returncode == 0
    listing = run_cli("tasks", "list", home=tmp_path).stdout
    assert "[review] Review: uncommitted changes · incorrect, 1 P1, 1 P3" in listing
    task_id = listing.split()[0]
    shown = run_cli("tasks", "show", task_id, home=tmp_path).stdout
    assert "Verdict: patch is incorrect" in shown and "calc.py:2" in shown
