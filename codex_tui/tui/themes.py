"""Theme files (TOML) shipped in themes/ and in the user's folder, and the remembered choice."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.theme import Theme

COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
STATE_FILE = "state.json"


@dataclass(slots=True)
class ThemeLoad:
    """Themes read from the folders, and one message per file that could not be used."""

    themes: list[Theme]
    errors: list[str]


def packaged_themes_dir() -> Path:
    """The themes shipped with the app: codex_tui/themes in a wheel, ../themes in a checkout."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "themes"
    if packaged.is_dir():
        return packaged
    return here.parent / "themes"


def theme_from_toml(text: str, source: str) -> Theme:
    """Build a Theme from a theme file; raises ValueError naming the file and the problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{source}: 'name' is missing")
    if not isinstance(raw.get("primary"), str):
        raise ValueError(f"{source}: 'primary' colour is missing")
    colors: dict[str, str] = {}
    for key in COLOR_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"{source}: '{key}' must be a colour string")
        colors[key] = value
    dark = raw.get("dark", True)
    if not isinstance(dark, bool):
        raise ValueError(f"{source}: 'dark' must be true or false")
    variables = raw.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ValueError(f"{source}: [variables] must map names to strings")
    theme = Theme(name=name.strip(), primary=colors.pop("primary"), dark=dark, variables=dict(variables))
    for key, value in colors.items():
        setattr(theme, key, value)
    try:
        theme.to_color_system().generate()
    except Exception as exc:  # Color parsing raises several types; all mean a bad colour value.
        raise ValueError(f"{source}: bad colour: {exc}") from None
    return theme


def load_themes(folders: list[Path]) -> ThemeLoad:
    """Read every *.toml in the folders (later folders override earlier ones by name)."""
    themes: dict[str, Theme] = {}
    errors: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_toml(path.read_text(encoding="utf-8"), str(path))
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{path}: cannot read: {exc}")
                continue
            except ValueError as exc:
                errors.append(str(exc))
                continue
            themes[theme.name] = theme
    return ThemeLoad(list(themes.values()), errors)


def read_state(home: Path) -> dict[str, Any]:
    """The UI state remembered between runs (`<home>/state.json`); empty when absent or broken."""
    try:
        raw = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def remember(home: Path, **values: Any) -> str | None:
    """Merge values into state.json atomically; returns an error message instead of raising."""
    state = read_state(home)
    state.update(values)
    path = home / STATE_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot save {path}: {exc.strerror or exc}"
    return None


def initial_theme(config_theme: str, home: Path, available: set[str]) -> str:
    """The remembered theme if it still exists, else the configured one, else codex-dark."""
    remembered = read_state(home).get("theme")
    for name in (remembered, config_theme, "codex-dark", "textual-dark"):
        if isinstance(name, str) and name in available:
            return name
    return "textual-dark"
