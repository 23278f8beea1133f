"""codex-tui: parallel AI coding agents in containers, in one terminal UI."""

__version__ = "0.1.0"
