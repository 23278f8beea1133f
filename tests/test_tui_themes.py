"""Theme files: the shipped ones load, user folders add to them, bad files are reported."""

from __future__ import annotations

from pathlib import Path

from codex_tui.tui.themes import initial_theme, load_themes, packaged_themes_dir, read_state, remember


def test_shipped_themes_load_without_errors() -> None:
    loaded = load_themes([packaged_themes_dir()])
    names = {t.name for t in loaded.themes}
    assert loaded.errors == []
    assert {"codex-dark", "codex-light", "ember", "glacier"} <= names
    assert len(names) >= 4


def test_package_folder_holds_the_same_theme_files() -> None:
    repo_root = Path(__file__).resolve().parent.parent
    packaged = sorted(p.name for p in (repo_root / "codex_tui" / "themes").glob("*.toml"))
    shipped = sorted(p.name for p in (repo_root / "themes").glob("*.toml"))
    assert packaged == shipped and shipped


def test_user_theme_overrides_and_bad_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#ff0000"\ndark = false\n')
    (tmp_path / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (tmp_path / "nameless.toml").write_text('primary = "#00ff00"\n')
    loaded = load_themes([packaged_themes_dir(), tmp_path])
    mine = next(t for t in loaded.themes if t.name == "mine")
    assert mine.primary == "#ff0000" and mine.dark is False
    assert any("broken.toml: bad colour" in e for e in loaded.errors)
    assert any("nameless.toml: 'name' is missing" in e for e in loaded.errors)


def test_remembered_theme_wins_over_config_until_it_disappears(tmp_path: Path) -> None:
    available = {"codex-dark", "ember"}
    assert initial_theme("ember", tmp_path, available) == "ember"
    assert remember(tmp_path, theme="codex-dark") is None
    assert read_state(tmp_path) == {"theme": "codex-dark"}
    assert initial_theme("ember", tmp_path, available) == "codex-dark"
    assert initial_theme("ember", tmp_path, {"ember"}) == "ember"


def test_state_file_keeps_other_keys_and_survives_corruption(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    assert read_state(tmp_path) == {}
    remember(tmp_path, other=1)
    remember(tmp_path, theme="ember")
    assert read_state(tmp_path) == {"other": 1, "theme": "ember"}
