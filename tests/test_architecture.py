"""The layering rule of DESIGN.md, checked on the source: imports point one way, the core has no UI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "codex_tui"

# Each layer may import itself and the layers listed before it.
LAYERS: list[set[str]] = [
    {"protocol", "config", "config_mcp", "pricing", "process", "boundary"},
    {"models", "scripted", "tools", "sandbox", "workspace"},
    {"agent"},
    {"tasks", "demo"},
    {
        "exec",
        "exec_printers",
        "tui",
        "cli",
        "cli_common",
        "cli_tasks",
        "cli_mcp",
        "cli_serve",
        "serve",
        "__main__",
    },
]
CORE = {
    "boundary",
    "protocol",
    "config",
    "config_mcp",
    "pricing",
    "process",
    "models",
    "scripted",
    "tools",
    "sandbox",
    "workspace",
    "agent",
    "tasks",
    "demo",
    "exec",
    "exec_printers",
}


def _layer_of(part: str) -> int:
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"codex_tui.{part} is in no layer: add it to LAYERS")


def _top(module: Path) -> str:
    rel = module.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(module: Path) -> list[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "sample_repo" not in p.parts and p.name != "__init__.py")


@pytest.mark.parametrize("module", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(module: Path) -> None:
    """A module imports only from its own layer or the layers to its left."""
    own = _layer_of(_top(module))
    for name in _imports(module):
        parts = name.split(".")
        if parts[0] != "codex_tui" or len(parts) < 2:
            continue
        assert _layer_of(parts[1]) <= own, f"{module.name} imports {name} (a later layer)"


@pytest.mark.parametrize(
    "module", [p for p in SOURCES if _top(p) in CORE], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_core_never_imports_textual(module: Path) -> None:
    """The core emits events and takes operations; only the TUI knows Textual."""
    for name in _imports(module):
        assert name.split(".")[0] not in {"textual", "rich"}, f"{module.name} imports {name}"
