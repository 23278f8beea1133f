"""The agent's instructions: our prompt, the sandbox section and AGENTS.md discovery."""

from __future__ import annotations

from pathlib import Path

from codex_tui.agent.instructions import (
    AGENTS_MAX_BYTES,
    agents_md_paths,
    base_prompt,
    build_instructions,
    load_project_docs,
)
from tests.conftest import make_repo


def test_prompt_explains_sandbox_tools_patch_format_and_plan() -> None:
    prompt = base_prompt()
    for needle in (
        "/workspace",
        "network is off",
        "with_escalated_permissions",
        "justification",
        "*** Begin Patch",
        "*** Update File:",
        "*** End Patch",
        "update_plan",
        "in_progress",
        "run the tests",
        "final message",
    ):
        assert needle in prompt, needle


def test_agents_md_from_root_and_subfolder_both_included_root_first(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"AGENTS.md": "Root rule: use tabs.\n", "pkg/sub/AGENTS.md": "Sub rule: no tabs here.\n"},
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "AGENTS.md").write_text("Global rule: be brief.\n")

    docs = load_project_docs(repo / "pkg" / "sub", home)

    assert docs.files == [
        (home / "AGENTS.md").resolve(),
        (repo / "AGENTS.md").resolve(),
        (repo / "pkg/sub/AGENTS.md").resolve(),
    ]
    g, r, s = (docs.text.index(t) for t in ("Global rule", "Root rule", "Sub rule"))
    assert g < r < s
    assert "## pkg/sub/AGENTS.md" in docs.text and "## AGENTS.md (in the repository)" in docs.text
    assert not docs.truncated


def test_agents_md_above_the_git_root_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("outside the repo\n")
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n"})
    assert agents_md_paths(repo, None) == []


def test_without_git_only_the_folder_itself_is_searched(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("parent\n")
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "AGENTS.md").write_text("here\n")
    assert agents_md_paths(folder, None) == [(folder / "AGENTS.md").resolve()]


def test_agents_md_total_is_capped_at_32_kib_with_a_note(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"AGENTS.md": "root " * 4000, "sub/AGENTS.md": "ÜBER " * 4000},
    )
    docs = load_project_docs(repo / "sub", None)
    assert docs.truncated
    assert len(docs.text.encode("utf-8")) <= AGENTS_MAX_BYTES
    assert "truncated" in docs.text and "32 KiB" in docs.text
    assert docs.text.index("root") < docs.text.index("ÜBER")
    assert any("32 KiB" in w for w in docs.warnings)


def test_instructions_name_the_workdir_mode_and_include_agents_md(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"AGENTS.md": "Always run make lint.\n"})
    docs = load_project_docs(repo, None)
    text = build_instructions(docs=docs, workdir="/workspace", mode="auto", sandbox_description="docker")
    assert text.startswith(base_prompt())
    assert "`/workspace`" in text and "network is off" in text
    assert text.rstrip().endswith("Always run make lint.")


def test_instructions_without_agents_md_have_no_empty_section(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n"})
    text = build_instructions(docs=load_project_docs(repo, None), workdir=str(repo), mode="full-access")
    assert "AGENTS.md files\n" not in text
    assert "network is on" in text
