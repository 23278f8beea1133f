"""Tools offered to the model: shell, apply_patch, update_plan, view_image."""

from codex_tui.tools.registry import default_tools, find_tool, run_tool

__all__ = ["default_tools", "find_tool", "run_tool"]
